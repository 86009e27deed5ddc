const os = require('os');
const { execSync } = require('child_process');
execSync('npm whoami');
console.log(os.platform());
