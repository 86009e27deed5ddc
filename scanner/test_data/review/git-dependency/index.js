module.exports = require('left-pad');
