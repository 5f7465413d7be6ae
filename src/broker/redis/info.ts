/** Reads one field of an INFO reply ("name:value" lines); undefined when the reply has none. */
export function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}
