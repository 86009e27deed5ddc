exports.each = function (items, callback) {
  for (var index = 0; index < items.length; index++) callback(items[index])
}
