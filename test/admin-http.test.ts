import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestClient } from './helpers/client.js';
import { countStatsReads, EventStream, openStreamRequests, readEvents, type StreamEvent } from './helpers/event-stream.js';
import { call, post, RawHttp } from './helpers/http.js';
import { serverPerSuite } from './helpers/server.js';
import { until, within } from './helpers/until.js';

describe('admin pages over HTTP', () => {
  const server = serverPerSuite({ apiKey: 'adm1n' });

  it('serves /admin without the API key, with a policy that allows scripts from the server only', async () => {
    for (const path of ['/admin', '/admin/', '/admin/try']) {
      const res = await fetch(server.logicUrl + path);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /default-src 'self'/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
      const html = await res.text();
      const scripts = [...html.matchAll(/<script[^>]*>/g)].map((m) => m[0]);
      assert.ok(scripts.length > 0);
      for (const tag of scripts) assert.match(tag, /src="\/admin\/assets\/[\w.-]+\.js"/, `${path}: every script is a file from /admin/assets: ${tag}`);
    }
  });

  it('serves the built assets with a year of caching, and 404s what is not there', async () => {
    const html = await (await fetch(`${server.logicUrl}/admin`)).text();
    const asset = /src="(\/admin\/assets\/[\w.-]+\.js)"/.exec(html)?.[1];
    assert.ok(asset !== undefined);
    const res = await fetch(server.logicUrl + asset);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /javascript/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('cache-control') ?? '', /max-age=31536000.*immutable|immutable.*max-age=31536000/);
    assert.ok((await res.text()).length > 1000);

    assert.deepEqual((await call(server.logicUrl, '/admin/assets/nope.js')).body, { code: 404, msg: 'no route GET /admin/assets/nope.js' });
    for (const outside of ['/admin/assets/..%2f..%2fpackage.json', '/admin/assets/sub%2f..%2f..%2fsrc%2fcli.js']) {
      const answer = await call(server.logicUrl, outside);
      assert.equal(answer.status, 404, outside);
      assert.match(answer.body.msg, /^no admin asset "/);
    }
  });

  it('answers /admin/config.json with whether a key is needed and where the gateway is', async () => {
    const answer = await fetch(`${server.logicUrl}/admin/config.json`);
    assert.equal(answer.status, 200);
    assert.deepEqual(await answer.json(), { apiKey: true, gateway: { port: Number(new URL(server.gatewayUrl).port), path: '/connect' } });
  });
});

describe('GET /stats/stream', () => {
  const server = serverPerSuite({ apiKey: 'adm1n' });

  it('needs the API key like the rest of the API', async () => {
    const refused = await readEvents(`${server.logicUrl}/stats/stream`, 1);
    assert.equal(refused.status, 401);
    assert.equal(refused.events.length, 0);
  });

  it('answers HEAD with the headers of the stream at once, and keeps no viewer for it', async () => {
    const reads = countStatsReads(server.broker);
    try {
      const res = await within(fetch(`${server.logicUrl}/stats/stream`, { method: 'HEAD', headers: { authorization: 'Bearer adm1n' } }), 2000, 'HEAD /stats/stream');
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
      await sleep(1500);
      assert.equal(reads.count, 0, 'the totals were read for a HEAD');
    } finally {
      reads.restore();
    }
  });

  it('stops reading once a client that pipelined a stream behind another closes its connection', async () => {
    const reads = countStatsReads(server.broker);
    const streams = openStreamRequests(server.logic.app.server);
    try {
      const http = await RawHttp.connect(server.logicUrl);
      // the second stream waits behind the first, which never ends: Node gives its answer no socket, so no close of its own
      const stream = 'GET /stats/stream HTTP/1.1\r\nHost: roomcast\r\nAuthorization: Bearer adm1n\r\n\r\n';
      http.send(stream + stream);
      await http.waitFor('event: stats');
      assert.equal(streams.count, 2, 'the server holds both streams');
      http.close();
      await until('the server to see both streams gone with the connection', () => (streams.count === 0 ? true : undefined));
      const readsWhenLeft = reads.count;
      assert.ok(readsWhenLeft >= 1, 'the streams were read');
      await sleep(2500);
      assert.equal(reads.count, readsWhenLeft, 'read on for a stream whose connection is gone');
    } finally {
      streams.stop();
      reads.restore();
    }
  });

  it('sends the /stats totals at once, then one event a second, following real traffic', async () => {
    const auth = { authorization: 'Bearer adm1n' };
    const client = await TestClient.connect(server.gatewayUrl);
    try {
      const stream = await EventStream.open(`${server.logicUrl}/stats/stream`, auth);
      assert.equal(stream.status, 200);
      assert.equal(stream.type, 'text/event-stream; charset=utf-8');
      const events: StreamEvent[] = [];
      const read = async (): Promise<void> => {
        const event = await within(stream.next(), 5000, `stats event ${events.length + 1}`);
        assert.ok(event !== undefined, `the stream ended after ${events.length} events`);
        events.push(event);
      };
      try {
        await read();
        // the traffic comes after the first event, which has the totals from before it
        await post(server.logicUrl, '/push/all', { val: 'v', tag: 2 }, auth);
        await post(server.logicUrl, '/room/join', { id: 'streamed', wsId: client.wsId }, auth);
        await read();
        await read();
      } finally {
        await stream.close();
      }
      assert.deepEqual(events.map((e) => e.event), ['stats', 'stats', 'stats']);
      const [first, , last] = events.map((e) => e.data);
      const stats = (await call(server.logicUrl, '/stats', { headers: auth })).body.data ?? {};
      assert.deepEqual(Object.keys(first).sort(), [...Object.keys(stats), 'at'].sort());
      assert.equal(first.connections, 1);
      assert.equal(first.deliveries, 0);
      assert.deepEqual(last.pushes, { all: 1, room: 0, conn: 0, user: 0 });
      assert.equal(last.deliveries, 1);
      assert.equal(last.rooms, 1);
      // timed by the server's own stamp of each event: when the test reads them (after its posts, on a busy
      // machine) says nothing of the server's cadence; under twice the second, so an event every 2 s fails
      const gaps = events.slice(1).map((e, i) => (e.data.at as number) - (events[i].data.at as number));
      for (const gap of gaps) assert.ok(gap >= 800 && gap < 1900, `events ${gap} ms apart`);
    } finally {
      await client.closeAndWait();
    }
  });
});
