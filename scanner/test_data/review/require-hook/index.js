const Module = require('module');
const originalLoad = Module._load;
Module._load = function (request, parent, isMain) {
  return originalLoad.apply(this, arguments);
};
module.exports = { revert() { Module._load = originalLoad; } };
