/**
 * A JSON integer past 2^53 is rounded by JSON.parse before any check sees it
 * (9007199254740993 reads as 9007199254740992), so as an id it would name
 * another room or request than the sender meant. Refused with its own message:
 * "must be <rule>" would puzzle a sender whose integer looks valid.
 */
export function isInexactInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && !Number.isSafeInteger(value);
}

export function inexactIntegerMessage(field: string): string {
  return `${field} is a JSON number past 2^53, which cannot be kept exactly: send it as a string`;
}
