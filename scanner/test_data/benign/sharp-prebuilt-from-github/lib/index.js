module.exports = require('../build/Release/sharp.node');
