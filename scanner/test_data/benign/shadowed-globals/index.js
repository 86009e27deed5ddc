(function (root, factory) {
  if (typeof define === 'function' && define.amd) define(['exports'], factory);
  else if (typeof exports === 'object') factory(exports);
  else factory((root.lib = {}));
})(this, function (exports) {
  'use strict';
  var global = new Function('return this')();
  function eval(expression, scope) { return scope[expression]; }
  function load(require, name) { return require(name); }
  function describe(process) { return JSON.stringify(process.env); }
  exports.evaluate = function (expression, scope) { return eval(expression, scope); };
  exports.load = load;
  exports.describe = describe;
  exports.global = global;
});
