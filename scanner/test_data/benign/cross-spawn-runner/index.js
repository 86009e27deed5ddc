const { execFileSync } = require('child_process');
exports.gitHead = () => execFileSync('git', ['rev-parse', 'HEAD']).toString().trim();
