// The SDK as one minified ES module for browsers (dist/client-bundle/roomcast-client.js):
// what `roomcast/client` costs a web app, and what the browser tests load.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/client-bundle', import.meta.url)),
    emptyOutDir: true,
    sourcemap: true,
    // Vite keeps whitespace in ES libraries for the app's bundler to strip; strip it here,
    // so the file is what a web app ships. Its minifier would drop the /* @__PURE__ */
    // annotations too (a `new Map` is pure to it anyway): so does this one.
    rolldownOptions: { output: { minify: true, comments: false } },
    lib: {
      entry: fileURLToPath(new URL('browser.ts', import.meta.url)),
      formats: ['es'],
      fileName: () => 'roomcast-client.js',
    },
  },
});
