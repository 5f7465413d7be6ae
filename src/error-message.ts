/** What a caught value says: an Error's message, or the value itself as a string (anything can be thrown). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
