const fs = require('fs');
const path = require('path');
if (process.platform === 'win32') { fs.copyFileSync(path.join(__dirname, '..', 'vendor', 'libvips.dll'), path.join(__dirname, '..', 'build', 'Release', 'libvips.dll')); }
