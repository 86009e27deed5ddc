module.exports = { version: '21.5.0' };
