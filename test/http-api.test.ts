import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { extraRoutes } from '../src/logic/extra-routes.js';
import { routes } from '../src/logic/routes.js';
import { TestClient, isPush } from './helpers/client.js';
import { countStatsReads, openStreamRequests, readEvents } from './helpers/event-stream.js';
import { call, post, postJson, RawHttp } from './helpers/http.js';
import { serverPerSuite, withServer } from './helpers/server.js';
import { until } from './helpers/until.js';

describe('logic API', () => {
  const server = serverPerSuite({ bodyLimit: 4096 });
  let client: TestClient;
  before(async () => {
    client = await TestClient.connect(server.gatewayUrl);
  });
  after(() => client.closeAndWait());

  describe('the seed calls, with form and with JSON bodies', () => {
    it('POST /push/all answers {code:0,msg:"ok",data:{id,seq}}', async () => {
      for (const send of [post, postJson]) {
        const answer = await send(server.logicUrl, '/push/all', { val: 'test push', tag: 3 });
        assert.equal(answer.status, 200);
        assert.equal(answer.body.code, 0);
        assert.equal(answer.body.msg, 'ok');
        assert.deepEqual(Object.keys(answer.body.data ?? {}).sort(), ['id', 'seq']);
        const frame = await client.next(isPush);
        assert.deepEqual(frame, { type: 3, data: 'test push', seq: answer.body.data?.seq });
      }
    });

    it('POST /push/room answers {id,room,seq}; a JSON integer id is the room "1"', async () => {
      await post(server.logicUrl, '/room/join', { id: 1, wsId: client.wsId });
      const form = await post(server.logicUrl, '/push/room', { val: 'test push', tag: 3, id: 1 });
      const json = await postJson(server.logicUrl, '/push/room', { val: 'test push', tag: '3', id: 1 });
      for (const answer of [form, json]) {
        assert.equal(answer.status, 200);
        assert.equal(answer.body.data?.room, '1');
      }
      assert.equal((json.body.data?.seq as number) - (form.body.data?.seq as number), 1);
      const frames = await client.collect(isPush, 2);
      assert.deepEqual(frames[0], { type: 3, data: 'test push', room: '1', seq: form.body.data?.seq });
      await post(server.logicUrl, '/room/leave', { id: 1, wsId: client.wsId });
      client.frames.length = 0;
    });

    it('POST /room/join and /room/leave are idempotent and answer {room,wsId,changed}', async () => {
      const expectations: [string, boolean][] = [
        ['/room/join', true],
        ['/room/join', false],
        ['/room/leave', true],
        ['/room/leave', false],
      ];
      for (const [path, changed] of expectations) {
        const answer = await postJson(server.logicUrl, path, { id: 'idem', wsId: client.wsId });
        assert.deepEqual(answer.body, { code: 0, msg: 'ok', data: { room: 'idem', wsId: client.wsId, changed } });
      }
      client.frames.length = 0;
    });

    it('takes the first value of a repeated form field', async () => {
      const answer = await call(server.logicUrl, '/push/all', {
        raw: 'val=first&val=second&tag=5&tag=x',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(await client.next(isPush), { type: 5, data: 'first', seq: answer.body.data?.seq });
    });
  });

  describe('a val of any well-formed Unicode', () => {
    it('reaches the client as it was sent, from a form and from JSON', async () => {
      const val = '你好 😀 é\u0000\u2028"\\';
      const form = await call(server.logicUrl, '/push/all', {
        raw: new URLSearchParams({ val, tag: '6' }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      assert.equal(form.status, 200, form.text);
      assert.deepEqual(await client.next(isPush), { type: 6, data: val, seq: form.body.data?.seq });
      const json = await postJson(server.logicUrl, '/push/all', { val, tag: 7 });
      assert.equal(json.status, 200, json.text);
      assert.deepEqual(await client.next(isPush), { type: 7, data: val, seq: json.body.data?.seq });
    });
  });

  it('a path with a broken escape is a 400 naming the URL', async () => {
    for (const path of ['/rooms/%ZZ', '/conns/%E0%A4', '/users/a%']) {
      const answer = await call(server.logicUrl, path);
      assert.deepEqual([answer.status, answer.body], [400, { code: 400, msg: `the URL ${JSON.stringify(path)} is malformed: each % must start an escape (%XX) of UTF-8` }], path);
    }
  });

  describe('400 names the field', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/push/all', { tag: 3 }, 'val is required'],
      ['/push/all', { val: '', tag: 3 }, 'val must be a non-empty string'],
      ['/push/all', { val: 5, tag: 3 }, 'val must be a non-empty string'],
      // Redis would turn it into U+FFFD, memory would not: refused on both
      ['/push/all', { val: 'ok\ud800', tag: 3 }, 'val must be well-formed Unicode: it has a lone UTF-16 surrogate at index 2'],
      ['/push/room', { val: '\ud83d\ude00\udc00', tag: 3, id: 'r' }, 'val must be well-formed Unicode: it has a lone UTF-16 surrogate at index 2'],
      ['/push/all', { val: 'v' }, 'tag is required'],
      ['/push/all', { val: 'v', tag: 'abc' }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: 3.5 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: '3.5' }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: 0 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: 1 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: 2 ** 31 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: 1e21 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/all', { val: 'v', tag: -1e21 }, 'tag must be an integer from 2 to 2147483647'],
      ['/push/room', { val: 'v', tag: 3 }, 'id is required'],
      ['/push/room', { val: 'v', tag: 3, id: 'has space' }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      ['/push/room', { val: 'v', tag: 3, id: '*' }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      ['/push/room', { val: 'v', tag: 3, id: 'r'.repeat(129) }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      // URLs resolve these as dot segments: GET /rooms/./history would read the room "history"
      ['/push/room', { val: 'v', tag: 3, id: '.' }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      ['/room/join', { wsId: 'w', id: '..' }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      ['/push/room', { val: 'v', tag: 3, id: 1e21 }, 'id is a JSON number past 2^53, which cannot be kept exactly: send it as a string'],
      ['/push/room', { val: 'v', tag: 3, id: -(2 ** 53) }, 'id is a JSON number past 2^53, which cannot be kept exactly: send it as a string'],
      ['/push/room', { val: 'v', tag: 3, id: 3.5 }, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
      // past 2^31 - 1 either way: as a string it would be refused too, so no "send it as a string"
      ['/push/all', { val: 'v', tag: 2 ** 64 }, 'tag must be an integer from 2 to 2147483647'],
      ['/room/join', { id: 'r' }, 'wsId is required'],
      ['/room/join', { wsId: 'w' }, 'id is required'],
      ['/room/leave', { id: 'r', wsId: '' }, 'wsId must be a string of 1-128 characters'],
      ['/push/conn', { val: 'v', tag: 3 }, 'wsId is required'],
      ['/conn/kick', {}, 'wsId is required'],
    ];
    for (const [path, body, msg] of cases) {
      it(`${path} ${JSON.stringify(body).slice(0, 60)} -> ${msg}`, async () => {
        const answer = await postJson(server.logicUrl, path, body);
        assert.equal(answer.status, 400);
        assert.deepEqual(answer.body, { code: 400, msg });
      });
    }

    it('room ids with dots that are no dot segment ("...", "a..b", ".x") are rooms like any other, read back at their URL', async () => {
      const client = await TestClient.connect(server.gatewayUrl);
      for (const id of ['...', 'a..b', '.x']) {
        assert.equal((await post(server.logicUrl, '/room/join', { id, wsId: client.wsId })).status, 200);
        assert.deepEqual((await call(server.logicUrl, `/rooms/${id}`)).body.data?.wsIds, [client.wsId], id);
      }
      await client.closeAndWait();
    });

    it('a form body with tag 0 is refused like the JSON one (the seed turned it into type 0)', async () => {
      const answer = await post(server.logicUrl, '/push/all', { val: 'v', tag: 'zero' });
      assert.deepEqual(answer.body, { code: 400, msg: 'tag must be an integer from 2 to 2147483647' });
    });

    it('an empty POST names the first missing field', async () => {
      const answer = await call(server.logicUrl, '/push/room', { method: 'POST' });
      assert.deepEqual(answer.body, { code: 400, msg: 'val is required' });
    });

    it('a JSON body that is not an object, or is not JSON, is 400', async () => {
      assert.deepEqual((await postJson(server.logicUrl, '/push/all', [1, 2])).body, { code: 400, msg: 'body must be a form or a JSON object' });
      const broken = await call(server.logicUrl, '/push/all', { raw: '{"val":', headers: { 'content-type': 'application/json' } });
      assert.deepEqual(broken.body, { code: 400, msg: 'body is not valid JSON' });
    });

    it('a JSON body that is null is 400 saying the body must be an object, not that its first field is missing', async () => {
      const answer = await call(server.logicUrl, '/push/all', { raw: 'null', headers: { 'content-type': 'application/json' } });
      assert.deepEqual(answer.body, { code: 400, msg: 'body must be a form or a JSON object' });
    });

    it('a JSON body with a __proto__ key, or a constructor holding prototype, is 400 saying so, not "not valid JSON"', async () => {
      const msg = 'body must not have a key "__proto__", nor a "constructor" holding "prototype"';
      for (const raw of ['{"val":"v","tag":3,"__proto__":{"tag":5}}', '{"val":"v","tag":3,"constructor":{"prototype":{"tag":5}}}']) {
        const answer = await call(server.logicUrl, '/push/all', { raw, headers: { 'content-type': 'application/json' } });
        assert.deepEqual(answer.body, { code: 400, msg }, raw);
      }
    });

    it('a JSON body nested 100,000 deep is valid JSON: the check for those keys does not overflow the stack and call it invalid', async () => {
      await withServer({}, async (roomy) => {
        const deep = `{"val":"v","tag":3,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
        const answer = await call(roomy.logicUrl, '/push/all', { raw: deep, headers: { 'content-type': 'application/json' } });
        assert.equal(answer.status, 200, answer.text);
      });
    });

    it('query parameters are checked too', async () => {
      const answer = await call(server.logicUrl, '/rooms?limit=5000');
      assert.deepEqual(answer.body, { code: 400, msg: 'limit must be an integer from 0 to 1000' });
      assert.equal((await call(server.logicUrl, '/rooms/bad%20room')).status, 400);
      const since = await call(server.logicUrl, '/rooms/r/history?since=9999999999999999');
      assert.deepEqual(since.body, { code: 400, msg: 'since must be an integer from 0 to 9007199254740991' });
    });

    it('a JSON number too large to be exact is a 400 naming the field and saying to send a string, not a guess at the room', async () => {
      // 9007199254740993 reads back as ...992: an integer, but not the one sent
      const inexact = { code: 400, msg: 'id is a JSON number past 2^53, which cannot be kept exactly: send it as a string' };
      const json = { 'content-type': 'application/json' };
      for (const [path, raw] of [
        ['/push/room', '{"val":"v","tag":3,"id":9007199254740993}'],
        ['/push/room', '{"id":12345678901234567890,"val":"x","tag":3}'],
        ['/room/join', '{"id":9007199254740993,"wsId":"w"}'],
        ['/room/leave', '{"id":12345678901234567890,"wsId":"w"}'],
      ]) {
        const answer = await call(server.logicUrl, path, { raw, headers: json });
        assert.deepEqual([answer.status, answer.body], [400, inexact], `${path} ${raw}`);
      }
      const asString = await call(server.logicUrl, '/push/room', { raw: '{"id":"12345678901234567890","val":"x","tag":3}', headers: json });
      assert.equal(asString.status, 200, asString.text);
    });

    it('a repeated query parameter keeps its first value, as a repeated form field does', async () => {
      const rooms = await call(server.logicUrl, '/rooms?limit=1&limit=2&offset=0&offset=x&prefix=a&prefix=b');
      assert.equal(rooms.status, 200, rooms.text);
      assert.deepEqual([rooms.body.data?.limit, rooms.body.data?.offset], [1, 0]);
      const members = await call(server.logicUrl, '/rooms/r?limit=3&limit=4');
      assert.equal(members.body.data?.limit, 3);
      const history = await call(server.logicUrl, '/rooms/r/history?since=0&since=1&limit=5&limit=x');
      assert.equal(history.status, 200, history.text);
      assert.equal((await call(server.logicUrl, '/rooms?limit=x&limit=1')).body.msg, 'limit must be an integer from 0 to 1000', 'the first is the one checked');
    });

    it('a path parameter of any length is checked by its rule: 400 naming it, never 414 echoing it', async () => {
      const long = 'r'.repeat(300);
      const cases: [string, string][] = [
        [`/rooms/${long}`, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
        [`/rooms/${'r'.repeat(5000)}/history`, 'id must be a string of 1-128 characters from A-Z a-z 0-9 _ . : @ -, not "." or ".."'],
        [`/conns/${long}`, 'wsId must be a string of 1-128 characters'],
        [`/users/${long}`, 'uid must be a string of 1-128 characters of well-formed Unicode (no lone UTF-16 surrogate)'],
      ];
      for (const [path, msg] of cases) {
        const answer = await call(server.logicUrl, path);
        assert.deepEqual(answer.body, { code: 400, msg }, path.slice(0, 20));
        assert.ok(!answer.text.includes(long), 'the answer does not echo the parameter');
      }
    });
  });

  describe('other statuses', () => {
    /** Sends a POST /push/all head with Expect: 100-continue and no body; what the server answered before it closed the connection, with no 100 Continue. */
    async function answeredBeforeContinue(headers: string): Promise<string> {
      const raw = await RawHttp.connect(server.logicUrl);
      raw.send(`POST /push/all HTTP/1.1\r\nHost: x\r\n${headers}Expect: 100-continue\r\n\r\n`);
      await raw.closed();
      assert.doesNotMatch(raw.received, /100 Continue/);
      return raw.received;
    }

    it('404 for an unknown or closed wsId, on every call by wsId', async () => {
      const gone = await TestClient.connect(server.gatewayUrl);
      await gone.closeAndWait();
      for (const wsId of ['3cc97117-aa4d-55bb-86db-a1d77e51283b', gone.wsId]) {
        const msg = `wsId ${JSON.stringify(wsId)} is not connected`;
        for (const [path, body] of [
          ['/room/join', { id: 1, wsId }],
          ['/room/leave', { id: 1, wsId }],
          ['/push/conn', { wsId, val: 'v', tag: 3 }],
          ['/conn/kick', { wsId }],
        ] as const) {
          assert.deepEqual((await postJson(server.logicUrl, path, body)).body, { code: 404, msg }, path);
        }
        assert.deepEqual((await call(server.logicUrl, `/conns/${wsId}`)).body, { code: 404, msg });
      }
    });

    it('404 for an unknown route', async () => {
      assert.deepEqual((await call(server.logicUrl, '/push/everyone', { form: { val: 'v', tag: 3 } })).body, {
        code: 404,
        msg: 'no route POST /push/everyone',
      });
    });

    it('405 with an Allow header for a wrong method, including the seed GET with query parameters', async () => {
      const answer = await call(server.logicUrl, '/push/all?val=x&tag=3');
      assert.equal(answer.status, 405);
      assert.equal(answer.headers.get('allow'), 'POST');
      assert.deepEqual(answer.body, { code: 405, msg: 'method GET is not allowed on /push/all: use POST' });
      const del = await call(server.logicUrl, '/rooms', { method: 'DELETE' });
      assert.equal(del.status, 405);
      assert.equal(del.headers.get('allow'), 'GET, HEAD');
    });

    it('405 for every method fastify routes, TRACE and QUERY too, not a 404 "no route" or a 400 asking QUERY for a content-type', async () => {
      const query = await call(server.logicUrl, '/rooms/r1', { method: 'QUERY' });
      assert.equal(query.status, 405, query.text);
      assert.deepEqual(query.body, { code: 405, msg: 'method QUERY is not allowed on /rooms/r1: use GET, HEAD' });
      assert.equal(query.headers.get('allow'), 'GET, HEAD');
      const raw = await RawHttp.connect(server.logicUrl);
      try {
        raw.send('TRACE /push/all HTTP/1.1\r\nHost: x\r\n\r\n');
        await raw.waitFor('}');
        assert.match(raw.received, /^HTTP\/1\.1 405 /);
        assert.match(raw.received, /\r\nallow: POST\r\n/i);
        assert.match(raw.received, /"method TRACE is not allowed on \/push\/all: use POST"/);
      } finally {
        raw.close();
      }
    });

    it('413 for a body over the limit', async () => {
      const answer = await post(server.logicUrl, '/push/all', { val: 'x'.repeat(5000), tag: 3 });
      assert.deepEqual(answer.body, { code: 413, msg: 'request body is larger than the limit of 4096 bytes (--body-limit)' });
    });

    it('Expect: 100-continue with a declared length over the limit is 413 at once, with no 100 Continue: the body is never sent', async () => {
      const received = await answeredBeforeContinue('Content-Type: application/json\r\nContent-Length: 5000\r\n');
      assert.match(received, /^HTTP\/1.1 413 /, received);
      assert.ok(received.endsWith('{"code":413,"msg":"request body is larger than the limit of 4096 bytes (--body-limit)"}'), received);
    });

    it('Expect: 100-continue with a content-type that is neither form nor JSON is 415 at once, with no 100 Continue', async () => {
      const received = await answeredBeforeContinue('Content-Type: text/plain\r\nContent-Length: 11\r\n');
      assert.match(received, /^HTTP\/1.1 415 /, received);
      assert.match(received, /content-type \\"text\/plain\\" is not supported/);
    });

    it('Expect: 100-continue with a body and no content-type is 415 at once, with no 100 Continue', async () => {
      for (const framing of ['Content-Length: 11\r\n', 'Transfer-Encoding: chunked\r\n']) {
        const received = await answeredBeforeContinue(framing);
        assert.match(received, /^HTTP\/1.1 415 /, received);
        assert.ok(received.endsWith('{"code":415,"msg":"the body has no content-type: send application/x-www-form-urlencoded or application/json"}'), received);
      }
    });

    it('Expect: 100-continue with a charset other than UTF-8 is 415 at once, with no 100 Continue', async () => {
      const received = await answeredBeforeContinue('Content-Type: application/json; charset=iso-8859-1\r\nContent-Length: 11\r\n');
      assert.match(received, /^HTTP\/1.1 415 /, received);
      assert.ok(received.endsWith('{"code":415,"msg":"charset \\"iso-8859-1\\" is not supported: send the body in UTF-8"}'), received);
    });

    it('a compressed body of an unsupported content-type gets the same 415, naming the encoding, with or without Expect: 100-continue', async () => {
      const msg = '{"code":415,"msg":"content-encoding \\"gzip\\" is not supported: send the body uncompressed"}';
      for (const expect of ['', 'Expect: 100-continue\r\n']) {
        const raw = await RawHttp.connect(server.logicUrl);
        raw.send(`POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: 11\r\n${expect}\r\n${expect === '' ? 'val=x&tag=3' : ''}`);
        await raw.waitFor('}');
        assert.match(raw.received, /^HTTP\/1.1 415 /, raw.received);
        assert.ok(raw.received.endsWith(msg), `${expect}: ${raw.received}`);
        raw.close();
      }
    });

    it('Expect: 100-continue within the limit gets 100 Continue, then the answer to the body sent after it', async () => {
      const raw = await RawHttp.connect(server.logicUrl);
      const body = JSON.stringify({ val: 'after 100 Continue', tag: 3 });
      raw.send(`POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
      await raw.waitFor('HTTP/1.1 100 Continue\r\n\r\n');
      raw.send(body);
      await raw.waitFor('"msg":"ok"');
      assert.match(raw.received, /^HTTP\/1.1 100 Continue\r\n\r\nHTTP\/1.1 200 /);
      assert.equal((await client.next(isPush)).data, 'after 100 Continue');
      raw.close();
    });

    it('an Expect other than 100-continue is 417 with the JSON error naming it, after the checks of the key and method', async () => {
      const raw = await RawHttp.connect(server.logicUrl);
      raw.send('POST /push/all HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\nExpect: 200-ok\r\n\r\nval=x&tag=3\n');
      await raw.waitFor('}');
      assert.match(raw.received, /^HTTP\/1.1 417 /, raw.received);
      assert.ok(raw.received.endsWith('{"code":417,"msg":"Expect \\"200-ok\\" is not supported: send Expect: 100-continue, or no Expect"}'), raw.received);
      raw.close();
      const wrongMethod = await RawHttp.connect(server.logicUrl);
      wrongMethod.send('PUT /push/all HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nExpect: 200-ok\r\n\r\n');
      await wrongMethod.waitFor('}');
      assert.match(wrongMethod.received, /^HTTP\/1.1 405 /, wrongMethod.received);
      wrongMethod.close();
    });

    it('415 for a body that is neither form nor JSON', async () => {
      const answer = await call(server.logicUrl, '/push/all', { raw: 'val=x&tag=3', headers: { 'content-type': 'text/plain' } });
      assert.equal(answer.status, 415);
      assert.match(answer.body.msg, /content-type "text\/plain" is not supported/);
    });

    it('415 for a body in a charset other than UTF-8 names the charset, rather than reading its bytes as UTF-8', async () => {
      const latin1 = Buffer.from('val=caf\xe9&tag=3', 'latin1');
      for (const [type, body] of [
        ['application/x-www-form-urlencoded; charset=iso-8859-1', latin1],
        ['application/json;charset="latin1"', Buffer.from('{"val":"caf\xe9","tag":3}', 'latin1')],
      ] as const) {
        const res = await fetch(`${server.logicUrl}/push/all`, { method: 'POST', body, headers: { 'content-type': type } });
        assert.equal(res.status, 415, type);
        const charset = /charset="?([^";]+)/.exec(type)?.[1] ?? '';
        assert.deepEqual(await res.json(), { code: 415, msg: `charset ${JSON.stringify(charset)} is not supported: send the body in UTF-8` });
      }
      for (const type of ['application/x-www-form-urlencoded; charset=UTF-8', 'application/x-www-form-urlencoded; charset=us-ascii', 'application/json; charset="utf8"']) {
        const body = type.includes('json') ? JSON.stringify({ val: 'café', tag: 3 }) : 'val=caf%C3%A9&tag=3';
        const answer = await call(server.logicUrl, '/push/all', { raw: body, headers: { 'content-type': type } });
        assert.equal(answer.status, 200, `${type}: ${answer.text}`);
        assert.equal((await client.next(isPush)).data, 'café');
      }
    });

    it('415 for a body with no content-type says the header is missing', async () => {
      // fetch sends bytes with no content-type, where it would label a string text/plain
      const res = await fetch(`${server.logicUrl}/push/all`, { method: 'POST', body: Buffer.from('val=x&tag=3') });
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.deepEqual(await res.json(), {
        code: 415,
        msg: 'the body has no content-type: send application/x-www-form-urlencoded or application/json',
      });
    });

    it('415 for a compressed body names its content-encoding, rather than reading the compressed bytes as the body', async () => {
      const { gzipSync } = await import('node:zlib');
      const json = gzipSync(JSON.stringify({ val: 'zipped', tag: 3 }));
      const form = gzipSync('val=zipped&tag=3');
      for (const [body, type, encoding] of [
        [json, 'application/json', 'gzip'],
        [form, 'application/x-www-form-urlencoded', 'gzip'],
        [Buffer.from('val=zipped&tag=3'), 'application/x-www-form-urlencoded', 'br'],
      ] as const) {
        const res = await fetch(`${server.logicUrl}/push/all`, { method: 'POST', body, headers: { 'content-type': type, 'content-encoding': encoding } });
        assert.equal(res.status, 415, `${type} ${encoding}`);
        assert.equal(res.headers.get('accept-encoding'), 'identity');
        assert.deepEqual(await res.json(), { code: 415, msg: `content-encoding "${encoding}" is not supported: send the body uncompressed` });
      }
      const identity = await call(server.logicUrl, '/push/all', { form: { val: 'plain', tag: 3 }, headers: { 'content-encoding': 'Identity' } });
      assert.equal(identity.status, 200, identity.text);
      assert.equal((await client.next(isPush)).data, 'plain');
    });

    it('applies the documented precedence: 405 before 413 before 415 before 400 before 404', async () => {
      const big = 'x'.repeat(5000);
      assert.equal((await call(server.logicUrl, '/push/all', { method: 'PUT', raw: big, headers: { 'content-type': 'text/plain' } })).status, 405);
      assert.equal((await call(server.logicUrl, '/push/all', { raw: big, headers: { 'content-type': 'text/plain' } })).status, 413);
      assert.equal((await call(server.logicUrl, '/push/all', { raw: 'tag=x', headers: { 'content-type': 'text/plain' } })).status, 415);
      assert.equal((await postJson(server.logicUrl, '/room/join', { id: 'bad id', wsId: 'nobody' })).status, 400);
    });
  });

  describe('queries', () => {
    it('GET /rooms lists rooms with member counts, sorted, paged and filtered by prefix', async () => {
      const others = await Promise.all([1, 2].map(() => TestClient.connect(server.gatewayUrl)));
      for (const id of ['q:a', 'q:b', 'q:c']) await post(server.logicUrl, '/room/join', { id, wsId: client.wsId });
      await post(server.logicUrl, '/room/join', { id: 'q:b', wsId: others[0].wsId });
      await post(server.logicUrl, '/room/join', { id: 'q:b', wsId: others[1].wsId });
      const all = await call(server.logicUrl, '/rooms?prefix=q:');
      assert.deepEqual(all.body.data, {
        total: 3,
        offset: 0,
        limit: 100,
        rooms: [
          { room: 'q:a', members: 1 },
          { room: 'q:b', members: 3 },
          { room: 'q:c', members: 1 },
        ],
      });
      const page = await call(server.logicUrl, '/rooms?prefix=q:&offset=1&limit=1');
      assert.deepEqual(page.body.data?.rooms, [{ room: 'q:b', members: 3 }]);

      const room = await call(server.logicUrl, '/rooms/q:b?limit=2');
      assert.equal(room.body.data?.members, 3);
      assert.equal((room.body.data?.wsIds as string[]).length, 2);
      const rest = await call(server.logicUrl, '/rooms/q:b?offset=2');
      const everyone = [...(room.body.data?.wsIds as string[]), ...(rest.body.data?.wsIds as string[])].sort();
      assert.deepEqual(everyone, [client.wsId, ...others.map((o) => o.wsId)].sort());
      await Promise.all(others.map((o) => o.closeAndWait()));
      for (const id of ['q:a', 'q:b', 'q:c']) await post(server.logicUrl, '/room/leave', { id, wsId: client.wsId });
      client.frames.length = 0;
    });

    it('GET /rooms pages through many rooms joined in any order: each page in id order, together every room once', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `p:${String((i * 17) % 40).padStart(2, '0')}`);
      for (const id of ids) assert.equal((await post(server.logicUrl, '/room/join', { id, wsId: client.wsId })).status, 200);
      const seen: string[] = [];
      for (let offset = 0; offset < 42; offset += 3) {
        const page = await call(server.logicUrl, `/rooms?prefix=p:&offset=${offset}&limit=3`);
        assert.equal(page.body.data?.total, 40);
        seen.push(...(page.body.data?.rooms as { room: string }[]).map((r) => r.room));
      }
      assert.deepEqual(seen, [...ids].sort());
      for (const id of ids) await post(server.logicUrl, '/room/leave', { id, wsId: client.wsId });
      client.frames.length = 0;
    });

    it('GET /rooms/:id of a room with no members is 200 with a count of 0', async () => {
      const answer = await call(server.logicUrl, '/rooms/empty-room');
      assert.deepEqual(answer.body, { code: 0, msg: 'ok', data: { room: 'empty-room', members: 0, offset: 0, limit: 100, wsIds: [] } });
    });

    it('GET /conns/:wsId shows rooms, remote address and connect time', async () => {
      await post(server.logicUrl, '/room/join', { id: 'info', wsId: client.wsId });
      const answer = await call(server.logicUrl, `/conns/${client.wsId}`);
      const data = answer.body.data ?? {};
      assert.equal(data.wsId, client.wsId);
      assert.deepEqual(data.rooms, ['info']);
      assert.equal(data.remoteAddress, '127.0.0.1');
      assert.ok(Date.now() - Date.parse(data.connectedAt as string) < 60_000);
      await post(server.logicUrl, '/room/leave', { id: 'info', wsId: client.wsId });
      client.frames.length = 0;
    });

    it('GET /stats, /healthz and /readyz answer', async () => {
      const stats = await call(server.logicUrl, '/stats');
      assert.equal(stats.body.data?.engine, 'memory');
      assert.equal(stats.body.data?.connections, 1);
      assert.ok((stats.body.data?.pushes as { all: number }).all >= 2);
      assert.deepEqual((await call(server.logicUrl, '/healthz')).body, { code: 0, msg: 'ok', data: { status: 'ok' } });
      assert.deepEqual((await call(server.logicUrl, '/readyz')).body, { code: 0, msg: 'ok', data: { status: 'ready' } });
    });

    it('GET /openapi.json documents exactly the routes the server answers', async () => {
      const doc = (await call(server.logicUrl, '/openapi.json')).body as unknown as { openapi: string; paths: Record<string, Record<string, unknown>> };
      assert.equal(doc.openapi, '3.1.0');
      const documented = Object.entries(doc.paths)
        .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
        .sort();
      const served = [...routes.map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`), ...extraRoutes.map((r) => `${r.method} ${r.url}`)].sort();
      assert.deepEqual(documented, served);
      for (const entry of documented) {
        const [method, path] = entry.split(' ');
        const res = await fetch(server.logicUrl + path.replace(/\{\w+\}/g, 'probe'), {
          method,
          ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{}' } : {}),
        });
        // /stats/stream never ends: read its status and stop.
        const text = res.headers.get('content-type')?.startsWith('text/event-stream') ? (await res.body?.cancel(), '') : await res.text();
        assert.ok(![404, 405].includes(res.status) || /wsId/.test(text), `${entry} answered ${res.status} ${text}`);
      }
    });

    it('every operation answers a body over the limit with 413 exactly when /openapi.json lists 413 for it: a GET never reads its body', async () => {
      const doc = (await call(server.logicUrl, '/openapi.json')).body as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          const raw = await RawHttp.connect(server.logicUrl);
          const body = 'x'.repeat(5000);
          raw.send(`${method.toUpperCase()} ${path.replace(/\{\w+\}/g, 'probe')} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          await raw.waitFor('\r\n');
          raw.close();
          const status = raw.received.split(' ')[1];
          assert.equal(status === '413', '413' in op.responses, `${method.toUpperCase()} ${path} answered ${raw.received.split('\r\n')[0]}`);
        }
      }
    });

    it('every operation answers an Expect other than 100-continue with 417, and /openapi.json lists 417 for it', async () => {
      const doc = (await call(server.logicUrl, '/openapi.json')).body as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) {
          // fetch refuses to send an Expect header
          const raw = await RawHttp.connect(server.logicUrl);
          raw.send(`${method.toUpperCase()} ${path.replace(/\{\w+\}/g, 'probe')} HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n`);
          await raw.waitFor('\r\n');
          raw.close();
          assert.equal(raw.received.split(' ')[1], '417', `${method.toUpperCase()} ${path} answered ${raw.received.split('\r\n')[0]}`);
          assert.ok('417' in op.responses, `/openapi.json lists no 417 for ${method.toUpperCase()} ${path}`);
        }
      }
    });
  });
});

describe('GET /stats/stream with several viewers', () => {
  const server = serverPerSuite();

  it('reads the totals once a second for every viewer together, and stops reading once the last one left', async () => {
    const reads = countStatsReads(server.broker);
    const streams = openStreamRequests(server.logic.app.server);
    const first = readEvents(`${server.logicUrl}/stats/stream`, 4);
    // the second viewer comes once the first one's reads have begun
    await until('the first read for the first viewer', () => (reads.count >= 1 ? true : undefined));
    const second = await readEvents(`${server.logicUrl}/stats/stream`, 3);
    const firstEvents = (await first).events;
    const readAt = new Set(firstEvents.map((e) => e.data.at));
    assert.equal(readAt.size, 4);
    assert.equal(second.events.length, 3, 'the second viewer got its 3 events');
    for (const e of second.events) assert.ok(readAt.has(e.data.at), `the second viewer got a read of its own (at ${String(e.data.at)})`);
    // the 4 events of the first viewer are 4 reads: fewer would mean the count below misses reads, and the checks on it prove nothing
    assert.ok(reads.count >= 4 && reads.count <= 5, `${reads.count} reads for 4 s of two viewers`);
    await until('the server to see both viewers gone', () => (streams.count === 0 ? true : undefined));
    streams.stop();
    const readsWhenLeft = reads.count;
    await sleep(2500);
    assert.equal(reads.count, readsWhenLeft, 'read on with no viewer');
  });
});

describe('logic API access', () => {
  it('with --api-key, every call but health needs Authorization: Bearer <key> (401 otherwise)', async () => {
    await withServer({ apiKey: 's3cret' }, async (server) => {
      const missing = await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 });
      assert.equal(missing.status, 401);
      assert.match(missing.body.msg, /Authorization: Bearer/);
      assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="roomcast"', 'a 401 names the scheme it wants (RFC 9110 §11.6.1)');
      // each 401 says what is wrong
      const refusals: [Record<string, string>, string][] = [
        [{}, 'the request has no Authorization header'],
        [{ authorization: 'Bearer wrong' }, 'the key is not the one roomcast runs with (--api-key)'],
        [{ authorization: 's3cret' }, 'the Authorization header is not of the form "Bearer <key>"'],
        [{ authorization: 'Basic czNjcmV0' }, 'the Authorization header is not of the form "Bearer <key>"'],
      ];
      for (const [headers, wrong] of refusals) {
        const answer = await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, headers);
        assert.deepEqual([answer.status, answer.body], [401, { code: 401, msg: `missing or wrong API key: ${wrong}; send the header Authorization: Bearer <key>` }], JSON.stringify(headers));
      }
      assert.equal((await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, { authorization: 'Bearer s3cret' })).status, 200);
      for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
        assert.equal((await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, { authorization: `${scheme} s3cret` })).status, 200, 'the scheme is case-insensitive');
      }
      for (const wrong of ['bearer wrong', 'Bearers3cret', 'Basic s3cret', 'bearer S3CRET']) {
        assert.equal((await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, { authorization: wrong })).status, 401, wrong);
      }
      assert.equal((await call(server.logicUrl, '/stats')).status, 401);
      assert.equal((await call(server.logicUrl, '/push/all')).status, 401, '401 comes before 405');
      const tooBigPlainText = { raw: 'x'.repeat(2 * 1024 * 1024), headers: { 'content-type': 'text/plain' } };
      assert.equal((await call(server.logicUrl, '/push/all', tooBigPlainText)).status, 401, '401 comes before 413');
      assert.equal((await call(server.logicUrl, '/push/all', { raw: 'val=x', headers: { 'content-type': 'text/plain' } })).status, 401, '401 comes before 415');
      assert.equal((await postJson(server.logicUrl, '/room/join', { id: 'bad id', wsId: 'nobody' })).status, 401, '401 comes before 400 and 404');
      assert.equal((await call(server.logicUrl, '/healthz')).status, 200);
      assert.equal((await call(server.logicUrl, '/readyz')).status, 200);
    });
  });

  it('with no key, calls from non-loopback addresses get 403 saying how to set a key', async () => {
    await withServer({ trustProxy: 'loopback' }, async (server) => {
      const remote = { 'x-forwarded-for': '203.0.113.7' };
      const answer = await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, remote);
      assert.equal(answer.status, 403);
      assert.match(answer.body.msg, /--api-key/);
      assert.equal((await call(server.logicUrl, '/push/all', { headers: remote })).status, 403, '403 comes before 405');
      const tooBigPlainText = { raw: 'x'.repeat(2 * 1024 * 1024), headers: { ...remote, 'content-type': 'text/plain' } };
      assert.equal((await call(server.logicUrl, '/push/all', tooBigPlainText)).status, 403, '403 comes before 413 and 415');
      assert.equal((await postJson(server.logicUrl, '/room/join', { id: 'bad id', wsId: 'nobody' }, remote)).status, 403, '403 comes before 400 and 404');
      assert.equal((await call(server.logicUrl, '/healthz', { headers: remote })).status, 200);
      assert.equal((await post(server.logicUrl, '/push/all', { val: 'v', tag: 3 }, { 'x-forwarded-for': '127.0.0.5' })).status, 200);
    });
  });
});

describe('GET /openapi.json on a server with an API key and --public-metrics', () => {
  const apiKey = 'openapi-test-key';
  const server = serverPerSuite({ apiKey, publicMetrics: true });

  interface Operation {
    security?: unknown[];
    responses: Record<string, unknown>;
  }

  it('says which operations need the key, and lists 401 and 403 only for those, as the server answers them', async () => {
    const doc = (await call(server.logicUrl, '/openapi.json', { headers: { authorization: `Bearer ${apiKey}` } })).body as unknown as {
      security: unknown[];
      paths: Record<string, Record<string, Operation>>;
    };
    const open: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const entry = `${method.toUpperCase()} ${path}`;
        const needsKey = (op.security ?? doc.security).length > 0;
        if (!needsKey) open.push(entry);
        for (const status of ['401', '403']) assert.equal(status in op.responses, needsKey, `${entry}: ${status} listed`);
        const res = await fetch(server.logicUrl + path.replace(/\{\w+\}/g, 'probe'), { method: method.toUpperCase() });
        await res.body?.cancel();
        assert.equal(res.status === 401, needsKey, `${entry} answered ${res.status} without the key`);
      }
    }
    assert.deepEqual(open.sort(), ['GET /healthz', 'GET /metrics', 'GET /readyz']);
  });

  it('lists 409 only for POST /room/join and the pushes that claim an idempotency key, and 404 only where a wsId is looked up; no operation lists 405', async () => {
    const doc = (await call(server.logicUrl, '/openapi.json', { headers: { authorization: `Bearer ${apiKey}` } })).body as unknown as {
      paths: Record<string, Record<string, Operation>>;
    };
    const listing = (status: string): string[] =>
      Object.entries(doc.paths)
        .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]): [string, Operation] => [`${method.toUpperCase()} ${path}`, op]))
        .filter(([, op]) => status in op.responses)
        .map(([entry]) => entry)
        .sort();
    assert.deepEqual(listing('409'), ['POST /push/conn', 'POST /push/user', 'POST /room/join']);
    assert.deepEqual(listing('404'), ['GET /conns/{wsId}', 'POST /conn/kick', 'POST /push/conn', 'POST /room/join', 'POST /room/leave']);
    assert.deepEqual(listing('405'), []);
  });

  it('answers a wrong method on a path that needs no key with 405, without the key', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics', '/admin', '/admin/', '/admin/config.json']) {
      const res = await call(server.logicUrl, path, { method: 'POST' });
      assert.equal(res.status, 405, `POST ${path}: ${res.text}`);
      assert.match(res.headers.get('allow') ?? '', /GET/);
    }
    assert.equal((await call(server.logicUrl, '/stats', { method: 'POST' })).status, 401, 'a path that needs the key asks for it first');
  });
});

describe('the logic API with the default --body-limit', () => {
  it('takes a body of exactly 1 MiB (its unknown fields ignored) and answers one a byte over with 413', async () => {
    await withServer({}, async (server) => {
      const bodyOf = (bytes: number): string => {
        const shell = '{"val":"v","tag":3,"pad":""}';
        return `{"val":"v","tag":3,"pad":"${'p'.repeat(bytes - shell.length)}"}`;
      };
      const json = { 'content-type': 'application/json' };
      const atLimit = await call(server.logicUrl, '/push/all', { raw: bodyOf(1024 * 1024), headers: json });
      assert.equal(atLimit.status, 200, atLimit.text);
      assert.deepEqual(Object.keys(atLimit.body.data ?? {}).sort(), ['id', 'seq']);
      const over = await call(server.logicUrl, '/push/all', { raw: bodyOf(1024 * 1024 + 1), headers: json });
      assert.deepEqual(over.body, { code: 413, msg: 'request body is larger than the limit of 1048576 bytes (--body-limit)' });
    });
  });
});
