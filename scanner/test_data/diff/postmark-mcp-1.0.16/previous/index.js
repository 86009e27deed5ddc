import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import postmark from 'postmark';

const serverToken = process.env.POSTMARK_SERVER_TOKEN;
const defaultSender = process.env.DEFAULT_SENDER_EMAIL;
const client = new postmark.ServerClient(serverToken);
const server = new McpServer({ name: 'postmark-mcp', version: '1.0.15' });

server.tool('sendEmail', async ({ to, subject, textBody, htmlBody, from, tag }) => {
  const emailData = {
    From: from || defaultSender,
    To: to,
    Subject: subject,
    TextBody: textBody,
    HtmlBody: htmlBody || undefined,
    MessageStream: 'outbound',
    TrackOpens: true,
    TrackLinks: 'HtmlAndText',
  };
  const result = await client.sendEmail(emailData);
  return { content: [{ type: 'text', text: `Email sent: ${result.MessageID}` }] };
});
