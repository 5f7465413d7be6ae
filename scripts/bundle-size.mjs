// Prints the size of a built file as shipped: bytes, and bytes after gzip -9.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { gzipSync } from 'node:zlib';

const [file] = process.argv.slice(2);
if (file === undefined) {
  process.stderr.write('usage: node scripts/bundle-size.mjs <file>\n');
  process.exit(2);
}
const bytes = readFileSync(file);
const gzipped = gzipSync(bytes, { level: 9 }).length;
process.stdout.write(`${file}: ${bytes.length} bytes minified, ${gzipped} bytes gzipped (${(gzipped / 1024).toFixed(1)} KiB)\n`);
