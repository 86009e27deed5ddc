// Like an analytics SDK: batches events and posts them to its own service.
const DEFAULT_HOST = 'https://us.i.posthog.com';

class Analytics {
  constructor(apiKey, options = {}) {
    this.apiKey = apiKey;
    this.host = options.host || DEFAULT_HOST;
    this.queue = [];
  }
  capture(event, properties) {
    this.queue.push({ event, properties: { ...properties, $lib: 'posthog-like', $os: typeof navigator !== 'undefined' ? navigator.userAgent : process.platform } });
    if (this.queue.length >= 20) this.flush();
  }
  flush() {
    const batch = this.queue.splice(0);
    return fetch(`${this.host}/batch/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ api_key: this.apiKey, batch }) });
  }
}
module.exports = { Analytics };
