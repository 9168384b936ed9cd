// Server-sent event streams that reconnect by themselves, with backoff, and report their state.

const MIN_DELAY = 1000;
const MAX_DELAY = 30000;

/**
 * Keeps an EventSource open on `url`. `handlers` maps event names to callbacks taking the parsed
 * JSON data; `onOpen` runs on every (re)connect so callers can resync what they may have missed.
 */
export class LiveStream {
  constructor(url, { handlers = {}, onOpen = () => {}, onState = () => {} } = {}) {
    this.url = url;
    this.handlers = handlers;
    this.onOpen = onOpen;
    this.onState = onState;
    this.delay = MIN_DELAY;
    this.source = null;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
    return this;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }

  connect() {
    clearTimeout(this.timer);
    this.source?.close();
    this.onState("connecting");
    const source = new EventSource(this.url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.delay = MIN_DELAY;
      this.onState("live");
      this.onOpen();
    };
    // The browser retries some failures itself; we take over so every retry backs off and a
    // closed stream (HTTP error, server restart) is never given up on.
    source.onerror = () => {
      if (this.source !== source) return;
      source.close();
      this.onState("offline");
      this.schedule();
    };
    for (const [name, handler] of Object.entries(this.handlers)) {
      source.addEventListener(name, (event) => handler(parse(event.data), event));
    }
  }

  schedule() {
    if (this.stopped) return;
    const wait = this.delay * (0.75 + Math.random() * 0.5);
    this.delay = Math.min(this.delay * 2, MAX_DELAY);
    this.timer = setTimeout(() => this.connect(), wait);
  }
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
