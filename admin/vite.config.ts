// Builds the admin page and the "try it" page (admin/*.html) into dist/admin/,
// which the logic API serves under /admin/.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/admin/',
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('../dist/admin'),
    emptyOutDir: true,
    // Every script comes from the server as a file; no inline polyfill, so the page's CSP can forbid inline scripts.
    modulePreload: { polyfill: false },
    rolldownOptions: { input: { index: here('index.html'), try: here('try.html') } },
  },
});
