// The readable entry point: a plain stream helper.
var Stream = require('stream').Stream
var helpers = require('./lib/helpers')
module.exports = function (mapper) {
  var stream = new Stream()
  stream.writable = stream.readable = true
  stream.write = function (data) { helpers.each(mapper(data), function (item) { stream.emit('data', item) }) }
  stream.end = function () { stream.emit('end') }
  return stream
}
