/**
 * The admin pages at their edges, in a real browser: the live rates across a
 * restart of the logic process or a gateway node going away, where the API key
 * is kept, and text from clients and pushes shown as text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { browserPerSuite, browserSkipReason } from './helpers/browser.js';
import { TestClient, isPush } from './helpers/client.js';
import { memoryEngine, startCluster } from './helpers/cluster.js';
import { post } from './helpers/http.js';
import { startServer, type TestServer } from './helpers/server.js';
import { TcpRelay, type Link } from './helpers/tcp-relay.js';
import { JWT_SECRET, signToken } from './helpers/tokens.js';

const KEY = 'edge-key';
const AUTH = { authorization: `Bearer ${KEY}` };
/** Sets window.xss if it ever runs as HTML. */
const MARKUP = '<img src=x onerror="window.xss=1">';

/** Starts recording, in the page, every text the pushes/s and deliveries/s totals show; the result reads the record. */
async function recordRates(page: Page): Promise<() => Promise<string[]>> {
  // a string, as this runs in the page (the tests compile without the DOM's types)
  await page.evaluate(`(() => {
    const seen = (globalThis.seenRates = []);
    const read = () => {
      for (const id of ['total-pushes-rate', 'total-deliveries-rate']) {
        const text = document.querySelector('[data-testid=' + id + ']')?.textContent;
        if (text != null && !seen.includes(id + ' ' + text)) seen.push(id + ' ' + text);
      }
    };
    new MutationObserver(read).observe(document.body, { subtree: true, childList: true, characterData: true });
  })()`);
  return () => page.evaluate(() => (globalThis as unknown as { seenRates: string[] }).seenRates);
}

function assertNoNegativeRate(seen: string[]): void {
  assert.ok(seen.length > 0, 'the rates were shown');
  assert.deepEqual(
    seen.filter((text) => /\s-\d/.test(text)),
    [],
    `a rate never reads below 0; shown: ${seen.join(', ')}`,
  );
}

describe('the admin pages at their edges (Debian chromium, playwright-core)', { skip: browserSkipReason() }, () => {
  const { newPage } = browserPerSuite();

  async function giveKey(page: Page, logicUrl: string): Promise<void> {
    await page.goto(`${logicUrl}/admin`);
    const prompt = page.getByTestId('key-prompt');
    await prompt.locator('input[name=key]').fill(KEY);
    await prompt.getByRole('button').click();
    await page.getByTestId('total-connections').waitFor();
  }

  it('after the logic process restarts, the live totals come back with no rate across the two processes (never a negative one)', async () => {
    const page = await newPage();
    let server: TestServer | undefined = await startServer({ apiKey: KEY });
    try {
      const logicPort = Number(new URL(server.logicUrl).port);
      await giveKey(page, server.logicUrl);
      for (let i = 0; i < 40; i++) assert.equal((await post(server.logicUrl, '/push/all', { tag: 2, val: 'v' }, AUTH)).status, 200);
      await page.getByTestId('totals-footer').getByText('40 to all').waitFor();
      const seen = await recordRates(page);

      await server.close();
      server = undefined;
      await page.locator('.live.off').waitFor();
      server = await startServer({ apiKey: KEY, logicPort });
      await page.getByTestId('totals-footer').getByText('0 to all').waitFor();
      await page.locator('.live.on').waitFor();
      // the first event of the new stream shows no rate; the next one a real 0
      await page.getByTestId('total-pushes-rate').getByText('0.0', { exact: true }).waitFor();
      assertNoNegativeRate(await seen());
    } finally {
      await page.close();
      await server?.close();
    }
  });

  it('takes a live stream that goes silent without closing (its host or network gone) for down, says so, and follows a new one', async () => {
    const server = await startServer({});
    const streams = new Set<Link>();
    const silenced = new Set<Link>();
    // between the page and the logic API: what the server sends on a silenced connection is dropped, the connection left open
    const relay = await TcpRelay.start(() => Number(new URL(server.logicUrl).port), {
      carrier: (link) => (chunk) => {
        if (chunk.includes('GET /stats/stream ')) streams.add(link);
        link.upstream.write(chunk);
      },
      answerCarrier: (link) => (chunk) => {
        if (!silenced.has(link)) link.client.write(chunk);
      },
    });
    const page = await newPage();
    try {
      await page.goto(`http://127.0.0.1:${relay.port}/admin`);
      await page.locator('.live.on').waitFor();
      assert.equal(streams.size, 1);
      for (const link of streams) silenced.add(link);
      await page.getByText('live totals: no totals for 10 s').waitFor({ timeout: 20_000 });
      assert.equal(await page.locator('.live.off').count(), 1);
      await page.locator('.live.on').waitFor();
      assert.equal(streams.size, 2, 'the page opened a new stream');
      assert.ok([...silenced].every((link) => !relay.links.has(link)), 'and closed the silent one');
    } finally {
      await page.close();
      await relay.close();
      await server.close();
    }
  });

  it('when a gateway node goes away with what it counted, deliveries/s shows – for that second, not a negative rate', async () => {
    const cluster = await startCluster(memoryEngine, 2);
    const page = await newPage();
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(cluster.gatewayUrls[1])));
    try {
      // no API key: the page works from loopback without asking
      await page.goto(`${cluster.logicUrl}/admin`);
      await page.getByTestId('total-connections').getByText('3', { exact: true }).waitFor();
      for (let i = 0; i < 20; i++) assert.equal((await post(cluster.logicUrl, '/push/all', { tag: 2, val: 'v' })).status, 200);
      await Promise.all(clients.map((c) => c.collect(isPush, 20)));
      await page.getByTestId('totals-footer').getByText('60 deliveries').waitFor();
      const seen = await recordRates(page);

      await cluster.gateways[1].close();
      for (const c of clients) assert.equal(await c.closeCode(20_000), 1001);
      await page.getByTestId('totals-footer').getByText('0 deliveries').waitFor();
      await page.getByTestId('total-deliveries-rate').getByText('0.0', { exact: true }).waitFor();
      const shown = await seen();
      assertNoNegativeRate(shown);
      assert.ok(shown.includes('total-deliveries-rate –'), `the second the total went down shows –; shown: ${shown.join(', ')}`);
    } finally {
      await page.close();
      for (const c of clients) await c.closeAndWait();
      await cluster.close();
    }
  });

  it('refuses, at the prompt, a key no HTTP header can carry (a character past U+00FF), naming the character, and sends nothing with it', async () => {
    const server = await startServer({ apiKey: KEY });
    const page = await newPage();
    const sent: string[] = [];
    page.on('request', (req) => sent.push(new URL(req.url()).pathname));
    try {
      await page.goto(`${server.logicUrl}/admin`);
      const prompt = page.getByTestId('key-prompt');
      await prompt.locator('input[name=key]').fill('edge\u2011key');
      await prompt.getByRole('button').click();
      await prompt.getByText('"‑" (U+2011)').waitFor();
      assert.deepEqual(
        sent.filter((path) => !path.startsWith('/admin')),
        [],
        'no API call was made with that key',
      );
      assert.equal(await page.evaluate('sessionStorage.length'), 0, 'the key was not kept');

      await prompt.locator('input[name=key]').fill(KEY);
      await prompt.getByRole('button').click();
      await page.getByTestId('total-connections').waitFor();
    } finally {
      await page.close();
      await server.close();
    }
  });

  it('keeps the API key in session storage only and sends it in a header, never in a URL (the live stream included)', async () => {
    const server = await startServer({ apiKey: KEY });
    const page = await newPage();
    const requests: { url: string; authorization: string | undefined }[] = [];
    page.on('request', (req) => requests.push({ url: req.url(), authorization: req.headers().authorization }));
    try {
      await giveKey(page, server.logicUrl);
      await page.getByTestId('room-list').waitFor();
      const storage = await page.evaluate('({ session: { ...sessionStorage }, local: { ...localStorage } })');
      assert.deepEqual(storage, { session: { 'roomcast.apiKey': KEY }, local: {} });
      const stream = requests.filter((r) => new URL(r.url).pathname === '/stats/stream');
      assert.ok(stream.length > 0, 'the page follows /stats/stream');
      for (const r of stream) assert.equal(r.authorization, `Bearer ${KEY}`);
      for (const r of requests) assert.ok(!r.url.includes(KEY), `the key is in the URL ${r.url}`);
    } finally {
      await page.close();
      await server.close();
    }
  });

  it('shows an address, a uid, a wsId and push values that hold HTML as text, on the admin page and the try-it page', async () => {
    const server = await startServer({ apiKey: KEY, trustProxy: 'loopback', auth: 'optional', jwtSecret: JWT_SECRET });
    const token = await signToken({ sub: MARKUP });
    const client = await TestClient.connect(`${server.gatewayUrl}?token=${encodeURIComponent(token)}`, { headers: { 'x-forwarded-for': MARKUP } });
    const admin = await newPage();
    const tryIt = await newPage();
    try {
      assert.equal((await post(server.logicUrl, '/room/join', { id: 'markup', wsId: client.wsId }, AUTH)).status, 200);
      await giveKey(admin, server.logicUrl);
      await admin.getByTestId('inspect-wsid').fill(client.wsId);
      await admin.getByRole('button', { name: 'Inspect' }).click();
      assert.equal(await admin.getByTestId('conn-address').innerText(), MARKUP);

      await admin.getByLabel('room', { exact: true }).check();
      await admin.getByTestId('push-room').fill('markup');
      await admin.getByTestId('push-val').fill(MARKUP);
      await admin.getByTestId('push-send').click();
      assert.deepEqual(await client.next(isPush), { type: 2, data: MARKUP, room: 'markup', seq: 1 });
      await admin.getByLabel('connection').check();
      await admin.getByTestId('push-wsid').fill(MARKUP);
      await admin.getByTestId('push-send').click();
      await admin.getByTestId('push-answer').getByText('is not connected').waitFor();
      assert.match(await admin.getByTestId('push-answer').innerText(), /^404 .*"wsId \\"<img src=x onerror=/s);

      await tryIt.goto(`${server.logicUrl}/admin/try`);
      await tryIt.getByTestId('try-url').fill(server.gatewayUrl);
      await tryIt.getByLabel('token').fill(token);
      await tryIt.getByTestId('try-connect').click();
      await tryIt.getByTestId('try-status').getByText('wsId').waitFor();
      await tryIt.getByTestId('try-log').getByText(`"uid":${JSON.stringify(MARKUP)}`).waitFor();
      assert.equal((await post(server.logicUrl, '/push/all', { tag: 3, val: MARKUP }, AUTH)).status, 200);
      await tryIt.getByTestId('try-log').getByText(`{"type":3,"data":${JSON.stringify(MARKUP)}`).waitFor();

      for (const page of [admin, tryIt]) {
        assert.equal(await page.evaluate(() => (globalThis as unknown as { xss?: number }).xss), undefined, 'no markup ran');
        assert.equal(await page.locator('main img').count(), 0, 'no markup became an element');
      }
    } finally {
      await admin.close();
      await tryIt.close();
      await client.closeAndWait();
      await server.close();
    }
  });
});
