/**
 * The roomcast client, the same wherever it runs: browser.ts and node.ts
 * only tell it how to open a WebSocket.
 *
 * One connection at a time. It waits for the welcome frame, pings at a third
 * of the welcome's `heartbeat`, and drops a connection the server has gone
 * silent on. A lost connection is retried with exponential backoff and full
 * jitter, except after a 4500-4999 close (the server's "do not reconnect").
 * The backoff starts again from its first step only after a connection has
 * stayed connected for `maxDelayMs`: a server that welcomes and closes at once is
 * retried ever more slowly, up to the cap, not every few hundred ms. A resume
 * the server cannot decide now is closed with 1013: the retry resumes again with
 * the same token and positions.
 *
 * After a reconnect it resumes the session (PROTOCOL.md §4): it sends the
 * last resume token and the last `seq` and epoch of every stream it is in as
 * its first frame, gets back its wsId and rooms and every message it missed,
 * and reports `connected` with `recovered` once the server says `resumed`
 * (an error frame answering the resume, whatever its code, refuses it).
 * A resume left unanswered for `connectTimeoutMs` drops the socket and is
 * tried again, with the same token and positions, on the next connection.
 */
import { BAD_TOKEN_CLOSE, isTerminalCloseCode, keepsSession } from '../src/protocol/close-codes.js';
import { PING_FRAME } from '../src/protocol/frames.js';
import { ALL_STREAM, ROOM_ID_PATTERN, ROOM_ID_RULE } from '../src/protocol/room-id.js';
import { backoffDelay, checkBackoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import { Emitter } from './emitter.js';
import { parseServerFrame, type ServerFrame } from './frames.js';
import type { OpenTransport, Transport } from './transport.js';
import type { ClientEvents, ClientOptions, ClientState, JoinResult, StateChange, StreamPosition } from './types.js';

/** Every error the client reports; `code` is a server error code, or timeout, disconnected, closed, bad_request. */
export class RoomcastError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RoomcastError';
  }
}

/** The codes of errors the client raises itself; every other code is the server's answer. */
const CLIENT_ERROR_CODES = new Set(['timeout', 'disconnected', 'closed']);

/** The server's refusal (an error frame), not a failure the client raised itself. */
function isRefusal(err: unknown): err is RoomcastError {
  return err instanceof RoomcastError && !CLIENT_ERROR_CODES.has(err.code);
}

/** Code reported when the client itself gives up on a connection (no welcome, or a silent server). */
export const ABNORMAL_CLOSE = 1006;

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const MIN_PING_INTERVAL_MS = 10;

interface PendingOp {
  id: number;
  op: 'join' | 'leave' | 'refresh';
  /** The op's fields besides `op` and `id`. */
  fields: Record<string, string>;
  /** Names the op in error messages: "join lobby". */
  label: string;
  sent: boolean;
  timer: ReturnType<typeof setTimeout>;
  resolve(reply: Record<string, unknown>): void;
  reject(error: RoomcastError): void;
}

function positiveMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a number of ms above 0, got ${value}`);
  return value;
}

/** Checks the gateway URL and adds the token; throws a TypeError naming what is wrong. */
function connectUrl(url: string, token: string | undefined): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // reported below, as a URL of another scheme is
  }
  if (parsed?.protocol !== 'ws:' && parsed?.protocol !== 'wss:') {
    throw new TypeError(`url must be an absolute ws:// or wss:// URL, got ${JSON.stringify(url)}`);
  }
  if (token !== undefined) parsed.searchParams.set('token', checkToken(token));
  return parsed.toString();
}

/** The token's `exp` in ms, read from its payload without verifying it; NaN when it is no JWT or has no exp. */
function tokenExpiry(token: string | undefined): number {
  try {
    // the server refuses a token whose exp is not a number: no need to check it here
    return (JSON.parse(atob(token!.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) as { exp: number }).exp * 1000;
  } catch {
    return NaN;
  }
}

/** What the error event carries, whatever getToken rejected with. */
function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(`getToken rejected with ${String(err)}`);
}

function checkToken(token: unknown): string {
  if (typeof token !== 'string' || token === '') throw new TypeError('token must be a non-empty string');
  return token;
}

export class BaseRoomcastClient extends Emitter<ClientEvents> {
  readonly #openTransport: OpenTransport;
  readonly #baseUrl: string;
  /** The token later connections carry... */
  #token: string | undefined;
  /** ...and the one the server holds for the current connection: they differ after a setToken() while it was being opened. */
  #socketToken: string | undefined;
  readonly #timeoutMs: number;
  readonly #connectTimeoutMs: number;
  readonly #backoff: BackoffOptions | false;
  readonly #random: () => number;

  #currentState: ClientState = 'connecting';
  #currentWsId: string | undefined;
  #transport: Transport | undefined;
  /** Bumped for every connection, so events of an old socket are ignored. */
  #generation = 0;
  #attempt = 0;
  #started = false;
  #lastReceivedAt = 0;
  /** Runs from the socket's opening until the welcome, then from the resume until its answer; before a retry, while getToken is asked. */
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** When this connection's session got going (undefined before): how long it stayed up decides whether the backoff restarts. */
  #connectedAt: number | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Asks getToken for the next token a margin before the current one's exp. */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  /** The retry #retryTimer will run, while it waits: retryNow() runs it early. */
  #pendingRetry: (() => void) | undefined;
  #nextId = 0;
  readonly #pending = new Map<number, PendingOp>();
  readonly #joinedRooms = new Set<string>();
  readonly #streamPositions = new Map<string, StreamPosition>();
  /** Epoch of the `*` stream on this connection (from the welcome, once the server keeps history). */
  #allEpoch: string | undefined;
  readonly #resumeEnabled: boolean;
  readonly #getToken: (() => Promise<string>) | undefined;
  /** The session's latest resume token (from the welcome, then from each `resumed`). */
  #resumeToken: string | undefined;
  /** A session was up before: the next `connected` says whether it `recovered`. */
  #hadSession = false;
  /** The welcome of a connection that is resuming, kept in case the resume is refused. */
  #resumingFrom: Extract<ServerFrame, { kind: 'welcome' }> | undefined;

  protected constructor(url: string, options: ClientOptions, openTransport: OpenTransport) {
    super();
    this.#openTransport = openTransport;
    connectUrl(url, options.token);
    this.#baseUrl = url;
    this.#token = options.token;
    this.#timeoutMs = positiveMs(options.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.#connectTimeoutMs = positiveMs(options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS, 'connectTimeoutMs');
    this.#backoff = options.reconnect === false ? false : checkBackoff({ ...DEFAULT_BACKOFF, ...options.reconnect });
    this.#random = options.random ?? Math.random;
    this.#resumeEnabled = options.resume !== false;
    if (options.getToken !== undefined && typeof options.getToken !== 'function') throw new TypeError('getToken must be a function');
    this.#getToken = options.getToken;
    // Connect on the next microtask, so listeners added right after `new` see every state change.
    queueMicrotask(() => this.#open());
  }

  get state(): ClientState {
    return this.#currentState;
  }

  /** This connection's id, while connected. */
  get wsId(): string | undefined {
    return this.#currentWsId;
  }

  /**
   * Rooms the session is in, from the server's `joined` and `left` frames; kept
   * while reconnecting (the server keeps them for the resume).
   */
  get rooms(): ReadonlySet<string> {
    return this.#joinedRooms;
  }

  /**
   * The last `seq` (and epoch, once the server sends them) seen per stream:
   * a room id, or `*` for pushes to all. Kept across reconnects, for resume.
   */
  get positions(): ReadonlyMap<string, StreamPosition> {
    return this.#streamPositions;
  }

  /** Joins a room with the client's own op (the server must allow it: --allow-client-join, or the token's rooms claim). */
  join(room: string): Promise<JoinResult> {
    return this.#membership('join', room);
  }

  leave(room: string): Promise<JoinResult> {
    return this.#membership('leave', room);
  }

  /**
   * Replaces the token: later connections use it, and a connected client sends
   * it at once (`{"op":"refresh"}`), before the old one expires and the server
   * closes the connection with 4001 (a connection being opened sends it once it
   * is up). Rejects when the server refuses it (later connections then keep the
   * token before), and when the refresh gets no answer (the new token stays: a
   * reconnect sends it anyway).
   */
  async setToken(token: string): Promise<void> {
    // a token left out (say, getToken resolving to undefined) would otherwise drop the token from later connections
    this.#token = checkToken(token);
    if (this.#currentState !== 'connected') return;
    try {
      await this.#request('refresh', { token }, 'refresh');
      this.#socketToken = token;
      // not after a close() or drop that came in the same tick as the answer: no timer may outlive the connection
      if (this.#transport) this.#scheduleRefresh();
    } catch (err) {
      // later connections keep the token the server accepted
      if (isRefusal(err) && this.#token === token) this.#token = this.#socketToken;
      throw err;
    }
  }

  /** Closes the connection with 1000 and stops reconnecting; pending joins and leaves are rejected. */
  close(): void {
    if (this.#currentState === 'closed') return;
    const transport = this.#transport;
    const reason = 'closed by the client';
    this.#finish(1000, reason);
    transport?.close(1000, reason);
  }

  /** A client waiting to reconnect retries now; the backoff step count stays (browser.ts calls it when the network is back). */
  protected retryNow(): void {
    this.#pendingRetry?.();
  }

  /** Drops the connection as the heartbeat does, and reconnects (browser.ts calls it when the network is gone). */
  protected dropNow(reason: string): void {
    if (this.#transport !== undefined) this.#drop(reason);
  }

  #open(): void {
    if (!this.#started) {
      this.#started = true;
      // not when close() came before this first microtask
      if (this.#currentState !== 'closed') this.#setState({ state: 'connecting' });
    }
    // also after the connecting state: one of its listeners may have closed the client
    if (this.#currentState === 'closed') return;
    const generation = ++this.#generation;
    const current = (): boolean => generation === this.#generation;
    this.#handshakeTimer = setTimeout(() => this.#drop(`no welcome frame within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
    try {
      this.#socketToken = this.#token;
      this.#transport = this.#openTransport(connectUrl(this.#baseUrl, this.#token), {
        message: (text) => current() && this.#receive(text),
        close: (code, reason) => current() && this.#lost(code, reason),
      });
    } catch (err) {
      this.#lost(ABNORMAL_CLOSE, err instanceof Error ? err.message : String(err));
    }
  }

  #receive(text: string): void {
    this.#lastReceivedAt = Date.now();
    const frame = parseServerFrame(text);
    switch (frame.kind) {
      case 'welcome':
        return this.#welcomed(frame);
      case 'resumed':
        return this.#resumed(frame);
      case 'push': {
        const { message } = frame;
        if (message.seq !== undefined) {
          if (message.room === undefined) this.#record(ALL_STREAM, message.seq, this.#allEpoch);
          else this.#record(message.room, message.seq);
        }
        return this.emit('message', message);
      }
      case 'joined': {
        const { membership } = frame;
        this.#joinedRooms.add(membership.room);
        if (membership.seq !== undefined) this.#record(membership.room, membership.seq, membership.epoch);
        return this.emit('joined', membership);
      }
      case 'left':
        this.#joinedRooms.delete(frame.room);
        this.#streamPositions.delete(frame.room);
        return this.emit('left', { room: frame.room });
      case 'reply': {
        this.#takePending(frame.id)?.resolve(frame.frame);
        return;
      }
      case 'error': {
        const error = new RoomcastError(frame.code, frame.message);
        const resumingFrom = this.#resumingFrom;
        if (resumingFrom && frame.id === undefined) {
          // an error without an id while resuming answers the resume (only it is in flight):
          // whatever its code, the session cannot be taken back, so go on as the new connection.
          // Told before that connection's state: a listener of it may close the client, and closed is the last event.
          this.emit('error', error);
          return this.#startFresh(resumingFrom);
        }
        const op = this.#takePending(frame.id);
        if (op !== undefined) op.reject(error);
        else this.emit('error', error);
        return;
      }
      // a pong, or text that is no frame roomcast sends (not JSON, say): nothing to do but the lastReceivedAt above
    }
  }

  #welcomed(frame: Extract<ServerFrame, { kind: 'welcome' }>): void {
    // one welcome per connection: a second (no roomcast server sends one) must not drop the session's rooms
    if (this.#resumingFrom || this.#currentWsId) return;
    clearTimeout(this.#handshakeTimer);
    // pushes to all that come on this connection are of this server's `*`, also while it resumes
    this.#allEpoch = frame.epoch;
    this.#startHeartbeat(frame.heartbeatMs);
    const since = this.#since();
    if (this.#resumeEnabled && this.#resumeToken !== undefined && since !== undefined) {
      this.#resumingFrom = frame;
      this.#transport?.send(JSON.stringify({ op: 'resume', token: this.#resumeToken, since }));
      // the server's pongs keep the socket alive, so only this notices a resume that is never answered
      this.#handshakeTimer = setTimeout(() => this.#drop(`no answer to the resume within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
      return;
    }
    // the first frame tells the server this connection does not resume, so it sends pushes at once
    this.#transport?.send(PING_FRAME);
    this.#startFresh(frame);
  }

  /** The positions to resume from: every stream whose epoch is known, or undefined when there is nothing to resume. */
  #since(): Record<string, StreamPosition> | undefined {
    const known = [...this.#streamPositions].filter(([, position]) => position.epoch !== undefined);
    // fromEntries defines each key, so a room named __proto__ is a field of since, not its prototype
    return known.length === 0 ? undefined : Object.fromEntries(known);
  }

  /** A new session: new wsId, no rooms, positions from the welcome. */
  #startFresh(frame: Extract<ServerFrame, { kind: 'welcome' }>): void {
    const reconnected = this.#hadSession;
    this.#resumingFrom = undefined;
    this.#resumeToken = frame.resume;
    const all = this.#streamPositions.get(ALL_STREAM) ?? { seq: -1 };
    this.#streamPositions.clear();
    // a refused resume's answer can come after pushes to all (held since the welcome): keep the furthest, or the next resume replays them
    if (frame.seq !== undefined) this.#record(ALL_STREAM, all.epoch === frame.epoch ? Math.max(frame.seq, all.seq) : frame.seq, frame.epoch);
    this.#leaveAllBut(new Map());
    this.#sessionUp(reconnected ? { state: 'connected', wsId: frame.wsId, recovered: false } : { state: 'connected', wsId: frame.wsId });
  }

  #resumed(frame: Extract<ServerFrame, { kind: 'resumed' }>): void {
    if (this.#resumingFrom === undefined) return;
    this.#resumingFrom = undefined;
    this.#resumeToken = frame.resume ?? this.#resumeToken;
    // no streams at all: the server kept the session and its rooms but could not say where they stand
    // (its broker failed mid-way): keep the positions, so the next resume takes the same session back
    const known = frame.streams.size > 0;
    if (known) this.#streamPositions.clear();
    for (const [stream, position] of frame.streams) {
      this.#streamPositions.set(stream, position);
      if (stream === ALL_STREAM) this.#allEpoch = position.epoch;
      else this.#joinedRooms.add(stream);
    }
    // once the session's rooms are back: a left listener that closes the client leaves it with none
    if (known) this.#leaveAllBut(frame.streams);
    this.#sessionUp({ state: 'connected', wsId: frame.wsId, recovered: frame.recovered });
  }

  /** The rooms kept while reconnecting that the session is not in (any more): each gets a left event. */
  #leaveAllBut(rooms: ReadonlyMap<string, unknown>): void {
    for (const room of this.#joinedRooms) {
      if (rooms.has(room)) continue;
      this.#joinedRooms.delete(room);
      this.emit('left', { room });
    }
  }

  /** The session is usable (new or resumed): report it and send the ops that waited for it. */
  #sessionUp(change: StateChange): void {
    // a listener of the events just before may have closed the client
    if (this.#currentState === 'closed') return;
    // not before: a closed client has no wsId
    this.#currentWsId = change.wsId;
    clearTimeout(this.#handshakeTimer);
    this.#connectedAt = Date.now();
    this.#hadSession = true;
    // before the state event: a listener that closes the client clears it
    this.#scheduleRefresh();
    // before the state event too: an op a listener of it calls goes after the ones called before it
    for (const op of this.#pending.values()) if (!op.sent) this.#sendOp(op);
    this.#setState(change);
    // setToken() resolved when it was called: a refusal now is told as an error (a lost answer is not: the reconnect sends it)
    if (this.#token !== this.#socketToken) this.setToken(this.#token!).catch((err: unknown) => isRefusal(err) && this.emit('error', err));
  }

  /**
   * With getToken, and a token the server holds with an exp: asks getToken for a new one
   * at the later of 80% of its remaining life and 10 s before exp, and sends it (setToken).
   * A failed ask (a rejection, no answer within connectTimeoutMs, a refused refresh) is an error event,
   * and is tried again (by the same rule) at most `retries` times; then the server's 4001 at exp asks again.
   * Cleared by a drop, close() and the next accepted token: an answer that comes after them is dropped.
   */
  #scheduleRefresh(retries = 2): void {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const getToken = this.#getToken;
    // called only while connected: by #sessionUp, by setToken() once the server took the token, and by a retry below
    const exp = tokenExpiry(this.#socketToken);
    const life = exp - Date.now();
    if (getToken === undefined || !(life > 0)) return;
    const fail = (err: unknown): void => {
      // not after a drop, close() or another accepted token meanwhile: they decide what comes next
      if (this.#refreshTimer !== timer) return;
      this.emit('error', asError(err));
      if (retries > 0) this.#scheduleRefresh(retries - 1);
    };
    let timer = (this.#refreshTimer = setTimeout(
      () => {
        // the ask's bound takes the timer's place, so what clears the timer ends the ask too
        timer = this.#refreshTimer = setTimeout(() => fail(new RoomcastError('timeout', `getToken gave no token within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
        Promise.resolve()
          .then(getToken)
          // (and not after a drop, close() or another accepted token meanwhile)
          // a token that does not expire later (getToken's cache giving the same one, say) is not sent: a failed ask
          .then<unknown>((token) => this.#refreshTimer === timer && (clearTimeout(timer), tokenExpiry(token) <= exp ? fail(Error('getToken gave no token expiring later')) : this.setToken(token)))
          .catch(fail);
      },
      // setTimeout fires at once for a delay above 2^31-1 ms (24.8 days): that would ask getToken without end
      Math.min(2 ** 31 - 1, Math.max(life * 0.8, life - 10_000)),
    ));
  }

  #startHeartbeat(heartbeatMs: number): void {
    clearInterval(this.#heartbeatTimer);
    if (heartbeatMs <= 0) return;
    // setInterval fires every ms for a delay above 2^31-1: a (buggy) server's heartbeat must not make a ping loop
    const every = Math.min(2 ** 31 - 1, Math.max(MIN_PING_INTERVAL_MS, Math.floor(heartbeatMs / 3)));
    let tick = Date.now();
    this.#heartbeatTimer = setInterval(() => {
      const now = Date.now();
      // A late tick: this process (or tab) was busy, and timers run before the socket is read,
      // so what the server sent meanwhile (its close, say) is still unread: judge at the next tick.
      const late = now - tick > 2 * every;
      tick = now;
      if (!late && now - this.#lastReceivedAt > heartbeatMs) this.#drop(`the server sent nothing for ${heartbeatMs} ms`);
      else this.#transport?.send(PING_FRAME);
    }, every);
  }

  #record(stream: string, seq: number, epoch?: string): void {
    const known = this.#streamPositions.get(stream);
    this.#streamPositions.set(stream, { seq, epoch: epoch ?? known?.epoch });
  }

  async #membership(op: 'join' | 'leave', room: string): Promise<JoinResult> {
    if (typeof room !== 'string' || !ROOM_ID_PATTERN.test(room)) {
      throw new RoomcastError('bad_request', `room must be ${ROOM_ID_RULE}, got ${JSON.stringify(room)}`);
    }
    const reply = await this.#request(op, { room }, `${op} ${room}`);
    return { room, changed: reply.changed === true };
  }

  /** Sends an op (once connected) and resolves with the server's reply, within `timeoutMs`. */
  #request(op: PendingOp['op'], fields: Record<string, string>, label: string): Promise<Record<string, unknown>> {
    if (this.#currentState === 'closed') return Promise.reject(new RoomcastError('closed', `cannot ${label}: the client is closed`));
    return new Promise((resolve, reject) => {
      const id = ++this.#nextId;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        const why = pending.sent ? 'the server did not answer' : 'the client did not get connected';
        reject(new RoomcastError('timeout', `${label}: ${why} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      const pending: PendingOp = { id, op, fields, label, sent: false, timer, resolve, reject };
      this.#pending.set(id, pending);
      if (this.#currentState === 'connected') this.#sendOp(pending);
    });
  }

  #sendOp(op: PendingOp): void {
    op.sent = true;
    this.#transport?.send(JSON.stringify({ op: op.op, ...op.fields, id: op.id }));
  }

  #takePending(id: number | undefined): PendingOp | undefined {
    // no op has the id undefined
    const op = this.#pending.get(id!);
    if (op === undefined) return undefined;
    this.#pending.delete(op.id);
    clearTimeout(op.timer);
    return op;
  }

  /** Gives up on the current connection without waiting for the server. */
  #drop(reason: string): void {
    this.#transport?.abort();
    this.#lost(ABNORMAL_CLOSE, reason);
  }

  /** The connection is gone: reconnect after a backoff, or stay closed after a 45xx code. */
  #lost(code: number, reason: string): void {
    if (this.#backoff !== false && this.#connectedAt !== undefined && Date.now() - this.#connectedAt >= this.#backoff.maxDelayMs) this.#attempt = 0;
    this.#teardown('disconnected', `the connection closed (${code}) before the server answered`);
    // a kicked (or normally closed) session was ended by the server on purpose: the next connection starts a new one
    if (!keepsSession(code)) this.#resumeToken = undefined;
    if (this.#currentState === 'closed') return;
    if (this.#backoff === false || isTerminalCloseCode(code)) return this.#finish(code, reason);
    const retryInMs = backoffDelay(this.#attempt++, this.#backoff, this.#random);
    // the server refused or expired the token: ask for a new one now, and retry once it is there
    // (or once connectTimeoutMs has passed: a token service that never answers must not stall the client)
    const getToken = this.#getToken;
    const asked =
      code === BAD_TOKEN_CLOSE && getToken !== undefined
        ? new Promise<string>((resolve, reject) => {
            this.#handshakeTimer = setTimeout(() => reject(new RoomcastError('timeout', `getToken gave no token within ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
            Promise.resolve().then(getToken).then(resolve, reject);
          })
            .then((token) => this.setToken(token))
            // the error event carries an Error, whatever getToken rejected with
            // (not after close(): a closed client emits nothing more)
            .catch((err: unknown) => this.#currentState === 'closed' || this.emit('error', asError(err)))
            .finally(() => clearTimeout(this.#handshakeTimer))
        : undefined;
    const retry = (): void => {
      clearTimeout(this.#retryTimer);
      this.#pendingRetry = undefined;
      if (asked === undefined) this.#open();
      else void asked.then(() => this.#open());
    };
    // scheduled before it is announced, so a listener that closes the client clears it
    this.#pendingRetry = retry;
    this.#retryTimer = setTimeout(retry, retryInMs);
    this.#setState({ state: 'reconnecting', code, reason, retryInMs });
  }

  /**
   * Forgets the connection: socket, timers. When it was lost, the ops sent on
   * it fail and the ones not sent yet wait for the next connection, and its
   * rooms are kept for the resume; when the client closes, every op fails.
   */
  #teardown(code: 'disconnected' | 'closed', message: string): void {
    this.#generation++;
    this.#transport = undefined;
    this.#currentWsId = undefined;
    this.#resumingFrom = undefined;
    this.#connectedAt = undefined;
    clearTimeout(this.#handshakeTimer);
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    this.#pendingRetry = undefined;
    if (code === 'closed') this.#joinedRooms.clear();
    for (const op of [...this.#pending.values()]) {
      if (code === 'disconnected' && !op.sent) continue;
      this.#takePending(op.id);
      op.reject(new RoomcastError(code, `${op.label}: ${message}`));
    }
  }

  #finish(code: number, reason: string): void {
    this.#teardown('closed', `the client closed (${code})`);
    this.#setState({ state: 'closed', code, reason });
  }

  #setState(change: StateChange): void {
    this.#currentState = change.state;
    this.emit('state', change);
  }
}
