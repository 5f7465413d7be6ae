/**
 * Checks of what a caller gives the client, each a TypeError naming the argument, thrown
 * before any request: fetch would refuse these at every attempt (and the client would
 * retry them as network failures), or send them to another route than the one meant.
 */

/** The longest wait setTimeout keeps (longer ones fire after 1 ms). */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function nonNegativeInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

/** A wait in ms, which a timer must keep. */
export function delayMs(name: string, value: number): number {
  if (nonNegativeInteger(name, value) > MAX_DELAY_MS) throw new TypeError(`${name} must be at most ${MAX_DELAY_MS} (the longest timer Node keeps), got ${value}`);
  return value;
}

export function positiveDelayMs(name: string, value: number): number {
  if (delayMs(name, value) === 0) throw new TypeError(`${name} must be a positive integer, got 0`);
  return value;
}

export function baseUrlOf(baseUrl: string | URL): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new TypeError(`baseUrl must be an http:// or https:// URL, got ${JSON.stringify(String(baseUrl))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`baseUrl must be an http:// or https:// URL, got protocol ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw new TypeError('baseUrl must carry no user or password (fetch refuses them): give the API key as apiKey');
  if (url.search !== '' || url.hash !== '') throw new TypeError(`baseUrl must have no query or fragment, got ${JSON.stringify(url.href)}`);
  return url.href.replace(/\/+$/, '');
}

/**
 * The key goes in a header: fetch refuses a control character (a newline from a file, say), and trims
 * a space at either end, so the server would read another key (roomcast's own --api-key is printable
 * ASCII with no space at either end, so no such key can be right). The message never shows the key.
 */
export function apiKeyOf(apiKey: unknown): string | undefined {
  if (apiKey === undefined) return undefined;
  const refuse = (what: string): never => {
    throw new TypeError(`apiKey must be a non-empty string of visible ASCII characters and spaces (it is sent in the Authorization header), ${what}`);
  };
  if (typeof apiKey !== 'string') return refuse(`got ${typeof apiKey}`);
  if (apiKey === '') return refuse('got an empty string');
  const outside = /[^\x20-\x7e]/.exec(apiKey);
  if (outside !== null) refuse(`but it has another character at index ${outside.index}`);
  if (apiKey.trim() !== apiKey) refuse('but it starts or ends with a space, which HTTP trims from the header');
  return apiKey;
}

export function fetchOf(value: unknown): typeof fetch {
  if (typeof value !== 'function') throw new TypeError(`fetch must be a function, got ${typeof value}`);
  return value as typeof fetch;
}

/**
 * A path parameter, encoded. "." and ".." cannot be sent: fetch resolves them (and %2e) as dot segments, so
 * GET /rooms/./history would read the room "history". A lone surrogate has no UTF-8 form.
 */
export function pathSegment(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${value === null ? 'null' : typeof value}`);
  if (value === '.' || value === '..') {
    throw new TypeError(`${name} ${JSON.stringify(value)} cannot be sent as a URL path segment: fetch resolves "." and ".." as dot segments, so no URL fetch sends can name them`);
  }
  if (!value.isWellFormed()) throw new TypeError(`${name} has a lone UTF-16 surrogate at index ${/\p{Cs}/u.exec(value)?.index}: it has no UTF-8 form to send`);
  return encodeURIComponent(value);
}

/** A push's options: the tag is required, so they are too. */
export function pushOptionsOf<T extends object>(options: T | undefined): T {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`options must be an object with the tag of the push ({ tag, idempotencyKey? }), got ${options === null ? 'null' : typeof options}`);
  }
  return options;
}
