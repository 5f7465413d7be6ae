/**
 * Logic routes whose answer is not the `{"code","msg","data"}` JSON of the
 * route table: documents, streams and metrics. They are in the OpenAPI
 * document and the reference like the others; `server.ts` must serve each.
 */
export interface ExtraRoute {
  method: 'GET';
  url: string;
  summary: string;
  operationId: string;
  contentType: string;
  /** False when this server serves it without the API key (/metrics with --public-metrics). */
  auth?: boolean;
}

/** The extra routes as one server serves them: /metrics needs no key with --public-metrics. */
export function servedExtraRoutes(publicMetrics: boolean): ServedExtraRoute[] {
  return extraRoutes.map((route) => (route.url === '/metrics' && publicMetrics ? { ...route, auth: false } : route));
}

export const extraRoutes = [
  {
    method: 'GET',
    url: '/openapi.json',
    summary: 'This document',
    operationId: 'getOpenApi',
    contentType: 'application/json',
  },
  {
    method: 'GET',
    url: '/stats/stream',
    summary: 'The data of GET /stats, plus `at` (ms since the epoch), as one Server-Sent Event `stats` every second',
    operationId: 'getStatsStream',
    contentType: 'text/event-stream',
  },
  {
    method: 'GET',
    url: '/metrics',
    summary: 'Prometheus metrics in the text format; without the API key when roomcast runs with --public-metrics',
    operationId: 'getMetrics',
    contentType: 'text/plain; version=0.0.4',
  },
] as const satisfies readonly ExtraRoute[];

export type ExtraRouteUrl = (typeof extraRoutes)[number]['url'];

export type ServedExtraRoute = ExtraRoute & { url: ExtraRouteUrl };
