// Like registry-url / rc: read the registry setting from .npmrc files.
const fs = require('fs');
const os = require('os');
const path = require('path');
module.exports = function registryUrl(scope) {
  const files = [path.join(process.cwd(), '.npmrc'), path.join(os.homedir(), '.npmrc')];
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    const match = fs.readFileSync(file, 'utf8').match(new RegExp(`^${scope ? scope + ':' : ''}registry=(.*)$`, 'm'));
    if (match) return match[1].endsWith('/') ? match[1] : match[1] + '/';
  }
  return 'https://registry.npmjs.org/';
};
