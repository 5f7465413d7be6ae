/**
 * The logic HTTP API on fastify: registers the route table, parses form and
 * JSON bodies, applies access rules, and turns every failure into the
 * `{"code":<status>,"msg":"..."}` body PROTOCOL.md §2 promises.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { z } from 'zod';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { BrokerUnavailableError, type Broker } from '../broker/broker.js';
import { Metrics } from '../metrics.js';
import { answerClientError } from '../raw-answer.js';
import { apiKeyChecker, isLoopback } from './access.js';
import { adminRoutes, registerAdmin } from './admin.js';
import { ApiError, apiErrors } from './errors.js';
import { servedExtraRoutes, type ExtraRouteUrl, type ServedExtraRoute } from './extra-routes.js';
import { BODY_TYPES, foreignCharsetOf, mediaTypeOf } from './content-type.js';
import { headersOf, parseInput } from './fields.js';
import { parseForm } from './form.js';
import { PushFailures } from './push-failures.js';
import { parseJsonBody } from './json-body.js';
import { StatsStream } from './live.js';
import type { WatchedTlsFiles } from '../tls-reload.js';
import { buildOpenApi } from './openapi.js';
import { readStats, routes, type AnyRoute, type PushCounters, type RouteContext } from './routes.js';

export interface LogicOptions {
  host: string;
  port: number;
  apiKey?: string;
  bodyLimit: number;
  /** Proxies whose X-Forwarded-For names the real caller (comma-separated addresses, CIDRs or `loopback`). */
  trustProxy?: string;
  version: string;
  /** Serve /metrics without the API key (for Prometheus on another host without a bearer token). */
  publicMetrics?: boolean;
  /** Where the gateway of this process listens, if it runs one (the admin "try it" page's default). */
  gateway?: () => { port: number; path: string } | undefined;
  /** Largest `val` of a push, in bytes (413 above). */
  maxValSize: number;
  /** How long a push's idempotency key is kept, in ms (0: keys are refused). */
  idempotencyWindowMs: number;
  /** Serve https:// with this certificate and key (PEM). */
  /** With it, https://: its certificate, renewed as its files are. */
  tls?: WatchedTlsFiles;
}

interface RouteConfig {
  auth?: boolean;
  /** Set on the routes that only answer 405: the methods the path does allow. */
  allow?: string;
}

const MAX_PARAM_LENGTH = 64 * 1024;
/**
 * How long a caller has to send a whole request, headers and body. Node's own
 * defaults (no limit on the body, 60 s for the headers checked every 30 s) let
 * anyone who can reach the port hold sockets open by sending a byte now and then.
 */
export const REQUEST_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUTS = { headersTimeout: REQUEST_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1000 };
/**
 * How long a shutdown waits for the requests under way (a push waits for Redis
 * up to --redis-command-timeout plus 1 s: 3 s by default), within the 5 s the
 * process has to exit; what is still unanswered then is cut off.
 */
export const IN_FLIGHT_GRACE_MS = 3000;

/** The methods whose body fastify never reads. */
const BODYLESS_METHODS = new Set(['GET', 'HEAD']);

/** Bodies are read as UTF-8: one that says it is in another charset is refused rather than garbled. */
function refuseForeignCharset(contentType: string | undefined): void {
  const charset = foreignCharsetOf(contentType);
  if (charset !== undefined) throw apiErrors.unsupportedCharset(charset);
}

function toApiError(err: FastifyError | Error, bodyLimit: number, req: FastifyRequest): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof BrokerUnavailableError) return apiErrors.unavailable(`cannot hand the request on: ${err.message}`);
  const code = (err as FastifyError).code;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return apiErrors.bodyTooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return apiErrors.unsupportedMediaType(req.headers['content-type']);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return apiErrors.badRequest('content-length does not match the body');
    case 'FST_ERR_BAD_URL':
      return apiErrors.badRequest(`the URL ${JSON.stringify(req.url.slice(0, 200))} is malformed: each % must start an escape (%XX) of UTF-8`);
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) return new ApiError(status, err.message);
  return apiErrors.internal();
}

export class LogicServer {
  readonly app: FastifyInstance;
  readonly pushes: PushCounters = { all: 0, room: 0, conn: 0, user: 0 };
  readonly repeats: PushCounters = { all: 0, room: 0, conn: 0, user: 0 };
  readonly pushFailures: PushFailures;
  private readonly refusedValSize = { count: 0 };
  readonly metrics: Metrics;
  /** GET /stats/stream's viewers, whose streams a shutdown ends. */
  private readonly statsStream: StatsStream;
  private closing: Promise<void> | undefined;
  /** Stops applying renewed TLS files to this server. */
  private readonly stopTlsReload: (() => void) | undefined;

  constructor(
    private readonly options: LogicOptions,
    readonly broker: Broker,
    private readonly log: Logger,
    notReadyReason: () => string | undefined = () => undefined,
  ) {
    this.pushFailures = new PushFailures(log);
    const context: RouteContext = {
      broker,
      pushes: this.pushes,
      repeats: this.repeats,
      pushFailures: this.pushFailures,
      idempotencyWindowMs: options.idempotencyWindowMs,
      refusedValSize: this.refusedValSize,
      startedAt: Date.now(),
      notReadyReason: () => (broker.isReady() ? notReadyReason() : `the ${broker.engine} broker is not connected`),
    };
    this.statsStream = new StatsStream(() => readStats(context));
    const app = Fastify({
      // with a certificate, fastify serves https (its instance type changes, its API does not)
      ...(options.tls === undefined ? { http: REQUEST_TIMEOUTS } : { https: { ...options.tls.current, ...REQUEST_TIMEOUTS } }),
      requestTimeout: REQUEST_TIMEOUT_MS,
      logger: false,
      trustProxy: options.trustProxy ?? false,
      bodyLimit: options.bodyLimit,
      return503OnClosing: true,
      // close() lets the requests under way finish (within IN_FLIGHT_GRACE_MS) rather than cut them off unanswered
      forceCloseConnections: false,
      // Longer than any URL Node takes (16 KiB of headers), so a long path parameter reaches its route's
      // check and is a 400 naming it; a repeated query parameter keeps its first value, as a form field does.
      routerOptions: { maxParamLength: MAX_PARAM_LENGTH, querystringParser: parseForm },
      frameworkErrors: (err, req, reply) => this.sendError(toApiError(err, options.bodyLimit, req), reply),
      clientErrorHandler: (err, socket) => answerClientError(err, socket, 'the request', REQUEST_TIMEOUT_MS),
    });
    this.app = app;
    this.stopTlsReload = options.tls?.serve(app.server as unknown as TlsServer);
    this.metrics = new Metrics(broker, { pushes: this.pushes, repeats: this.repeats, failures: this.pushFailures.counts, refusedValSize: this.refusedValSize });

    app.removeContentTypeParser(['text/plain', 'application/json']);
    // read as UTF-8 (parseAs: 'string'); the onRequest hook has refused a body that says it is in another charset
    const parsing = (parse: (body: string) => unknown) => (_req: FastifyRequest, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => {
      try {
        done(null, parse(body as string));
      } catch (err) {
        done(err as Error, undefined);
      }
    };
    app.addContentTypeParser('application/json', { parseAs: 'string' }, parsing(parseJsonBody));
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parsing(parseForm));

    /** Requests sent with `Expect: 100-continue`, whose body comes only once Node answers 100 Continue. */
    const awaitingContinue = new WeakSet<IncomingMessage>();
    /** Requests whose Expect is not 100-continue: Node would answer them 417 with an empty body, before any check. */
    const unmetExpectation = new WeakSet<IncomingMessage>();
    const checkKey = options.apiKey === undefined ? undefined : apiKeyChecker(options.apiKey);
    app.addHook('onRequest', async (req, reply) => {
      const config = req.routeOptions.config as RouteConfig;
      const keyRefusal = checkKey?.(req.headers.authorization);
      const trusted = checkKey !== undefined ? keyRefusal === undefined : isLoopback(req.ip);
      // only the callers the API answers in full keep their connection: anyone else's socket costs nothing past its answer
      if (!trusted) reply.header('connection', 'close');
      if (config.auth !== false && !trusted) {
        if (keyRefusal === undefined) throw apiErrors.remoteWithoutKey();
        // a 401 must name the scheme it wants (RFC 9110 §11.6.1)
        reply.header('www-authenticate', 'Bearer realm="roomcast"');
        throw apiErrors.unauthorized(keyRefusal);
      }
      if (config.allow !== undefined) {
        reply.header('allow', config.allow);
        throw apiErrors.methodNotAllowed(req.method, req.url.split('?')[0], config.allow);
      }
      if (unmetExpectation.has(req.raw)) throw apiErrors.expectationFailed(req.headers.expect ?? '');
      // fastify never reads the body of a GET or HEAD, so it is no reason to refuse one (as /openapi.json says)
      const length = Number(req.headers['content-length']);
      if (BODYLESS_METHODS.has(req.method)) return;
      if (length > options.bodyLimit) throw apiErrors.bodyTooLarge(options.bodyLimit);
      // fastify would hand a compressed body to the form or JSON parser as it is; checked before the content-type,
      // as it is without Expect (the parser checks that), so a request gets the same 415 either way
      const encoding = req.headers['content-encoding'];
      if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
        reply.header('accept-encoding', 'identity');
        throw apiErrors.unsupportedEncoding(encoding);
      }
      const type = req.headers['content-type'];
      if (type !== undefined && BODY_TYPES.has(mediaTypeOf(type))) {
        // the one check of the charset, with Expect or without: before the body is read
        refuseForeignCharset(type);
        return;
      }
      // a caller waiting for 100 Continue learns before it uploads a body that fastify would refuse once read
      const declaresBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
      if (awaitingContinue.has(req.raw) && (type !== undefined || declaresBody)) throw apiErrors.unsupportedMediaType(type);
    });

    // an answer given during a shutdown closes its connection, so the shutdown need not wait out its grace for it
    app.addHook('onSend', async (_req, reply) => {
      if (this.closing !== undefined) reply.header('connection', 'close');
    });

    // Node answers `Expect: 100-continue` with 100 Continue before any check; sent only once the checks on
    // the headers pass (key, method, declared length, content-encoding, content-type and its charset), a body the API would refuse is never uploaded
    app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      awaitingContinue.add(req);
      app.server.emit('request', req, res);
    });
    // routed like any request instead, one gets the JSON error after the checks of key and method
    app.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      unmetExpectation.add(req);
      app.server.emit('request', req, res);
    });
    app.addHook('preParsing', async (req, reply) => {
      if (awaitingContinue.has(req.raw)) reply.raw.writeContinue();
    });

    app.setErrorHandler((err: FastifyError, req, reply) => {
      const apiError = toApiError(err, options.bodyLimit, req);
      if (apiError.status === 500) this.log.error({ err, url: req.url }, 'request failed');
      this.sendError(apiError, reply);
    });
    app.setNotFoundHandler((req, reply) => this.sendError(apiErrors.routeNotFound(req.method, req.url.split('?')[0]), reply));

    const served = servedExtraRoutes(options.publicMetrics === true);
    this.registerExtraRoutes(served);
    registerAdmin(app, () => ({ apiKey: options.apiKey !== undefined, gateway: options.gateway?.() ?? null }));
    this.registerRoutes(context);
    this.registerWrongMethods([...served, ...adminRoutes.map((url) => ({ method: 'GET', url, auth: false })), ...routes]);
  }

  async listen(): Promise<AddressInfo> {
    await this.app.listen({ host: this.options.host, port: this.options.port });
    return this.app.server.address() as AddressInfo;
  }

  /** Stops accepting (a request on a kept-alive connection is answered 503), and resolves once the requests under way are answered. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopTlsReload?.();
      const closed = this.app.close();
      this.statsStream.end();
      const deadline = setTimeout(() => this.app.server.closeAllConnections(), IN_FLIGHT_GRACE_MS);
      try {
        await closed;
      } finally {
        clearTimeout(deadline);
      }
    })();
    return this.closing;
  }

  private sendError(error: ApiError, reply: FastifyReply): void {
    reply.code(error.status).headers(error.headers).header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(error.toBody()));
  }

  private registerExtraRoutes(served: ServedExtraRoute[]): void {
    const openApi = buildOpenApi(routes, served, this.options.version);
    const handlers: Record<ExtraRouteUrl, (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>> = {
      '/openapi.json': async () => openApi,
      '/stats/stream': async (_req, reply) => this.statsStream.follow(reply),
      '/metrics': async (_req, reply) => reply.type(this.metrics.contentType).send(await this.metrics.render()),
    };
    for (const route of served) {
      this.app.route({ method: route.method, url: route.url, config: { auth: route.auth }, handler: handlers[route.url] });
    }
  }

  private registerRoutes(context: RouteContext): void {
    for (const route of routes) {
      this.app.route({ method: route.method, url: route.url, config: { auth: route.auth }, handler: this.handlerFor(route, context) });
    }
  }

  /** Answers 405 to every other method on each served path; a path that needs no API key answers its 405 without one too. */
  private registerWrongMethods(served: { method: string; url: string; auth?: boolean }[]): void {
    const paths = new Map<string, { methods: string[]; open: boolean }>();
    for (const { method, url, auth } of served) {
      const path = paths.get(url) ?? { methods: [], open: true };
      path.methods.push(method);
      path.open &&= auth === false;
      paths.set(url, path);
    }
    for (const [url, { methods, open }] of paths) {
      const allowed = methods.includes('GET') ? [...methods, 'HEAD'] : methods;
      // every method fastify routes (TRACE and QUERY too): one left out would be a 404 "no route" on a path that exists
      const others = this.app.supportedMethods.filter((m) => !allowed.includes(m));
      const config: RouteConfig = { allow: allowed.join(', '), ...(open ? { auth: false } : {}) };
      this.app.route({ method: others, url, config, handler: async () => undefined });
    }
  }

  /** A `val` over the limit is 413, before any field, header or parameter is checked (413 comes before 400). */
  private refuseLargeVal(body: unknown): void {
    const val = (body as { val?: unknown } | undefined)?.val;
    if (typeof val === 'string' && Buffer.byteLength(val) > this.options.maxValSize) {
      this.refusedValSize.count++;
      throw apiErrors.valTooLarge(this.options.maxValSize);
    }
  }

  private handlerFor(route: AnyRoute, context: RouteContext) {
    const headerNames = route.headers === undefined ? [] : Object.keys((route.headers as z.ZodObject).shape);
    return async (req: FastifyRequest) => {
      if (route.body !== undefined) this.refuseLargeVal(req.body);
      const input = {
        headers: route.headers === undefined ? undefined : headersOf(headerNames, route.headers, req.headers),
        params: route.params === undefined ? undefined : parseInput(route.params, req.params, 'path'),
        query: route.query === undefined ? undefined : parseInput(route.query, req.query, 'query'),
        body: route.body === undefined ? undefined : parseInput(route.body, req.body, 'body'),
      };
      const data = await route.handle(input, context);
      return { code: 0, msg: 'ok', data };
    };
  }
}
