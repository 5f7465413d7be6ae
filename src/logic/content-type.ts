/** What the logic API reads of a request's Content-Type: its media type and its charset. */

/** The media types of the bodies the API reads. */
export const BODY_TYPES = new Set(['application/x-www-form-urlencoded', 'application/json']);

/** US-ASCII is a subset of UTF-8: its bytes read the same. */
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/** `type/subtype` of a content-type, without its parameters (the names are case-insensitive). */
export function mediaTypeOf(contentType: string): string {
  return contentType.split(';')[0].trim().toLowerCase();
}

/** The charset a content-type names, when it is not UTF-8 (bodies are read as UTF-8 whatever it says); undefined otherwise. */
export function foreignCharsetOf(contentType: string | undefined): string | undefined {
  for (const parameter of contentType?.split(';').slice(1) ?? []) {
    const [name, value = ''] = parameter.split('=', 2).map((part) => part.trim());
    if (name.toLowerCase() !== 'charset') continue;
    const charset = value.replace(/^"(.*)"$/, '$1');
    return UTF8_CHARSETS.has(charset.toLowerCase()) ? undefined : charset;
  }
  return undefined;
}
