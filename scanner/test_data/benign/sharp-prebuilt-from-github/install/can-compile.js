try { require('node-addon-api'); } catch (err) { process.exitCode = 1; }
