module.exports = function tinycolor(color) { return { toHex: () => String(color).replace('#', '') } }
