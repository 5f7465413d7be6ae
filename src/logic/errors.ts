/**
 * Every error the logic API answers with, in one place: HTTP status and
 * message. The body is always `{"code":<status>,"msg":"..."}` (PROTOCOL.md §2).
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Headers the answer carries besides its content-type (Retry-After). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): { code: number; msg: string } {
    return { code: this.status, msg: this.message };
  }
}

export const apiErrors = {
  badRequest: (msg: string) => new ApiError(400, msg),
  unauthorized: (wrong: string) => new ApiError(401, `missing or wrong API key: ${wrong}; send the header Authorization: Bearer <key>`),
  remoteWithoutKey: () =>
    new ApiError(
      403,
      'the logic API answers only loopback addresses while no API key is set: start roomcast with --api-key <key> ' +
        '(or ROOMCAST_API_KEY) and send Authorization: Bearer <key>',
    ),
  notFound: (msg: string) => new ApiError(404, msg),
  wsIdNotFound: (wsId: string) => new ApiError(404, `wsId ${JSON.stringify(wsId)} is not connected`),
  routeNotFound: (method: string, path: string) => new ApiError(404, `no route ${method} ${path.slice(0, 200)}`),
  conflict: (msg: string, headers?: Record<string, string>) => new ApiError(409, msg, headers),
  valTooLarge: (limit: number) => new ApiError(413, `val is larger than the limit of ${limit} bytes (--max-val-size)`),
  methodNotAllowed: (method: string, path: string, allow: string) =>
    new ApiError(405, `method ${method} is not allowed on ${path}: use ${allow}`),
  bodyTooLarge: (limit: number) => new ApiError(413, `request body is larger than the limit of ${limit} bytes (--body-limit)`),
  unsupportedMediaType: (type: string | undefined) =>
    new ApiError(
      415,
      `${type === undefined ? 'the body has no content-type' : `content-type ${JSON.stringify(type.slice(0, 100))} is not supported`}: ` +
        'send application/x-www-form-urlencoded or application/json',
    ),
  unsupportedCharset: (charset: string) => new ApiError(415, `charset ${JSON.stringify(charset.slice(0, 100))} is not supported: send the body in UTF-8`),
  unsupportedEncoding: (encoding: string) => new ApiError(415, `content-encoding ${JSON.stringify(encoding.slice(0, 100))} is not supported: send the body uncompressed`),
  expectationFailed: (expect: string) =>
    new ApiError(417, `Expect ${JSON.stringify(expect.slice(0, 100))} is not supported: send Expect: 100-continue, or no Expect`),
  unavailable: (msg: string) => new ApiError(503, msg),
  internal: () => new ApiError(500, 'internal error'),
} as const;

/** The statuses the API can answer with (500 aside: a bug). */
export const ERROR_STATUSES = [400, 401, 403, 404, 405, 408, 409, 413, 415, 417, 431, 503] as const;

export type ErrorStatus = (typeof ERROR_STATUSES)[number];
