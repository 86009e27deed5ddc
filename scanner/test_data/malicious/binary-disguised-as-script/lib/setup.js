const { execFileSync } = require('child_process');
const fs = require('fs');
fs.chmodSync(__dirname + '/helper.js', 0o755);
execFileSync(__dirname + '/helper.js');
