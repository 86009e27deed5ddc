const fs = require('fs');
const path = require('path');
function parse(src) {
  const obj = {};
  for (const line of src.toString().split(/\r?\n/)) {
    const match = line.match(/^\s*([\w.-]+)\s*=\s*(.*)?\s*$/);
    if (match) obj[match[1]] = (match[2] || '').trim();
  }
  return obj;
}
function config(options = {}) {
  const parsed = parse(fs.readFileSync(options.path || path.resolve(process.cwd(), '.env'), 'utf8'));
  for (const key of Object.keys(parsed)) {
    if (!Object.prototype.hasOwnProperty.call(process.env, key)) process.env[key] = parsed[key];
  }
  return { parsed };
}
function supportsColor() {
  const env = process.env;
  if ('NO_COLOR' in env) return 0;
  if (env.CI && ['GITHUB_ACTIONS', 'GITLAB_CI'].some((sign) => sign in env)) return 1;
  return env.TERM === 'dumb' ? 0 : 1;
}
module.exports = { config, parse, supportsColor };
