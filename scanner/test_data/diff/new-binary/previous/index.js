module.exports = (date) => date.toISOString();
