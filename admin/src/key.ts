/** The API key, kept for this browser tab only (session storage). */
const STORAGE_KEY = 'roomcast.apiKey';

export function storedKey(): string | undefined {
  return sessionStorage.getItem(STORAGE_KEY) ?? undefined;
}

export function storeKey(key: string | undefined): void {
  if (key === undefined) sessionStorage.removeItem(STORAGE_KEY);
  else sessionStorage.setItem(STORAGE_KEY, key);
}

/**
 * Why `key` cannot go in an Authorization header (fetch refuses a character past
 * U+00FF, NUL, CR or LF before sending anything), or undefined when it can.
 */
export function unsendableKeyProblem(key: string): string | undefined {
  for (const char of key) {
    const code = char.codePointAt(0)!;
    if (code > 0xff || code === 0 || code === 0x0a || code === 0x0d) {
      const name = `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
      return `the key holds ${JSON.stringify(char)} (${name}), which an HTTP header cannot carry: check the key (a pasted one may hold a typographic dash or quote)`;
    }
  }
  return undefined;
}
