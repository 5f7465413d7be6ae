/** Calls the logic API over real HTTP. */
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
