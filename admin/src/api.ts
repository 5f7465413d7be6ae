/**
 * Calls to the logic API from the admin page: same origin, JSON bodies, and
 * the API key (when there is one) as a bearer token. Every answer comes back
 * as it was, status and body, so the page can show it.
 */
import type { ConnInfo } from '../../src/broker/broker.js';
import type { AdminConfig } from '../../src/logic/admin.js';
import type { StatsData } from '../../src/logic/answers.js';

export type { AdminConfig, ConnInfo };

export type Stats = StatsData;

export interface LiveStats extends Stats {
  /** When the server read these totals, in ms since the epoch. */
  at: number;
}

export interface RoomList {
  total: number;
  rooms: { room: string; members: number }[];
}

export interface RoomDetail {
  room: string;
  members: number;
  wsIds: string[];
}

export interface Answer<T> {
  status: number;
  body: { code: number; msg: string; data?: T };
}

export class AuthError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export function headersFor(key: string | undefined): Record<string, string> {
  return key === undefined ? {} : { authorization: `Bearer ${key}` };
}

/** The AuthError of a 401 or 403 answer (the page then asks for the key), or undefined for any other. */
export function authErrorOf(answer: Answer<unknown>): AuthError | undefined {
  return answer.status === 401 || answer.status === 403 ? new AuthError(answer.status, answer.body.msg) : undefined;
}

/** A response's status and JSON body; a body that is not JSON becomes the `msg`. */
export async function readAnswer<T>(res: Response): Promise<Answer<T>> {
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as Answer<T>['body'] };
  } catch {
    return { status: res.status, body: { code: res.status, msg: text.slice(0, 500) } };
  }
}

/** Never rejects: a request that gets no answer (server down, network gone) comes back as status 0 with why. */
export async function callApi<T>(key: string | undefined, method: 'GET' | 'POST', path: string, body?: Record<string, unknown>): Promise<Answer<T>> {
  const headers = headersFor(key);
  if (body !== undefined) headers['content-type'] = 'application/json';
  try {
    return await readAnswer<T>(await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
  } catch (err) {
    return { status: 0, body: { code: 0, msg: `${method} ${path} got no answer: ${err instanceof Error ? err.message : String(err)}` } };
  }
}

/** The answer's data on success; throws AuthError for 401/403 (the page asks for the key) and Error otherwise. */
export async function getData<T>(key: string | undefined, path: string): Promise<T> {
  const answer = await callApi<T>(key, 'GET', path);
  const refused = authErrorOf(answer);
  if (refused !== undefined) throw refused;
  if (answer.status !== 200 || answer.body.data === undefined) throw new Error(`${path}: ${answer.status} ${answer.body.msg}`);
  return answer.body.data;
}

export async function loadConfig(): Promise<AdminConfig> {
  const res = await fetch('/admin/config.json');
  if (!res.ok) throw new Error(`/admin/config.json answered ${res.status}`);
  return (await res.json()) as AdminConfig;
}
