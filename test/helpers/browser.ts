/**
 * Debian's chromium driven by playwright-core, for the browser tests.
 * Without chromium the tests skip with one line, except under CI=true, where
 * they run and fail (.ci/run installs it).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.ROOMCAST_CHROMIUM ?? '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false when they can (or must, under CI=true). */
export function browserSkipReason(): string | false {
  if (existsSync(CHROMIUM) || process.env.CI === 'true') return false;
  return `no chromium at ${CHROMIUM}: apt-get install -y chromium (or set ROOMCAST_CHROMIUM) to run the browser tests; with CI=true they fail instead`;
}

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no chromium at ${CHROMIUM}: .ci/run installs it with apt-get install -y chromium`);
  // playwright-core gives every launch a fresh, temporary --user-data-dir.
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-gpu', '--disable-quic'],
  });
}

/** Where screenshots go: dist/screenshots/ always, and docs/ too with ROOMCAST_UPDATE_SCREENSHOTS=1. */
export function screenshotPaths(name: string): string[] {
  const dir = fileURLToPath(new URL('../../screenshots/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const paths = [dir + name];
  if (process.env.ROOMCAST_UPDATE_SCREENSHOTS === '1') paths.push(fileURLToPath(new URL(`../../../docs/${name}`, import.meta.url)));
  return paths;
}

/** A loopback HTTP server for a page that loads the SDK's browser bundle. */
export class SdkPageServer {
  private constructor(private readonly server: Server) {}

  static async start(): Promise<SdkPageServer> {
    const bundle = fileURLToPath(new URL('../../client-bundle/roomcast-client.js', import.meta.url));
    const page =
      '<!doctype html><html><head><meta charset="utf-8"><title>SDK test page</title></head><body>' +
      "<script type=\"module\">import * as sdk from '/roomcast-client.js'; globalThis.sdk = sdk;</script></body></html>";
    const server = createServer((req, res) => {
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      else if (req.url === '/roomcast-client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(bundle));
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new SdkPageServer(server);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A browser launched before the calling suite's tests and closed after them; each page fails its test on a page error. */
export function browserPerSuite(): { newPage(): Promise<Page> } {
  let browser: Browser | undefined;
  before(async () => {
    browser = await launchBrowser();
  });
  after(() => browser?.close());
  return {
    async newPage() {
      const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
      page.setDefaultTimeout(15_000);
      page.on('pageerror', (err) => {
        throw new Error(`page error: ${err.message}`);
      });
      return page;
    },
  };
}
