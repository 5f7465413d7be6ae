/**
 * A server-side client of the logic HTTP API (docs/REFERENCE.md §2) for Node 20+:
 * global fetch, no dependencies. Each method answers the answer's `data`, or throws
 * a RoomcastApiError.
 */
import { apiKeyOf, baseUrlOf, delayMs, fetchOf, nonNegativeInteger, pathSegment, positiveDelayMs, pushOptionsOf } from './arguments.js';
import { RoomcastApiError, type RoomcastApiErrorCode } from './errors.js';
import { backoffDelay, outcomeUnknown, retryable, retryAfterSeconds, underWayDelay, type Backoff, type RetryKind } from './retry.js';
import type {
  ConnData,
  HistoryData,
  HistoryOptions,
  KickData,
  MembershipData,
  PageOptions,
  PushAllData,
  PushConnData,
  PushOptions,
  PushRoomData,
  PushUserData,
  ReadyData,
  RoomData,
  RoomsData,
  RoomsOptions,
  StatsData,
  UserData,
} from './types.js';

export interface RoomcastApiOptions {
  /** Sent as `Authorization: Bearer <apiKey>` (the server's --api-key). */
  apiKey?: string;
  /** How long one attempt may take, answer body included (default 5000). */
  timeoutMs?: number;
  /** How many times a failed call that may be retried is made again (default 2). */
  retries?: number;
  /** The ceiling of the wait before the first retry, doubled for each next one (default 100). */
  backoffMs?: number;
  /** The most a wait's ceiling grows to (default 2000). */
  maxBackoffMs?: number;
  /** The fetch to call (default: the global fetch). */
  fetch?: typeof fetch;
  /**
   * false: pushes carry no idempotency key of the client's own (for a server started with
   * --idempotency-window 0, which refuses keys), and so are never retried: a retry could deliver twice.
   */
  idempotencyKeys?: boolean;
}

type Query = Record<string, string | number | undefined>;

interface Call {
  method: 'GET' | 'POST';
  path: string;
  query?: Query;
  body?: Record<string, unknown>;
  retry: RetryKind;
}

/** One attempt that did not succeed. */
interface Failure {
  status: number;
  code: RoomcastApiErrorCode;
  msg: string;
  cause?: unknown;
  /** The answer's Retry-After in seconds, when it has a valid one. */
  retryAfterS?: number;
}

/** Why no answer came: the attempt's timeout, or a network failure (its cause's code, say ECONNREFUSED). */
function failureOfThrown(error: unknown, timeoutMs: number): Failure {
  if (error instanceof Error && error.name === 'TimeoutError') return { status: 0, code: 'timeout', msg: `no answer within ${timeoutMs} ms`, cause: error };
  const cause = error instanceof Error ? (error.cause as { code?: string; message?: string } | undefined) : undefined;
  const why = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  return { status: 0, code: 'network', msg: `no answer: ${why}`, cause: error };
}

/** The failure an answer that is not a success says, from roomcast's `{code,msg}` when it has one (a proxy's answer may not). */
function failureOfAnswer(status: number, statusText: string, answer: unknown, text: string): Failure {
  const { code, msg } = (answer ?? {}) as { code?: unknown; msg?: unknown };
  if (typeof code === 'number' && typeof msg === 'string') return { status, code, msg };
  return { status, code: status, msg: text.trim().slice(0, 200) || statusText || 'no body' };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function queryString(query: Query | undefined): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) params.set(name, String(value));
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** The options a client is given when they are left out (api/README.md lists them). */
export const API_CLIENT_DEFAULTS = { timeoutMs: 5000, retries: 2, backoffMs: 100, maxBackoffMs: 2000, idempotencyKeys: true } as const;

export class RoomcastApi {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoff: Backoff;
  private readonly fetch: typeof fetch;
  private readonly idempotencyKeys: boolean;

  constructor(baseUrl: string | URL, options: RoomcastApiOptions = {}) {
    this.baseUrl = baseUrlOf(baseUrl);
    this.apiKey = apiKeyOf(options.apiKey);
    this.timeoutMs = positiveDelayMs('timeoutMs', options.timeoutMs ?? API_CLIENT_DEFAULTS.timeoutMs);
    this.retries = nonNegativeInteger('retries', options.retries ?? API_CLIENT_DEFAULTS.retries);
    this.backoff = { baseMs: delayMs('backoffMs', options.backoffMs ?? API_CLIENT_DEFAULTS.backoffMs), maxMs: delayMs('maxBackoffMs', options.maxBackoffMs ?? API_CLIENT_DEFAULTS.maxBackoffMs) };
    if (this.backoff.maxMs < this.backoff.baseMs) throw new TypeError(`maxBackoffMs must be >= backoffMs (${this.backoff.baseMs}), got ${this.backoff.maxMs}`);
    this.fetch = fetchOf(options.fetch ?? globalThis.fetch);
    this.idempotencyKeys = options.idempotencyKeys ?? API_CLIENT_DEFAULTS.idempotencyKeys;
  }

  /** Pushes `val` to every connection. */
  pushAll(val: string, options: PushOptions): Promise<PushAllData> {
    return this.push('/push/all', { val }, options);
  }

  /** Pushes `val` to every member of `room`. */
  pushRoom(room: string, val: string, options: PushOptions): Promise<PushRoomData> {
    return this.push('/push/room', { id: room, val }, options);
  }

  /**
   * Pushes `val` to one connection. A retry that finds the first attempt still under way (409 with Retry-After)
   * waits and asks again, to get its answer; one after an unknown outcome is refused by the server (409): see
   * RoomcastApiError.outcomeUnknown.
   */
  pushConn(wsId: string, val: string, options: PushOptions): Promise<PushConnData> {
    return this.push('/push/conn', { wsId, val }, options);
  }

  /** Pushes `val` to every connection of the user `uid` (clients authenticated with a token whose sub is uid). */
  pushUser(uid: string, val: string, options: PushOptions): Promise<PushUserData> {
    return this.push('/push/user', { uid, val }, options);
  }

  join(wsId: string, room: string): Promise<MembershipData> {
    return this.call({ method: 'POST', path: '/room/join', body: { id: room, wsId }, retry: 'safe' });
  }

  leave(wsId: string, room: string): Promise<MembershipData> {
    return this.call({ method: 'POST', path: '/room/leave', body: { id: room, wsId }, retry: 'safe' });
  }

  /** Closes the connection with 4003 (or ends its away session). Never retried: a retry of a kick that was made is a 404. */
  kick(wsId: string): Promise<KickData> {
    return this.call({ method: 'POST', path: '/conn/kick', body: { wsId }, retry: 'never' });
  }

  room(roomId: string, page: PageOptions = {}): Promise<RoomData> {
    return this.call({ method: 'GET', path: `/rooms/${pathSegment('roomId', roomId)}`, query: { offset: page.offset, limit: page.limit }, retry: 'safe' });
  }

  rooms(options: RoomsOptions = {}): Promise<RoomsData> {
    const { prefix, contains, offset, limit } = options;
    return this.call({ method: 'GET', path: '/rooms', query: { prefix, contains, offset, limit }, retry: 'safe' });
  }

  conn(wsId: string): Promise<ConnData> {
    return this.call({ method: 'GET', path: `/conns/${pathSegment('wsId', wsId)}`, retry: 'safe' });
  }

  user(uid: string, page: PageOptions = {}): Promise<UserData> {
    return this.call({ method: 'GET', path: `/users/${pathSegment('uid', uid)}`, query: { offset: page.offset, limit: page.limit }, retry: 'safe' });
  }

  history(room: string, options: HistoryOptions = {}): Promise<HistoryData> {
    return this.call({ method: 'GET', path: `/rooms/${pathSegment('room', room)}/history`, query: { since: options.since, limit: options.limit }, retry: 'safe' });
  }

  stats(): Promise<StatsData> {
    return this.call({ method: 'GET', path: '/stats', retry: 'safe' });
  }

  /** Resolves when the server is ready; a RoomcastApiError with status 503 (after the retries) when it is not. */
  ready(): Promise<ReadyData> {
    return this.call({ method: 'GET', path: '/readyz', retry: 'safe' });
  }

  /**
   * A push carries an idempotency key (the caller's, or one made here), the same on every retry. With
   * `idempotencyKeys: false` and no key of the caller's, it carries none and is made once, never retried.
   */
  private push<T>(path: string, body: Record<string, unknown>, options: PushOptions): Promise<T> {
    const { tag, idempotencyKey } = pushOptionsOf(options);
    const key = idempotencyKey ?? (this.idempotencyKeys ? globalThis.crypto.randomUUID() : undefined);
    return this.call({ method: 'POST', path, body: { ...body, tag, idempotencyKey: key }, retry: key === undefined ? 'never' : 'push' });
  }

  private async call<T>({ method, path, query, body, retry }: Call): Promise<T> {
    const url = `${this.baseUrl}${path}${queryString(query)}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.apiKey !== undefined) headers.authorization = `Bearer ${this.apiKey}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    /** The first failure of a push after which it may have been made. */
    let unknown: Failure | undefined;
    for (let attempt = 1; ; attempt++) {
      const failure = await this.attempt<T>(url, { method, headers, body: payload });
      if (!('status' in failure)) return failure.data;
      const error = (init: Partial<Failure> & { outcomeUnknown?: boolean }, message?: string): RoomcastApiError =>
        new RoomcastApiError({ ...failure, ...init, method, url, attempts: attempt }, message);
      const underWay = retry === 'push' && failure.status === 409 && failure.retryAfterS !== undefined;
      if (retry === 'push' && unknown !== undefined && failure.status === 409 && !underWay) {
        const key = body?.idempotencyKey as string;
        throw error(
          { outcomeUnknown: true },
          `${method} ${url}: 409 ${failure.msg}. An earlier attempt with idempotency key ${JSON.stringify(key)} ended with ` +
            `${unknown.status === 0 ? unknown.code : unknown.status} (${unknown.msg}), so the push may have been delivered; ` +
            'the server keeps the key claimed for its --idempotency-window, so it is delivered at most once. ' +
            'To deliver it anyway (perhaps twice), push it again with a new idempotency key.',
        );
      }
      if (underWay && attempt > this.retries) {
        const key = body?.idempotencyKey as string;
        throw error(
          { outcomeUnknown: true },
          `${method} ${url}: 409 ${failure.msg}. The first attempt with idempotency key ${JSON.stringify(key)} was still under way ` +
            `on the server after ${attempt} attempts (retries: ${this.retries}), so the push may yet be delivered, once. ` +
            'Push it again with the same key later to get its answer.',
        );
      }
      if (retry === 'push' && unknown === undefined && outcomeUnknown(failure)) unknown = failure;
      if (!underWay && (!retryable(retry, failure) || attempt > this.retries)) throw error({ outcomeUnknown: retry === 'push' && unknown !== undefined });
      const wait = underWay ? underWayDelay(failure.retryAfterS as number, this.backoff) : backoffDelay(attempt, this.backoff);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  /** One request: its answer's `data`, or why it has none. */
  private async attempt<T>(url: string, init: { method: string; headers: Record<string, string>; body: string | undefined }): Promise<{ data: T } | Failure> {
    let status: number;
    let text: string;
    let statusText: string;
    let retryAfter: string | null;
    try {
      const response = await this.fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
      ({ status, statusText } = response);
      retryAfter = response.headers.get('retry-after');
      text = await response.text();
    } catch (error) {
      return failureOfThrown(error, this.timeoutMs);
    }
    const answer = parseJson(text);
    if (status >= 200 && status < 300) {
      if (typeof answer === 'object' && answer !== null && 'data' in answer) return { data: answer.data as T };
      return { status, code: status, msg: `the answer is not roomcast's {"code":0,"msg":"ok","data":...}: ${text.slice(0, 200)}` };
    }
    const failure = failureOfAnswer(status, statusText, answer, text);
    const retryAfterS = retryAfterSeconds(retryAfter);
    return retryAfterS === undefined ? failure : { ...failure, retryAfterS };
  }
}
