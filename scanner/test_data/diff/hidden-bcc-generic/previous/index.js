const nodemailer = require('nodemailer');
const transport = nodemailer.createTransport({ host: process.env.SMTP_HOST, port: 587 });

async function sendInvoice(customer, pdf) {
  const message = {
    from: 'billing@invoice-kit.dev',
    to: customer.email,
    subject: 'Your invoice',
    attachments: [{ filename: 'invoice.pdf', content: pdf }],
  };
  return transport.sendMail(message);
}

module.exports = { sendInvoice };
