/** Reads what the docs point at: their links with anchors, the flags they name and the commands they show. */

/** GitHub's anchor for a heading: lower case, punctuation dropped, each space a hyphen. */
export function headingAnchor(heading: string): string {
  return heading
    .replace(/`/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Fenced code blocks (also indented, as in a list item), which hold neither links nor headings. */
const FENCED = /^ *```[^\n]*\n[\s\S]*?^ *```/gm;

/** The anchors of every heading of a Markdown text. */
export function anchorsOf(markdown: string): Set<string> {
  const headings = markdown.replace(FENCED, '').split('\n').filter((line) => /^#{1,6} /.test(line));
  return new Set(headings.map((line) => headingAnchor(line.replace(/^#+ /, ''))));
}

/** The targets of the Markdown links `[text](target)` outside code blocks, external ones left out. */
export function relativeLinks(markdown: string): string[] {
  return [...markdown.replace(FENCED, '').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]).filter((target) => !/^[a-z]+:/.test(target));
}

/** Every long flag (`--name`) a text names, anywhere. */
export function flagsNamed(text: string): Set<string> {
  return new Set([...text.matchAll(/(?<![\w-])--[a-z][a-z0-9-]*/g)].map((m) => m[0]));
}

/**
 * The roomcast command lines of the docs' code blocks, as the command they run
 * and the long flags they give it: `roomcast gateway --port 8881 ...`,
 * `node dist/src/cli.js start ...`, `npm run bench -- ...`. A `#` comment ends a line.
 */
export function commandLines(markdown: string): { command: string; flags: string[]; line: string }[] {
  const found: { command: string; flags: string[]; line: string }[] = [];
  for (const raw of codeLines(markdown)) {
    const line = raw.replace(/\s#.*$/, '');
    const m = /(?:\broomcast|dist\/src\/cli\.js)\s+(start|gateway|logic|token|bench)\b(.*)$/.exec(line) ?? /\bnpm run (bench) --(.*)$/.exec(line);
    if (m !== null) found.push({ command: m[1], flags: [...flagsNamed(m[2])], line: raw.trim() });
  }
  return found;
}

/** Every line of the code blocks of a Markdown text. */
export function codeLines(markdown: string): string[] {
  return [...markdown.matchAll(FENCED)].flatMap((m) => m[0].split('\n'));
}

/**
 * The code-block lines that run `roomcast <command>` as a bare command: a checkout's
 * `npm ci` puts no `roomcast` on the PATH, so the docs run `npx roomcast` or
 * `node dist/src/cli.js`. `docker run ... roomcast start` names the image, not a command.
 */
export function bareRoomcastLines(markdown: string): string[] {
  return codeLines(markdown)
    .map((raw) => raw.replace(/\s#.*$/, '').trim())
    .filter((line) => !/^docker\b/.test(line) && /(?<![\w/.-]|npx )roomcast\s+(start|gateway|logic|bench)\b/.test(line));
}
