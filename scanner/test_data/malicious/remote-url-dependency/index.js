module.exports = { extends: ['airbnb'] };
