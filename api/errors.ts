/** What a call of the logic API that did not succeed throws. */

/** The server's error code (the HTTP status), or what went wrong before an answer came. */
export type RoomcastApiErrorCode = number | 'network' | 'timeout';

export interface RoomcastApiErrorInit {
  status: number;
  code: RoomcastApiErrorCode;
  msg: string;
  method: string;
  url: string;
  attempts: number;
  outcomeUnknown?: boolean;
  cause?: unknown;
}

export class RoomcastApiError extends Error {
  /** The HTTP status; 0 when no answer came (code 'network' or 'timeout'). */
  readonly status: number;
  /** The server's `code` (its HTTP status), or 'network' / 'timeout'. */
  readonly code: RoomcastApiErrorCode;
  /** The server's `msg`, or what failed on the way. */
  readonly msg: string;
  readonly method: string;
  readonly url: string;
  /** How many requests were made, retries included. */
  readonly attempts: number;
  /**
   * True for a push that may have been delivered: an earlier attempt got no answer
   * (or a 503) and a retry with the same key was answered 409 (a push to a
   * connection or a user), or every attempt failed that way.
   */
  readonly outcomeUnknown: boolean;

  constructor(init: RoomcastApiErrorInit, message = `${init.method} ${init.url}: ${init.status === 0 ? init.code : init.status} ${init.msg}`) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'RoomcastApiError';
    this.status = init.status;
    this.code = init.code;
    this.msg = init.msg;
    this.method = init.method;
    this.url = init.url;
    this.attempts = init.attempts;
    this.outcomeUnknown = init.outcomeUnknown ?? false;
  }
}
