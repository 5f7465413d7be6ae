import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Locator, Page } from 'playwright-core';
import type { RoomcastClient as BrowserClient } from '../client/browser.js';
import type { Message, StateChange } from '../client/types.js';
import { browserPerSuite, browserSkipReason, screenshotPaths, SdkPageServer } from './helpers/browser.js';
import { TestClient, isPush } from './helpers/client.js';
import { post } from './helpers/http.js';
import { RedisServer, skipWithoutRedis } from './helpers/redis.js';
import { forceSlowConsumerClose } from './helpers/slow-consumer.js';
import { serverPerSuite, startServer, withServer, type TestServer } from './helpers/server.js';
import { until } from './helpers/until.js';

/** What the SDK test page keeps on its global object. */
interface SdkPage {
  sdk: { RoomcastClient: new (url: string, options?: object) => BrowserClient };
  client: BrowserClient;
  messages: Message[];
  states: StateChange[];
}

/** What the listener test adds to the page: its online and offline listeners, the sockets it opened, and more clients. */
interface NetworkProbe {
  networkListeners: Record<'online' | 'offline', Set<unknown>>;
  socketsOpened: number;
  others: BrowserClient[];
  addEventListener(type: string, listener: unknown, options?: unknown): void;
  removeEventListener(type: string, listener: unknown, options?: unknown): void;
  dispatchEvent(event: object): boolean;
  Event: new (type: string) => object;
  WebSocket: new (url: string) => object;
}

/** The live-totals tile of the failed pushes (the figure and its name). */
function failedPushesTile(page: Page): Locator {
  return page.locator('.total', { has: page.getByTestId('total-failed-pushes') });
}

/** Opens the admin page of the logic API at `logicUrl` and gives it the API key `browser-key`. */
async function openAdmin(page: Page, logicUrl: string): Promise<void> {
  await page.goto(`${logicUrl}/admin`);
  const prompt = page.getByTestId('key-prompt');
  await prompt.locator('input[name=key]').fill('browser-key');
  await prompt.getByRole('button').click();
  await page.getByTestId('total-connections').waitFor();
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Opens the SDK page and starts a client there with `options` (and `random` always returning `random`), recording its messages and states. */
async function startPageClient(page: Page, pageUrl: string, gatewayUrl: string, options: object, random?: number): Promise<void> {
  await page.goto(pageUrl);
  await page.waitForFunction(() => (globalThis as unknown as SdkPage).sdk !== undefined);
  await page.evaluate(
    ({ url, options, random }) => {
      const g = globalThis as unknown as SdkPage;
      g.messages = [];
      g.states = [];
      g.client = new g.sdk.RoomcastClient(url, random === undefined ? options : { ...options, random: () => random });
      g.client.on('message', (m) => g.messages.push(m));
      g.client.on('state', (s) => g.states.push(s));
    },
    { url: gatewayUrl, options, random },
  );
}

/** Waits for the page's client to reach `state`; returns how long that took. */
async function pageClientState(page: Page, state: string, timeout?: number): Promise<number> {
  const start = Date.now();
  await page.waitForFunction((state) => (globalThis as unknown as SdkPage).client.state === state, state, { timeout });
  return Date.now() - start;
}

describe('in a real browser (Debian chromium, playwright-core)', { skip: browserSkipReason() }, () => {
  const { newPage } = browserPerSuite();

  describe('the SDK', () => {
    let pages: SdkPageServer;
    before(async () => {
      pages = await SdkPageServer.start();
    });
    after(() => pages.close());

    it('receives room and all pushes, and reconnects by itself after the server restarts', async () => {
      const page = await newPage();
      let server: TestServer | undefined;
      try {
        server = await startServer({ allowClientJoin: true });
        await startPageClient(page, pages.url, server.gatewayUrl, { reconnect: { initialDelayMs: 100, maxDelayMs: 400 } });
        await pageClientState(page, 'connected');

        const joined = await page.evaluate(() => (globalThis as unknown as SdkPage).client.join('browser'));
        assert.deepEqual(joined, { room: 'browser', changed: true });
        const room = await post(server.logicUrl, '/push/room', { id: 'browser', tag: 5, val: 'to the room' });
        const all = await post(server.logicUrl, '/push/all', { tag: 6, val: 'to everyone' });
        await page.waitForFunction(() => (globalThis as unknown as SdkPage).messages.length === 2);
        assert.deepEqual(await page.evaluate(() => (globalThis as unknown as SdkPage).messages), [
          { tag: 5, data: 'to the room', room: 'browser', seq: room.body.data?.seq },
          { tag: 6, data: 'to everyone', room: undefined, seq: all.body.data?.seq },
        ]);

        const firstWsId = await page.evaluate(() => (globalThis as unknown as SdkPage).client.wsId);
        const gatewayPort = portOf(server.gatewayUrl);
        await server.close();
        await pageClientState(page, 'reconnecting');
        server = await startServer({ allowClientJoin: true, gatewayPort });
        await pageClientState(page, 'connected', 10_000);
        const secondWsId = await page.evaluate(() => (globalThis as unknown as SdkPage).client.wsId);
        assert.notEqual(secondWsId, firstWsId);

        const states = await page.evaluate(() => (globalThis as unknown as SdkPage).states);
        assert.deepEqual(states.slice(0, 3).map((s) => [s.state, s.code]), [['connecting', undefined], ['connected', undefined], ['reconnecting', 1001]]);
        assert.equal(states.at(-1)?.state, 'connected');
        for (const s of states.filter((x) => x.state === 'reconnecting')) assert.ok((s.retryInMs ?? -1) >= 0 && (s.retryInMs ?? 0) < 400);

        const again = await post(server.logicUrl, '/push/all', { tag: 7, val: 'after the restart' });
        await page.waitForFunction(() => (globalThis as unknown as SdkPage).messages.length === 3);
        assert.deepEqual(await page.evaluate(() => (globalThis as unknown as SdkPage).messages.at(-1)), { tag: 7, data: 'after the restart', room: undefined, seq: again.body.data?.seq });
        await page.evaluate(() => (globalThis as unknown as SdkPage).client.close());
      } finally {
        await page.close();
        await server?.close();
      }
    });

    it('drops its connection as soon as the browser goes offline, and resumes it as soon as it is back online, not after its backoff', async () => {
      const page = await newPage();
      // the default heartbeat: without the offline event, the client would notice the dead network only 10 s later
      const server = await startServer({ allowClientJoin: true, heartbeatTimeout: 10_000 });
      try {
        // every retry waits 99% of its ceiling, 19.8 s for the first: only the online event can explain a quick reconnect
        await startPageClient(page, pages.url, server.gatewayUrl, { reconnect: { initialDelayMs: 20_000, maxDelayMs: 60_000 } }, 0.99);
        await pageClientState(page, 'connected');
        await page.evaluate(() => (globalThis as unknown as SdkPage).client.join('offline'));
        const wsId = await page.evaluate(() => (globalThis as unknown as SdkPage).client.wsId);

        // Chromium's offline emulation fires `offline` and stalls the open loopback socket (nothing flows, it does not
        // close), and fails new ones at once: the client drops it (closing with 4002, held back until the network returns)
        await page.context().setOffline(true);
        // bounds with room for a loaded machine, and still well under the 10 s heartbeat and the 19.8 s retry
        const droppedIn = await pageClientState(page, 'reconnecting', 8000);
        assert.ok(droppedIn < 5000, `reconnecting ${droppedIn} ms after going offline`);
        // the server still sends it on the stalled socket; the resume replays it
        const pushed = await post(server.logicUrl, '/push/room', { id: 'offline', tag: 8, val: 'sent while offline' });
        assert.equal(pushed.status, 200);
        // an online event while the network is still down: the retry it makes at once fails, and the next one waits
        // out the backoff's second step (99% of 40 s), not its first again
        await page.evaluate(() => {
          const g = globalThis as unknown as NetworkProbe;
          g.dispatchEvent(new g.Event('online'));
        });
        await page.waitForFunction(() => (globalThis as unknown as SdkPage).states.length === 4);

        await page.context().setOffline(false);
        const backIn = await pageClientState(page, 'connected', 15_000);
        assert.ok(backIn < 5000, `connected ${backIn} ms after coming back online (the retry waits 39.6 s)`);
        await page.waitForFunction(() => (globalThis as unknown as SdkPage).messages.length === 1);
        assert.deepEqual(await page.evaluate(() => (globalThis as unknown as SdkPage).messages), [
          { tag: 8, data: 'sent while offline', room: 'offline', seq: pushed.body.data?.seq },
        ]);
        assert.deepEqual(await page.evaluate(() => (globalThis as unknown as SdkPage).states), [
          { state: 'connecting' },
          { state: 'connected', wsId },
          { state: 'reconnecting', code: 1006, reason: 'the browser went offline', retryInMs: 19_800 },
          { state: 'reconnecting', code: 1006, reason: '', retryInMs: 39_600 },
          { state: 'connected', wsId, recovered: true },
        ]);
        assert.deepEqual(await page.evaluate(() => [...(globalThis as unknown as SdkPage).client.rooms]), ['offline']);
        await page.evaluate(() => (globalThis as unknown as SdkPage).client.close());
      } finally {
        await page.close();
        await server.close();
      }
    });

    it('listens to online and offline only until it is closed: by close(), by the server, or before it connected', async () => {
      const page = await newPage();
      const server = await startServer();
      // counts the page's online and offline listeners, and the sockets it opens, from before the SDK loads
      await page.addInitScript(() => {
        const g = globalThis as unknown as NetworkProbe;
        g.networkListeners = { online: new Set(), offline: new Set() };
        g.socketsOpened = 0;
        const [add, remove] = [g.addEventListener.bind(g), g.removeEventListener.bind(g)];
        g.addEventListener = (type, listener, options) => {
          if (type === 'online' || type === 'offline') g.networkListeners[type].add(listener);
          add(type, listener, options);
        };
        g.removeEventListener = (type, listener, options) => {
          if (type === 'online' || type === 'offline') g.networkListeners[type].delete(listener);
          remove(type, listener, options);
        };
        g.WebSocket = class extends g.WebSocket {
          constructor(url: string) {
            super(url);
            g.socketsOpened++;
          }
        };
      });
      const seen = (): Promise<{ online: number; offline: number; sockets: number }> =>
        page.evaluate(() => {
          const g = globalThis as unknown as NetworkProbe;
          return { online: g.networkListeners.online.size, offline: g.networkListeners.offline.size, sockets: g.socketsOpened };
        });
      try {
        // `client` closes itself; `others[0]` does not reconnect, so a kick closes it; `others[1]` is closed before it connects
        await startPageClient(page, pages.url, server.gatewayUrl, { reconnect: { initialDelayMs: 20_000, maxDelayMs: 60_000 } });
        await page.evaluate((url) => {
          const g = globalThis as unknown as SdkPage & NetworkProbe;
          g.others = [new g.sdk.RoomcastClient(url, { reconnect: false }), new g.sdk.RoomcastClient(url)];
          g.others[1].close();
        }, server.gatewayUrl);
        await pageClientState(page, 'connected');
        await page.waitForFunction(() => (globalThis as unknown as NetworkProbe).others[0].state === 'connected');
        assert.deepEqual(await seen(), { online: 2, offline: 2, sockets: 2 });

        await page.evaluate(() => (globalThis as unknown as SdkPage).client.close());
        assert.deepEqual(await seen(), { online: 1, offline: 1, sockets: 2 });

        const kicked = await page.evaluate(() => (globalThis as unknown as NetworkProbe).others[0].wsId!);
        assert.equal((await post(server.logicUrl, '/conn/kick', { wsId: kicked })).status, 200);
        await page.waitForFunction(() => (globalThis as unknown as NetworkProbe).others[0].state === 'closed');
        assert.deepEqual(await seen(), { online: 0, offline: 0, sockets: 2 });

        // the network going and coming back wakes no closed client
        await page.evaluate(() => {
          const g = globalThis as unknown as NetworkProbe;
          for (const type of ['offline', 'online']) g.dispatchEvent(new g.Event(type));
        });
        await sleep(200);
        assert.deepEqual(await seen(), { online: 0, offline: 0, sockets: 2 });
        assert.deepEqual(await page.evaluate(() => (globalThis as unknown as SdkPage & NetworkProbe).states.map((s) => s.state)), ['connecting', 'connected', 'closed']);
      } finally {
        await page.close();
        await server.close();
      }
    });
  });

  describe('the admin page', () => {
    // a small send buffer, so that a client that stops reading is closed as a slow consumer after a few pushes;
    // no heartbeat timeout: the suite's clients never ping, and its tests together can take longer than the default 10 s
    const server = serverPerSuite({ apiKey: 'browser-key', sendBufferLimit: 1024, heartbeatTimeout: 0 });
    let clients: TestClient[];
    before(async () => {
      clients = await Promise.all([0, 1, 2].map(() => TestClient.connect(server.gatewayUrl)));
      const auth = { authorization: 'Bearer browser-key' };
      for (const [room, client] of [['alpha', clients[0]], ['alpha', clients[1]], ['beta', clients[2]], ['gamma', clients[2]]] as const) {
        assert.equal((await post(server.logicUrl, '/room/join', { id: room, wsId: client.wsId }, auth)).status, 200);
      }
    });
    after(async () => {
      for (const c of clients) await c.closeAndWait();
    });


    it('asks for the API key, shows the right counts, rooms and members, pushes from its form, and kicks', async () => {
      const page = await newPage();
      try {
        await page.goto(`${server.logicUrl}/admin`);
        const prompt = page.getByTestId('key-prompt');
        await prompt.locator('input[name=key]').fill('not-the-key');
        await prompt.getByRole('button').click();
        await prompt.getByText('missing or wrong API key').waitFor();
        await prompt.locator('input[name=key]').fill('browser-key');
        await prompt.getByRole('button').click();

        await page.getByTestId('total-connections').getByText('3', { exact: true }).waitFor();
        await page.getByTestId('total-rooms').getByText('3', { exact: true }).waitFor();
        const rows = page.getByTestId('room-list').locator('tbody tr');
        await rows.nth(2).waitFor();
        assert.deepEqual(await rows.allInnerTexts(), ['alpha\t2', 'beta\t1', 'gamma\t1']);

        await page.getByTestId('room-search').fill('ph');
        await page.getByTestId('room-total').getByText('1 room matching “ph”').waitFor();
        assert.deepEqual(await rows.allInnerTexts(), ['alpha\t2']);

        await rows.first().click();
        const members = page.getByTestId('room-members');
        await members.getByRole('button').nth(1).waitFor();
        const alpha = [clients[0].wsId, clients[1].wsId].sort();
        assert.deepEqual(await members.getByRole('button').allInnerTexts(), alpha);

        await members.getByRole('button', { name: clients[0].wsId }).click();
        const info = page.getByTestId('conn-info');
        await info.getByText(clients[0].wsId).waitFor();
        assert.equal(await page.getByTestId('conn-rooms').innerText(), 'alpha');
        assert.equal(await page.getByTestId('conn-address').innerText(), '127.0.0.1');
        assert.match(await page.getByTestId('conn-age').innerText(), /^\d+s$/);

        await page.getByLabel('room', { exact: true }).check();
        await page.getByTestId('push-room').fill('alpha');
        await page.getByTestId('push-tag').fill('9');
        await page.getByTestId('push-val').fill('from the admin page');
        await page.getByTestId('push-send').click();
        const pushed = await Promise.all([clients[0].next(isPush), clients[1].next(isPush)]);
        assert.deepEqual(pushed, [
          { type: 9, data: 'from the admin page', room: 'alpha', seq: 1 },
          { type: 9, data: 'from the admin page', room: 'alpha', seq: 1 },
        ]);
        const answer = page.getByTestId('push-answer');
        await answer.getByText('"seq": 1').waitFor();
        assert.match(await answer.innerText(), /^200 \{\s+"code": 0,\s+"msg": "ok",\s+"data": \{\s+"id": "[\w-]+",\s+"room": "alpha",\s+"seq": 1/);
        assert.deepEqual(clients[2].frames.filter(isPush), [], 'the connection outside alpha got nothing');

        await page.getByTestId('room-search').fill('');
        await rows.nth(2).waitFor();
        await page.getByTestId('total-pushes-rate').filter({ hasNotText: '–' }).waitFor();
        for (const path of screenshotPaths('admin.png')) await page.screenshot({ path, fullPage: true });

        await page.getByLabel('tag').fill('1');
        await page.getByTestId('push-send').click();
        await answer.getByText('tag must be an integer from 2 to 2147483647').waitFor();
        assert.match(await answer.innerText(), /^400 /);

        await page.getByTestId('kick').click();
        assert.equal(await clients[0].closeCode(20_000), 4003);
        await page.getByTestId('kick-answer').getByText('"kicked": true').waitFor();
        await page.getByTestId('total-connections').getByText('2', { exact: true }).waitFor();
      } finally {
        await page.close();
      }
    });

    it('shows real rates and closes: pushes/s counts pushes to users, deliveries/s follows pushes to all, a slow consumer and a frame too large are counted', async () => {
      const auth = { authorization: 'Bearer browser-key' };
      const page = await newPage();
      /** Reads a total until `accept` takes it (or fails after 10 s, with the last text seen). */
      const readTotal = async (testId: string, accept: (value: number) => boolean): Promise<number> => {
        let text = '';
        return until(() => `${testId} showed ${JSON.stringify(text)}, which the test does not accept`, async () => {
          text = await page.getByTestId(testId).innerText();
          return text !== '–' && accept(Number(text)) ? Number(text) : undefined;
        });
      };
      /** Pushes from 2 concurrent callers until stopped. */
      const keepPushing = (path: string, form: Record<string, string | number>): (() => Promise<void>) => {
        let stopped = false;
        const callers = [0, 1].map(async () => {
          while (!stopped) assert.equal((await post(server.logicUrl, path, form, auth)).status, 200);
        });
        return async () => {
          stopped = true;
          await Promise.all(callers);
        };
      };
      try {
        await openAdmin(page, server.logicUrl);
        const connections = await readTotal('total-connections', (n) => n > 0);

        // nothing flows: both rates read 0
        await readTotal('total-pushes-rate', (n) => n === 0);
        await readTotal('total-deliveries-rate', (n) => n === 0);

        // only pushes to a user: they count in pushes/s, and deliver nothing (no connection has a user)
        const stopUsers = keepPushing('/push/user', { uid: 'nobody-here', tag: 2, val: 'to a user' });
        try {
          assert.ok((await readTotal('total-pushes-rate', (n) => n > 0)) > 0);
        } finally {
          await stopUsers();
        }
        assert.match(await page.getByTestId('totals-footer').innerText(), /[1-9]\d* to users/);
        await readTotal('total-pushes-rate', (n) => n === 0);

        // pushes to all: every connection gets each, so deliveries/s is about connections times pushes/s
        const stopAll = keepPushing('/push/all', { tag: 2, val: 'to all' });
        try {
          const deliveries = await readTotal('total-deliveries-rate', (n) => n > 0);
          const pushes = Number(await page.getByTestId('total-pushes-rate').innerText());
          assert.ok(pushes > 0, `pushes/s ${pushes}`);
          const ratio = deliveries / pushes;
          assert.ok(ratio > connections / 2 && ratio < connections * 2, `deliveries/s ${deliveries} for ${pushes} pushes/s to ${connections} connections`);
        } finally {
          await stopAll();
        }

        // the memory broker takes every push: none failed, and the tile is not in the warning colour
        assert.equal(await page.getByTestId('total-failed-pushes').innerText(), '0');
        assert.equal(await failedPushesTile(page).getAttribute('class'), 'total');

        assert.equal(await page.getByTestId('total-slow').innerText(), '0');
        await forceSlowConsumerClose(server, 'admin-slow', auth);
        await readTotal('total-slow', (n) => n === 1);

        // a real frame over --max-payload (64 KiB): the client is closed with 1009, and the page counts it
        assert.equal(await page.getByTestId('total-too-large').innerText(), '0');
        const oversize = await TestClient.connect(server.gatewayUrl);
        oversize.send({ type: 1, data: 'x'.repeat(70 * 1024) });
        assert.equal((await oversize.closedWithin('the server to close the oversize sender')).code, 1009);
        await readTotal('total-too-large', (n) => n === 1);
      } finally {
        await page.close();
      }
    });

    it('shows the connection looked up last, though an earlier look-up answers after it, and a look-up that gets no answer as an error', async () => {
      const page = await newPage();
      const [slow, fast] = [clients[1].wsId, clients[2].wsId];
      try {
        await openAdmin(page, server.logicUrl);
        // the server's answer about `slow` reaches the page 1.5 s late
        await page.route(`**/conns/${slow}`, async (route) => {
          await sleep(1500);
          await route.continue();
        });
        await page.route('**/conns/unreachable', (route) => route.abort('connectionfailed'));
        const inspect = async (wsId: string): Promise<void> => {
          await page.getByTestId('inspect-wsid').fill(wsId);
          await page.getByRole('button', { name: 'Inspect' }).click();
        };
        await inspect(slow);
        await inspect(fast);
        await page
          .getByTestId('conn-info')
          .getByText(fast)
          .waitFor()
          .catch(async (err: unknown) => {
            // says what the page showed instead (it once showed "not connected": the client had been closed by the heartbeat timeout)
            const shown = await page.locator('section.card').filter({ has: page.getByTestId('inspect-wsid') }).innerText();
            const typed = await page.getByTestId('inspect-wsid').inputValue();
            throw new Error(`${fast} (looked up last) is not shown; the input holds ${typed} (${slow} was looked up first); the section shows: ${shown}`, { cause: err });
          });
        await sleep(2000); // the late answer has come meanwhile
        assert.equal(await page.getByTestId('conn-rooms').innerText(), 'beta, gamma', `still ${fast}, not ${slow}`);
        assert.equal(await page.getByTestId('conn-info').getByText(slow).count(), 0);

        await inspect('unreachable');
        await page.locator('p.error').getByText('GET /conns/unreachable got no answer:').waitFor();
        assert.equal(await page.getByTestId('conn-info').count(), 0);
      } finally {
        await page.close();
      }
    });
    it('shows the rooms of the newest search, though the answer to an older one lands after it', async () => {
      const page = await newPage();
      const member = await TestClient.connect(server.gatewayUrl);
      const searchOf = (url: URL): string | null => (url.pathname === '/rooms' ? url.searchParams.get('contains') : null);
      try {
        for (const room of ['searched-old', 'searched-new']) {
          assert.equal((await post(server.logicUrl, '/room/join', { id: room, wsId: member.wsId }, { authorization: 'Bearer browser-key' })).status, 200);
        }
        await openAdmin(page, server.logicUrl);
        // the answer to the search "searched" (both rooms) reaches the page 1 s late; later reads of "searched-new"
        // are held back 10 s, so that nothing but the late answer can change the list meanwhile
        await page.route((url) => searchOf(url) === 'searched', async (route) => {
          await sleep(1000);
          await route.continue();
        });
        let newReads = 0;
        await page.route((url) => searchOf(url) === 'searched-new', async (route) => {
          if (++newReads > 1) await sleep(10_000);
          await route.continue().catch(() => undefined);
        });
        const lateAnswer = page.waitForResponse((res) => searchOf(new URL(res.url())) === 'searched');
        await page.getByTestId('room-search').fill('searched');
        await page.getByTestId('room-search').fill('searched-new');
        await page.getByTestId('room-total').getByText('1 room matching “searched-new”').waitFor();
        await lateAnswer;
        await sleep(500); // the page has read and shown the late answer, if it shows it
        const shown = await page.getByTestId('room-list').locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-room')));
        assert.deepEqual(shown, ['searched-new']);
        assert.equal(await page.getByTestId('room-total').innerText(), '1 room matching “searched-new”');
      } finally {
        await page.close();
        await member.closeAndWait();
      }
    });
  });

  describe('the admin page, on a Redis that refuses writes', { skip: skipWithoutRedis }, () => {
    let redis: RedisServer;
    let server: TestServer | undefined;
    before(async () => {
      redis = await RedisServer.start();
      server = await startServer({ apiKey: 'browser-key', broker: redis.url });
    });
    after(async () => {
      await server?.close();
      await redis?.stop();
    });

    it('counts the pushes answered 503 among the live totals, in the warning colour', async () => {
      const { logicUrl } = server!;
      const auth = { authorization: 'Bearer browser-key' };
      const page = await newPage();
      try {
        await openAdmin(page, logicUrl);
        assert.equal((await post(logicUrl, '/push/all', { tag: 2, val: 'taken' }, auth)).status, 200);
        assert.equal(await page.getByTestId('total-failed-pushes').innerText(), '0');
        assert.equal(await failedPushesTile(page).getAttribute('class'), 'total');

        // every write is now over maxmemory: Redis answers OOM, and the logic API answers each push 503
        await redis.command(['CONFIG', 'SET', 'maxmemory', '1']);
        assert.equal((await post(logicUrl, '/push/all', { tag: 2, val: 'refused' }, auth)).status, 503);
        assert.equal((await post(logicUrl, '/push/room', { id: 'lobby', tag: 2, val: 'refused' }, auth)).status, 503);
        await page.getByTestId('total-failed-pushes').getByText('2', { exact: true }).waitFor();
        assert.equal(await failedPushesTile(page).getAttribute('class'), 'total alarm');
        assert.match((await failedPushesTile(page).getAttribute('title')) ?? '', /: 1 to all, 1 to rooms, 0 to connections, 0 to users$/);
      } finally {
        await page.close();
      }
    });
  });

  describe('the try-it page', () => {
    it('connects to the gateway, shows each frame, sends PING, shows its own heartbeats only when asked, joins and sees a room push', async () => {
      // a 600 ms heartbeat: the page pings every 200 ms by itself
      await withServer({ allowClientJoin: true, heartbeatTimeout: 600 }, async (server) => {
        const page = await newPage();
        try {
          await page.goto(`${server.logicUrl}/admin/try`);
          const url = page.getByTestId('try-url');
          await until('the try page to fill in its URL', async () => (await url.inputValue()) || undefined, 5000);
          assert.equal(await url.inputValue(), server.gatewayUrl, 'the URL defaults to this process\'s gateway');
          await page.getByTestId('try-connect').click();
          const log = page.getByTestId('try-log');
          await log.getByText('"op":"welcome"').waitFor();
          await page.getByTestId('try-status').getByText('wsId').waitFor();

          const pings = log.getByText('{"type":1,"data":"PING"}', { exact: true });
          const pongs = log.getByText('{"type":1,"data":"PONG"}', { exact: true });
          await sleep(700); // three heartbeat PINGs and their PONGs, not logged
          assert.deepEqual([await pings.count(), await pongs.count()], [0, 0]);

          await page.getByTestId('try-ping').click();
          await pongs.first().waitFor();
          assert.deepEqual([await pings.count(), await pongs.count()], [1, 1], 'the PING sent by hand and its PONG');

          await page.getByTestId('try-show-heartbeats').check();
          const beats = log.locator('.line.heartbeat');
          await beats.nth(3).waitFor();
          const beatTexts = await beats.locator('code').allInnerTexts();
          const countOf = (text: string): number => beatTexts.filter((t) => t === text).length;
          assert.equal(countOf('{"type":1,"data":"PING"}') + countOf('{"type":1,"data":"PONG"}'), beatTexts.length, beatTexts.join(' '));
          assert.ok(countOf('{"type":1,"data":"PING"}') >= 1 && countOf('{"type":1,"data":"PONG"}') >= 1, beatTexts.join(' '));
          await page.getByTestId('try-show-heartbeats').uncheck();
          await sleep(300); // a PONG on its way when switched off may still show
          const shown = await beats.count();
          await sleep(700);
          assert.equal(await beats.count(), shown, 'no more heartbeats logged once switched off');
          assert.match(await page.getByTestId('try-status').innerText(), /^open/, 'the heartbeat kept the connection');

          await page.getByTestId('try-room').fill('tried');
          await page.getByTestId('try-join').click();
          await log.getByText('{"type":0,"op":"reply","id":1,"room":"tried","changed":true}').waitFor();
          await post(server.logicUrl, '/push/room', { id: 'tried', tag: 4, val: 'hello page' });
          await log.getByText('{"type":4,"data":"hello page","room":"tried","seq":1}').waitFor();
        } finally {
          await page.close();
        }
      });
    });
  });
});
