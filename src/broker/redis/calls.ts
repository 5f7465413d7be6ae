/**
 * Requests to Redis on the commands connection, each within a deadline: one
 * that Redis does not answer in time, or that fails, is a BrokerUnavailableError
 * (the API answers 503) rather than a wait for a Redis that is away.
 */
import type { Logger } from 'pino';
import { ErrorReply, MultiErrorReply, type createClient } from 'redis';
import { settleWithin } from '../../deadline-timer.js';
import { BrokerUnavailableError } from '../broker.js';
import { allScripts, LATE, PUBLISH_BY, SCRIPTS_ALLOWED, type LuaScript } from './scripts.js';
import type { RedisWatch } from './watch.js';
import { errorMessage } from '../../error-message.js';

export type Client = ReturnType<typeof createClient>;

/** How much longer than a request's deadline in Redis its caller waits, for the answer to come back. */
export const ANSWER_GRACE_MS = 1000;

export function unavailable(err: unknown): BrokerUnavailableError {
  if (err instanceof BrokerUnavailableError) return err;
  const message = errorMessage(err);
  if (message.startsWith(LATE)) return new BrokerUnavailableError('Redis took the request only after its deadline, and did not run it', { cause: err });
  return new BrokerUnavailableError(`Redis is unavailable (${message})`, { cause: err });
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return settleWithin(promise, ms, () => new BrokerUnavailableError(`${what} did not finish within ${ms} ms`));
}

export class RedisCalls {
  constructor(
    /** The commands connection itself, for writes that need no deadline (their failure is only logged). */
    readonly client: Client,
    private readonly redisWatch: RedisWatch,
    private readonly commandTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  /**
   * Runs a request on Redis within `waitMs`, or fails with 503; at once while
   * Redis is not answering (stopped), so requests do not pile up behind it.
   */
  async bounded<T>(work: () => Promise<T>, waitMs = this.commandTimeoutMs): Promise<T> {
    if (!this.redisWatch.answering) throw new BrokerUnavailableError(`Redis has not answered for more than ${this.redisWatch.silentAfterMs} ms`);
    try {
      return await withTimeout(work(), waitMs, 'the request to Redis');
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** PUBLISHes unless Redis takes it only after the deadline; resolves with how many subscribers got it. */
  async publishBy(channel: string, message: string): Promise<number> {
    return (await this.runBeforeDeadline(PUBLISH_BY, [], [channel, message])) as number;
  }

  /**
   * Runs a script that starts with deadlineCheck (its last ARGV, appended
   * here): one Redis takes only after `commandTimeoutMs` does nothing, and is
   * answered 503 like one that never reached Redis.
   */
  runBeforeDeadline(lua: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    const deadline = String(this.redisWatch.deadline(this.commandTimeoutMs));
    return this.bounded(() => this.runScript(lua, keys, [...args, deadline]), this.commandTimeoutMs + ANSWER_GRACE_MS);
  }

  /**
   * Puts every script in Redis's script cache; call it before any other request on a new (or
   * restarted) connection. A script Redis does not know is sent again in full (runScript) after
   * the NOSCRIPT answer, and so after the requests sent meanwhile: a registry refresh could then
   * land after the close of a connection it names, and register it again.
   */
  loadScripts(): Promise<unknown> {
    const batch = this.client.multi();
    for (const lua of allScripts()) batch.scriptLoad(lua.source);
    return batch.execAsPipeline();
  }

  /** Runs a script within the request deadline (bounded). */
  runScriptBounded(lua: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return this.bounded(() => this.runScript(lua, keys, args));
  }

  async runScript(lua: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await this.client.evalSha(lua.sha, { keys, arguments: args });
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.client.eval(lua.source, { keys, arguments: args });
    }
  }

  /**
   * Checks that `user` may run scripts (EVALSHA, and EVAL for a script Redis
   * does not hold), and loads every script (SCRIPT LOAD); fails naming what
   * Redis refused (an ACL, or commands renamed away): every push, join and
   * session change is a script, so a process that started would answer each of
   * them 503. A Redis that does not answer in time is left to the readiness
   * check, as it may be back soon.
   */
  async requireScripts(user: string): Promise<void> {
    // the loads go out with the check, not after its answer: on a Redis too slow for the deadline they
    // still precede every later request; the check's refusal (EVALSHA, then EVAL) is the one named first
    const checked = Promise.allSettled([this.runScript(SCRIPTS_ALLOWED, [], []), this.loadScripts()]).then((results) => {
      for (const result of results) if (result.status === 'rejected') throw result.reason;
    });
    try {
      await withTimeout(checked, this.commandTimeoutMs, 'loading the scripts');
    } catch (err) {
      const refusal = err instanceof MultiErrorReply ? (err.errors().next().value as ErrorReply) : err;
      // a refusal: an ACL (NOPERM) or a command renamed away; any other answer (LOADING, BUSY, OOM) may pass
      if (!(refusal instanceof ErrorReply) || !isRefusal(refusal)) {
        this.warnScriptsUnchecked(err);
        return;
      }
      throw new Error(
        `the Redis user "${user}" may not run Lua scripts, which roomcast runs for every push, join and session change (Redis answered: ${refusal.message}): ` +
          `allow EVALSHA, EVAL and SCRIPT LOAD, e.g. ACL SETUSER ${user} +evalsha +eval +script|load (or +@scripting)`,
        { cause: err },
      );
    }
  }

  /**
   * The check neither passed nor was refused (no answer in time, or LOADING, BUSY, OOM): the start goes
   * on, so the operator must hear that a user who may not run scripts would show up only as 503s.
   */
  private warnScriptsUnchecked(err: unknown): void {
    const why = errorMessage(err);
    this.log.warn(
      { err },
      `could not check that Redis lets roomcast run its Lua scripts (${why}): starting anyway. ` +
        'The check and the scripts stay queued and still reach Redis before any later request; ' +
        'if this Redis user may not run scripts (EVALSHA, EVAL, SCRIPT LOAD), every push, join and session change will answer 503 until that is allowed',
    );
  }

  logError(err: unknown, doing: string): void {
    this.log.debug({ err }, `Redis error while ${doing}`);
  }
}

function isRefusal(reply: ErrorReply): boolean {
  return reply.message.startsWith('NOPERM') || reply.message.startsWith('ERR unknown command');
}
