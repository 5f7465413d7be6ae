/**
 * Parses an application/x-www-form-urlencoded body, or a query string (the
 * same format). With a repeated field the first value wins (PROTOCOL.md §2).
 * The result has no prototype, so a field named `__proto__` is just a field.
 */
export function parseForm(body: string): Record<string, string> {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [key, value] of new URLSearchParams(body)) {
    if (!(key in fields)) fields[key] = value;
  }
  return fields;
}
