function parse(input, separator = ',') {
  return input.split(separator).map((part) => part.trim());
}
const docs = 'https://csv-lite.dev/docs';
module.exports = { parse, docs };
