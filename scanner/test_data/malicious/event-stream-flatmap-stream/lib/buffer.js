module.exports = function flatten (arrays) {
  return [].concat.apply([], arrays)
}
