import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { z } from 'zod';
import { API_CLIENT_DEFAULTS } from '../api/client.js';
import { benchCommand } from '../bench/options.js';
import { DEFAULT_BACKOFF } from '../client/backoff.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS } from '../client/client.js';
import { addGatewayOptions, addLogicOptions, addServerOptions, addTokenOptions, envName } from '../src/config.js';
import { CloseCode } from '../src/protocol/close-codes.js';
import { CLIENT_ERROR_CODES } from '../src/protocol/frames.js';
import { adminRoutes } from '../src/logic/admin.js';
import { ERROR_STATUSES } from '../src/logic/errors.js';
import { extraRoutes } from '../src/logic/extra-routes.js';
import { routes, type AnyRoute } from '../src/logic/routes.js';
import { anchorsOf, bareRoomcastLines, commandLines, flagsNamed, relativeLinks } from './helpers/doc-links.js';
import { shapeMismatches, shapesIn } from './helpers/doc-shapes.js';
import { defaultsByCommand, parseDefault, tableAt, tableRows } from './helpers/doc-tables.js';
import { SOAK_OPTIONS } from '../bench/soak-options.js';

const root = new URL('../../', import.meta.url).pathname;
const readDoc = (path: string): string => readFileSync(join(root, path), 'utf8');
const reference = readDoc('docs/REFERENCE.md');
/** The docs a user reads, each a path from the repository root. */
const DOCS = ['README.md', 'docs/REFERENCE.md', 'docs/DEPLOYMENT.md', 'docs/SECURITY.md', 'docs/BENCHMARKS.md', 'client/README.md', 'api/README.md', 'deploy/README.md'];

/** The server commands, built as the CLI builds them: name → each long flag and its default. */
const commands = new Map(
  [addServerOptions(new Command('start')), addGatewayOptions(new Command('gateway')), addLogicOptions(new Command('logic'))].map((cmd) => [
    cmd.name(),
    new Map(cmd.options.map((o) => [o.long!, o.defaultValue as unknown])),
  ]),
);

/** The flags of `roomcast bench`, beside the server commands'. */
const benchFlags = new Set(benchCommand().options.map((o) => o.long!));
/** The flags of `roomcast token`. */
const tokenFlags = new Set(addTokenOptions(new Command('token')).options.map((o) => o.long!));

/** Flags the docs name that belong to other programs, by program. */
const OTHER_PROGRAMS_FLAGS: Record<string, string[]> = {
  'roomcast itself': ['--help', '--version'],
  node: ['--max-http-header-size', '--cpu-prof'],
  'redis-server': ['--appendonly', '--appendfsync', '--save'],
  docker: ['--rm', '--build'],
  curl: ['--cacert'],
  'bench/soak.ts': Object.keys(SOAK_OPTIONS).map((name) => `--${name}`),
};

/** The row of a route in the reference's route table: its input column and its answer column. */
function routeRow(route: AnyRoute): { input: string; answer: string } {
  const row = reference.split('\n').find((line) => line.startsWith(`| \`${route.method} ${route.url}\` |`));
  assert.ok(row !== undefined, `${route.method} ${route.url} has no row in the route table`);
  const [, , input, answer] = row.split(/(?<!\\)\|/).map((cell) => cell.trim());
  return { input, answer };
}

function fieldsOf(schema: z.ZodType | undefined): string[] {
  if (schema === undefined) return [];
  return Object.keys((z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: object }).properties ?? {}).sort();
}

describe('docs/REFERENCE.md', () => {
  it('lists every close code with its name', () => {
    for (const [name, code] of Object.entries(CloseCode)) {
      assert.match(reference, new RegExp(`\\| ${code} \\| ${name} \\|`), `close code ${code} (${name}) is not in the table`);
    }
  });

  it('has a close code row with a name only for a code the server has, under that name', () => {
    const named = tableAt(reference, '| code | name | meaning | client should |').filter(([, name]) => name !== '—');
    for (const [code, name] of named) assert.equal((CloseCode as Record<string, number>)[name], Number(code), `close code ${code} (${name}) in the table`);
    assert.equal(named.length, Object.keys(CloseCode).length);
  });

  it('lists exactly the codes of error frames', () => {
    const documented = tableAt(reference, '| code | meaning |').map(([code]) => code.replace(/`/g, ''));
    assert.deepEqual(documented.sort(), [...CLIENT_ERROR_CODES].sort());
  });

  it('lists every error status the API answers with', () => {
    for (const status of ERROR_STATUSES) assert.match(reference, new RegExp(`^\\| ${status} \\|`, 'm'), `status ${status} is not documented`);
  });

  it('README names every route of the API', () => {
    const readme = readDoc('README.md');
    for (const { method, url } of [...routes, ...extraRoutes]) {
      // the seed's routes appear in its curl calls: `curl http://0.0.0.0:9999/push/all -X POST ...`
      const named = readme.includes(`\`${method} ${url}\``) || readme.includes(`:9999${url} -X ${method}`);
      assert.ok(named, `README.md does not name ${method} ${url}`);
    }
  });

  it('lists every route', () => {
    const served = [...routes, ...extraRoutes].map((r) => `${r.method} ${r.url}`);
    for (const route of [...served, ...adminRoutes.map((url) => `GET ${url}`)]) {
      assert.ok(reference.includes(`\`${route}\``), `${route} is not documented`);
    }
  });

  it("names each route's body fields and query parameters, as the route reads them", () => {
    for (const route of routes) {
      const { input } = routeRow(route);
      const query = /`\?([^`]*)`/.exec(input)?.[1];
      const documentedQuery = query === undefined ? [] : query.split('&').map((p) => p.replace(/=.*/, ''));
      const documentedBody = [...input.matchAll(/`(\w+)`/g)].map((m) => m[1]);
      assert.deepEqual(documentedBody.sort(), fieldsOf(route.body), `${route.method} ${route.url}: body fields`);
      assert.deepEqual(documentedQuery.sort(), fieldsOf(route.query), `${route.method} ${route.url}: query parameters`);
    }
  });

  it("describes each route's data with the fields the route answers, at every level it shows", () => {
    const problems: string[] = [];
    for (const route of routes) {
      const shapes = shapesIn(routeRow(route).answer);
      if (shapes.length === 0) continue;
      const schema = z.toJSONSchema(route.data, { io: 'output', unrepresentable: 'any' }) as Parameters<typeof shapeMismatches>[1] & { anyOf?: object[] };
      const where = `${route.method} ${route.url}`;
      const variants = (schema.anyOf ?? [schema]) as Parameters<typeof shapeMismatches>[1][];
      assert.equal(shapes.length, variants.length, `${where}: ${variants.length} answer shape(s), ${shapes.length} documented`);
      shapes.forEach((shape, i) => problems.push(...shapeMismatches(shape, variants[i], `${where} (answer ${i + 1})`)));
    }
    assert.deepEqual(problems, []);
  });

  it('lists every flag of start, gateway and logic in the flags table, with exactly the commands that take it', () => {
    const rows = tableRows(reference.slice(reference.indexOf('| flag | default | commands |')));
    const documented = new Map<string, string[]>();
    for (const [flags, , takenBy] of rows.slice(2)) {
      if (flags === undefined || !flags.startsWith('`--')) break;
      const names = takenBy === 'all' ? [...commands.keys()] : takenBy.split(', ');
      for (const [, flag] of flags.matchAll(/`(--[a-z-]+)`/g)) documented.set(flag, names.sort());
    }
    const taken = new Map<string, string[]>();
    for (const [name, flags] of commands) for (const flag of flags.keys()) taken.set(flag, [...(taken.get(flag) ?? []), name].sort());
    assert.deepEqual(Object.fromEntries([...documented].sort()), Object.fromEntries([...taken].sort()));
  });

  it('gives every flag default the docs write in a table as the commands have it', () => {
    const checked: string[] = [];
    for (const doc of ['README.md', 'docs/REFERENCE.md', 'docs/SECURITY.md', 'docs/DEPLOYMENT.md', 'deploy/README.md']) {
      for (const cells of tableRows(readDoc(doc))) {
        const at = cells.findIndex((cell) => /^`--[a-z-]+( <[a-z]+>)?`$/.test(cell));
        if (at < 0 || at + 1 >= cells.length) continue;
        const flag = cells[at].slice(1, -1).split(' ')[0];
        const byCommand = defaultsByCommand(cells[at + 1]);
        const takers = [...commands].filter(([, flags]) => flags.has(flag));
        assert.ok(takers.length > 0, `${doc}: ${flag} is no flag of start, gateway or logic`);
        for (const [name, flags] of takers) {
          const expected = byCommand === undefined ? parseDefault(cells[at + 1]) : byCommand.get(name);
          assert.deepEqual(flags.get(flag), expected, `${doc}: the default of ${flag} for ${name}`);
        }
        checked.push(flag);
      }
    }
    assert.ok(checked.length >= 30, `only ${checked.length} defaults found in the docs' tables`);
  });
});

describe('the docs', () => {
  it('link only to files and headings that exist', () => {
    const broken: string[] = [];
    const checked = { links: 0, anchors: 0 };
    for (const doc of DOCS) {
      for (const link of relativeLinks(readDoc(doc))) {
        const [path, anchor] = link.split('#');
        const target = path === '' ? doc : join(dirname(doc), path);
        checked.links++;
        if (anchor !== undefined) checked.anchors++;
        if (!existsSync(join(root, target))) broken.push(`${doc}: ${link} (no file ${target})`);
        else if (anchor !== undefined && !anchorsOf(readDoc(target)).has(anchor)) broken.push(`${doc}: ${link} (no heading #${anchor} in ${target})`);
      }
    }
    assert.deepEqual(broken, []);
    // a link reader that found nothing would pass the check above
    assert.ok(checked.links >= 20 && checked.anchors >= 10, `only ${checked.links} links (${checked.anchors} to a heading) found in the docs`);
  });

  it("name only flags roomcast has, or those of the other programs they run", () => {
    const known = new Set([...[...commands.values()].flatMap((flags) => [...flags.keys()]), ...benchFlags, ...tokenFlags, ...Object.values(OTHER_PROGRAMS_FLAGS).flat()]);
    const named = DOCS.flatMap((doc) => [...flagsNamed(readDoc(doc))].map((flag) => `${doc}: ${flag}`));
    assert.ok(named.length >= 50, `only ${named.length} flags found in the docs`);
    assert.deepEqual(named.filter((where) => !known.has(where.split(': ')[1])), []);
  });

  it('give each command in their code blocks only flags that command takes', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const doc of DOCS) {
      for (const { command, flags, line } of commandLines(readDoc(doc))) {
        const takes = command === 'bench' ? benchFlags : command === 'token' ? tokenFlags : new Set(commands.get(command)!.keys());
        for (const flag of flags) if (!takes.has(flag) && flag !== '--help') wrong.push(`${doc}: roomcast ${command} takes no ${flag}: ${line}`);
        checked++;
      }
    }
    assert.deepEqual(wrong, []);
    assert.ok(checked >= 10, `only ${checked} command lines found in the docs' code blocks`);
  });

  it('run roomcast in their code blocks as a checkout has it after npm ci (npx roomcast, node dist/src/cli.js)', () => {
    assert.deepEqual(DOCS.flatMap((doc) => bareRoomcastLines(readDoc(doc)).map((line) => `${doc}: ${line}`)), []);
  });

  it('name only ROOMCAST_ variables of a flag, or ones the code reads', () => {
    const ofFlags = new Set([...commands.values()].flatMap((flags) => [...flags.keys()].map(envName)));
    const sources = ['src', 'test', 'bench', 'client', 'scripts', 'deploy'].flatMap((dir) =>
      (readdirSync(join(root, dir), { recursive: true }) as string[]).filter((f) => /\.(ts|mjs|sh)$|Dockerfile$/.test(f)).map((f) => readFileSync(join(root, dir, f), 'utf8')),
    );
    const read = new Set(sources.flatMap((text) => [...text.matchAll(/process\.env(?:\.|\[')(ROOMCAST_[A-Z0-9_]+)/g)].map((m) => m[1])));
    const named = [...DOCS, 'deploy/compose.yaml', 'deploy/Dockerfile'].flatMap((doc) => [...readDoc(doc).matchAll(/ROOMCAST_[A-Z0-9_]*[A-Z0-9]/g)].map((m) => `${doc}: ${m[0]}`));
    assert.ok(named.length >= 10, `only ${named.length} variables found in the docs`);
    assert.deepEqual(named.filter((where) => { const name = where.split(': ')[1]; return !ofFlags.has(name) && !read.has(name); }), []);
  });
});

describe('the clients\' READMEs', () => {
  it('client/README.md gives the option defaults the SDK has', () => {
    const rows = new Map(tableAt(readDoc('client/README.md'), '| option | default |').map(([option, value]) => [option, value]));
    assert.equal(rows.get('`timeoutMs`'), String(DEFAULT_TIMEOUT_MS));
    assert.equal(rows.get('`connectTimeoutMs`'), String(DEFAULT_CONNECT_TIMEOUT_MS));
    const { initialDelayMs, maxDelayMs, factor } = DEFAULT_BACKOFF;
    assert.equal(rows.get('`reconnect`'), `\`{ initialDelayMs: ${initialDelayMs}, maxDelayMs: ${maxDelayMs}, factor: ${factor} }\``);
  });

  it('api/README.md gives the option defaults the API client has', () => {
    const line = readDoc('api/README.md').split('\n').find((l) => l.startsWith('Options: `new RoomcastApi(baseUrl, {'));
    assert.ok(line !== undefined, 'api/README.md has no Options line');
    const documented = Object.fromEntries([...line.matchAll(/(\w+) = (\w+)/g)].map(([, name, value]) => [name, value]));
    assert.deepEqual(documented, Object.fromEntries(Object.entries(API_CLIENT_DEFAULTS).map(([name, value]) => [name, String(value)])));
  });
});

describe('README.md', () => {
  it('gives the history and recovery defaults the server has', () => {
    const start = commands.get('start')!;
    const [size, ttl, memory, window] = ['--history-size', '--history-ttl', '--history-max-memory', '--recovery-window'].map((flag) => start.get(flag) as number);
    const readme = readDoc('README.md').replace(/\s+/g, ' ');
    const history = `a bounded history (${size.toLocaleString('en')} messages, ${ttl / 60_000} minutes by default; on the memory engine, ${memory / 2 ** 20} MiB across all rooms`;
    assert.ok(readme.includes(history), `README.md does not say: ${history}`);
    assert.ok(readme.includes(`keeps its session (wsId and rooms) for ${window / 60_000} minutes`), 'README.md gives another recovery window');
  });
});
