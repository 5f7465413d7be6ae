/** Reads the Markdown tables of the docs: their rows as cells, and the defaults written in them. */

/** Every table row of `markdown` (header and separator rows included), as trimmed cells; `\|` stays inside a cell. */
export function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim()));
}

const UNITS: Record<string, number> = { KiB: 1024, MiB: 1024 * 1024, s: 1000 };

/**
 * The value a default cell names: undefined for none, off, random or any (or an
 * empty cell); a `code` value as its string; a number, with thousands commas
 * and a unit (KiB, MiB, or s for a flag in ms). Throws on anything else.
 */
export function parseDefault(cell: string): string | number | undefined {
  if (['', 'none', 'off', 'random', 'any'].includes(cell)) return undefined;
  const code = /^`([^`]*)`$/.exec(cell);
  if (code !== null) return code[1];
  const number = /^(\d[\d,]*)(?: (KiB|MiB|s)\b)?/.exec(cell);
  if (number !== null) return Number(number[1].replace(/,/g, '')) * (number[2] === undefined ? 1 : UNITS[number[2]]);
  throw new Error(`cannot read the default ${JSON.stringify(cell)}`);
}

/** A default cell that differs by command, like `` `gateway` 8888, `logic` 9999 ``; undefined for one default for all. */
export function defaultsByCommand(cell: string): Map<string, string | number | undefined> | undefined {
  const parts = [...cell.matchAll(/`(start|gateway|logic)` ([^,]+)/g)];
  if (parts.length === 0) return undefined;
  return new Map(parts.map((m) => [m[1], parseDefault(m[2].trim())]));
}

/** The body rows (no header, no separator) of the table whose header row starts with `header`. */
export function tableAt(markdown: string, header: string): string[][] {
  const at = markdown.indexOf(header);
  if (at < 0) throw new Error(`no table with the header ${header}`);
  const lines = markdown.slice(at).split('\n');
  const end = lines.findIndex((line) => !line.startsWith('|'));
  return tableRows(lines.slice(0, end < 0 ? undefined : end).join('\n')).slice(2);
}
