/**
 * What `npm install roomcast` would get: the files `npm pack` puts in the
 * package, and whether the code in them can load there, where only the
 * `dependencies` are installed (never the devDependencies) and only packed
 * files exist.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  exports: Record<string, unknown>;
  dependencies: Record<string, string>;
};

/** The one import of a devDependency a packed file may make: the bench's Socket.IO peer, left out when it is missing (docs/BENCHMARKS.md). */
const DEV_ONLY_IMPORTS = new Map([['dist/bench/peers/socketio-server.js', 'socket.io']]);

async function listPackedFiles(): Promise<Set<string>> {
  // --ignore-scripts: `prepare` would build again; the suite runs on what `npm test` just built
  const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, maxBuffer: 16 << 20, timeout: 120_000 });
  const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  return new Set(pack.files.map((file) => file.path));
}

let packed: Promise<Set<string>> | undefined;
/** The packed files, listed by one `npm pack --dry-run` that both tests share. */
const packedFiles = (): Promise<Set<string>> => (packed ??= listPackedFiles());

/** Every module specifier a file imports statically or dynamically (with a literal). */
function importsOf(code: string): string[] {
  const found: string[] = [];
  const patterns = [/(?:^|;)\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/gm, /(?:^|;)\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.push(match[1]);
  return found;
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** Every target string in the exports map. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  return Object.values(value as Record<string, unknown>).flatMap(exportTargets);
}

describe('the npm package', () => {
  it('holds the bin, every export, the client bundle, the admin page and the docs, and no tests', async () => {
    const files = await packedFiles();
    const wanted = [
      ...Object.values(manifest.bin),
      ...exportTargets(manifest.exports).map((target) => posix.normalize(target)),
      'dist/client-bundle/roomcast-client.js',
      'dist/admin/index.html',
      'dist/admin/try.html',
      'README.md',
      'docs/REFERENCE.md',
    ];
    for (const file of wanted) assert.ok(files.has(file), `${file} is not in the package`);
    assert.deepEqual([...files].filter((file) => file.startsWith('dist/test/') || file.startsWith('test/') || file.startsWith('src/')), []);
    for (const bin of Object.values(manifest.bin)) assert.match(readFileSync(join(root, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/, `${bin} starts with a node shebang`);
  });

  it('imports, from each packed module, only packed files, Node built-ins and dependencies (never a devDependency)', async () => {
    const files = await packedFiles();
    const builtins = new Set(builtinModules);
    const problems: string[] = [];
    let modules = 0;
    for (const file of files) {
      if (!file.endsWith('.js')) continue;
      modules++;
      for (const specifier of importsOf(readFileSync(join(root, file), 'utf8'))) {
        if (specifier.startsWith('.')) {
          const target = posix.normalize(posix.join(posix.dirname(file), specifier));
          if (!files.has(target)) problems.push(`${file} imports ${specifier}, which is not in the package`);
        } else if (!specifier.startsWith('node:') && !builtins.has(specifier)) {
          const name = packageOf(specifier);
          if (!(name in manifest.dependencies) && DEV_ONLY_IMPORTS.get(file) !== name) problems.push(`${file} imports ${name}, which is not a dependency`);
        }
      }
    }
    assert.ok(modules > 50, `read ${modules} modules`);
    assert.deepEqual(problems, []);
  });
});
