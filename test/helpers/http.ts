/** Calls the logic API over real HTTP. */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { until, within } from './until.js';

export interface ApiAnswer {
  status: number;
  headers: Headers;
  body: { code: number; msg: string; data?: Record<string, unknown> };
  text: string;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A raw body string, sent with the given content-type. */
  raw?: string;
  json?: unknown;
  form?: Record<string, string | number>;
}

export async function call(base: string, path: string, options: CallOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | undefined;
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.json);
  } else if (options.form !== undefined) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
    body = new URLSearchParams(Object.entries(options.form).map(([k, v]): [string, string] => [k, String(v)])).toString();
  } else if (options.raw !== undefined) {
    body = options.raw;
  }
  const res = await fetch(base + path, { method: options.method ?? (body === undefined ? 'GET' : 'POST'), headers, body });
  const text = await res.text();
  let parsed: ApiAnswer['body'];
  try {
    parsed = JSON.parse(text) as ApiAnswer['body'];
  } catch {
    throw new Error(`answer to ${path} is not JSON (status ${res.status}): ${text.slice(0, 200)}`);
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export function post(base: string, path: string, form: Record<string, string | number>, headers?: Record<string, string>): Promise<ApiAnswer> {
  return call(base, path, { form, headers });
}

export function postJson(base: string, path: string, json: unknown, headers?: Record<string, string>): Promise<ApiAnswer> {
  return call(base, path, { json, headers });
}

/** An HTTP connection written by hand, for what fetch will not do (wait for 100 Continue before the body). */
export class RawHttp {
  received = '';

  private constructor(private readonly socket: Socket) {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => (this.received += chunk.toString()));
  }

  static async connect(url: string): Promise<RawHttp> {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port) });
    await within(once(socket, 'connect'), 20_000, `a TCP connection to ${url}`);
    return new RawHttp(socket);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** Waits until what the server sent includes `text`. */
  async waitFor(text: string): Promise<void> {
    await until(() => `${JSON.stringify(text)} from the server, which sent ${JSON.stringify(this.received)}`, () => (this.received.includes(text) ? true : undefined), 5000);
  }

  /** Waits until the server closed the connection. */
  async closed(): Promise<void> {
    if (!this.socket.closed) await within(once(this.socket, 'close'), 5000, `the server closing the connection after ${JSON.stringify(this.received)}`);
  }

  close(): void {
    this.socket.destroy();
  }
}
