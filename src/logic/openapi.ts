/** Builds the OpenAPI 3.1 document from the route table, so the two cannot drift apart. */
import { z } from 'zod';
import type { ExtraRoute } from './extra-routes.js';
import type { AnyRoute } from './routes.js';

type JsonSchema = Record<string, unknown>;

function schemaOf(type: z.ZodType): JsonSchema {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(type, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return schema;
}

function parametersOf(type: z.ZodType | undefined, location: 'path' | 'query' | 'header'): JsonSchema[] {
  if (type === undefined) return [];
  const schema = schemaOf(type);
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    // a header as HTTP spells it (Node gives them lower-case)
    name: location === 'header' ? name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase()) : name,
    in: location,
    required: location === 'path' || required.has(name),
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

const errorResponse = { $ref: '#/components/responses/Error' };

/** The error statuses one operation answers; 405 is left out, as it answers the methods the path does not have. */
function errorStatusesOf(route: AnyRoute): number[] {
  // 417: an Expect other than 100-continue, refused whatever the route
  const statuses = new Set<number>([...route.errors, 417]);
  if (route.auth !== false) statuses.add(401).add(403);
  if (route.body !== undefined || route.query !== undefined || route.params !== undefined) statuses.add(400);
  // 408: a body that does not arrive in time (a request whose headers do not is answered before it has a route)
  if (route.body !== undefined) statuses.add(408).add(413).add(415);
  return [...statuses].sort((a, b) => a - b);
}

/** An operation that answers without the API key says so (`security: []`); the others need the document's key. */
function securityOf(auth: boolean | undefined): JsonSchema {
  return auth === false ? { security: [] } : {};
}

export function buildOpenApi(routes: AnyRoute[], extraRoutes: readonly ExtraRoute[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const body = route.body === undefined ? undefined : schemaOf(route.body);
    const responses: Record<string, JsonSchema> = {
      200: {
        description: 'Success',
        content: {
          'application/json': {
            schema: {
              type: 'object',
              properties: { code: { const: 0 }, msg: { const: 'ok' }, data: schemaOf(route.data) },
              required: ['code', 'msg', 'data'],
            },
          },
        },
      },
    };
    for (const status of errorStatusesOf(route)) responses[status] = errorResponse;
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: `${route.method.toLowerCase()}${route.url.replace(/[/:]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
      ...securityOf(route.auth),
      parameters: [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query'), ...parametersOf(route.headers, 'header')],
      ...(body === undefined
        ? {}
        : {
            requestBody: {
              required: true,
              content: { 'application/x-www-form-urlencoded': { schema: body }, 'application/json': { schema: body } },
            },
          }),
      responses,
    };
  }
  for (const route of extraRoutes) {
    const schema = route.contentType === 'application/json' ? { type: 'object' } : { type: 'string' };
    paths[route.url] ??= {};
    paths[route.url][route.method.toLowerCase()] = {
      summary: route.summary,
      operationId: route.operationId,
      ...securityOf(route.auth),
      responses: {
        200: { description: route.summary, content: { [route.contentType]: { schema } } },
        ...(route.auth === false ? {} : { 401: errorResponse, 403: errorResponse }),
        417: errorResponse,
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'roomcast logic API',
      version,
      description:
        'Push messages to WebSocket clients connected to roomcast gateways. Every answer is JSON: ' +
        '{"code":0,"msg":"ok","data":...} on success, {"code":<status>,"msg":"..."} otherwise.',
    },
    security: [{ apiKey: [] }],
    paths,
    components: {
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'The --api-key value, when one is set' } },
      schemas: {
        Error: {
          type: 'object',
          properties: { code: { type: 'integer', description: 'The HTTP status' }, msg: { type: 'string' } },
          required: ['code', 'msg'],
        },
      },
      responses: {
        Error: {
          description: 'An error; msg says what is wrong and names the field',
          content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
        },
      },
    },
  };
}
