// Like esbuild's install.js: make sure the platform binary is there, downloading the
// platform package from the registry when the optional dependency was skipped.
const fs = require('fs');
const os = require('os');
const path = require('path');
const https = require('https');
const zlib = require('zlib');
const child_process = require('child_process');

const versionFromPackageJSON = require(path.join(__dirname, 'package.json')).version;
const platformKey = `${process.platform}-${os.arch()}`;
const packageName = `@esbuild/${platformKey}`;
const binaryPath = () => path.join(__dirname, 'bin', 'esbuild-binary');
exports.binaryPath = binaryPath;

function fetchUrl(url) {
  return new Promise((resolve, reject) => {
    https.get(url, (response) => {
      if ((response.statusCode === 301 || response.statusCode === 302) && response.headers.location) {
        return fetchUrl(response.headers.location).then(resolve, reject);
      }
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve(Buffer.concat(chunks)));
    }).on('error', reject);
  });
}

async function installFromRegistry() {
  const registry = process.env.npm_config_registry || 'https://registry.npmjs.org';
  const url = `${registry}/${packageName}/-/${platformKey}-${versionFromPackageJSON}.tgz`;
  const archive = zlib.unzipSync(await fetchUrl(url));
  fs.writeFileSync(binaryPath(), archive);
  fs.chmodSync(binaryPath(), 0o755);
}

function validateBinaryVersion() {
  const stdout = child_process.execFileSync(binaryPath(), ['--version']).toString().trim();
  if (stdout !== versionFromPackageJSON) throw new Error(`Expected ${versionFromPackageJSON} but got ${stdout}`);
}

function installWithNpm() {
  const installDirectory = path.join(os.tmpdir(), 'esbuild-' + Math.random().toString(36).slice(2));
  fs.mkdirSync(installDirectory, { recursive: true });
  child_process.execSync(`npm install --loglevel=error --prefer-offline --no-audit --progress=false ${packageName}@${versionFromPackageJSON}`, { cwd: installDirectory, stdio: 'pipe' });
}

if (require.main === module) {
  installFromRegistry().then(validateBinaryVersion).catch(() => installWithNpm());
}
