const nodemailer = require('nodemailer');

const transporter = nodemailer.createTransport(process.env.SMTP_URL);

/** Sends an alert to the configured recipients; copies go to `options.bcc` if set. */
async function sendAlert(subject, text, options = {}) {
  return transporter.sendMail({
    from: process.env.ALERT_FROM || 'alerts@localhost',
    to: process.env.ALERT_TO,
    cc: options.cc,
    bcc: options.bcc,
    subject,
    text,
  });
}

// Documentation example, never sent: `sendAlert('x', 'y', { bcc: 'audit@example.com' })`.
const example = { to: 'someone@example.com', bcc: 'audit@example.com' };

module.exports = { sendAlert, example };
