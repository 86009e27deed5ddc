import { fetch as polyfill } from './fetch.js';
if (!globalThis.fetch) {
  globalThis.fetch = polyfill;
}
