(function (window) {
  'use strict';
  var UAParser = function (ua) { this.ua = ua || (window.navigator && window.navigator.userAgent) || ''; };
  UAParser.prototype.getBrowser = function () { return { name: /chrome/i.test(this.ua) ? 'Chrome' : undefined }; };
  if (typeof module !== 'undefined') module.exports = UAParser; else window.UAParser = UAParser;
})(typeof window === 'object' ? window : this);
