module.exports = {
  ar: 'مرحبا بالعالم',
  he: 'שלום עולם',
  ja: 'こんにちは世界',
  emoji: '❤️ 👍🏽',
  contact: 'Write to support@greetings-i18n.org for translations.',
  docs: 'https://greetings-i18n.org/docs',
};
