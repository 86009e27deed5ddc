exports.run = function (args) { require('child_process').execFileSync(require('../install.js').binaryPath(), args, { stdio: 'inherit' }); };
