import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { CloseCode } from '../src/protocol/close-codes.js';
import { adminRoutes } from '../src/logic/admin.js';
import { ERROR_STATUSES } from '../src/logic/errors.js';
import { extraRoutes } from '../src/logic/extra-routes.js';
import { routes, type AnyRoute } from '../src/logic/routes.js';
import { shapeMismatches, shapesIn } from './helpers/doc-shapes.js';

const reference = readFileSync(new URL('../../docs/REFERENCE.md', import.meta.url), 'utf8');

/** The row of a route in the reference's route table: its input column and its answer column. */
function routeRow(route: AnyRoute): { input: string; answer: string } {
  const row = reference.split('\n').find((line) => line.startsWith(`| \`${route.method} ${route.url}\` |`));
  assert.ok(row !== undefined, `${route.method} ${route.url} has no row in the route table`);
  const [, , input, answer] = row.split(/(?<!\\)\|/).map((cell) => cell.trim());
  return { input, answer };
}

function fieldsOf(schema: z.ZodType | undefined): string[] {
  if (schema === undefined) return [];
  return Object.keys((z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: object }).properties ?? {}).sort();
}

describe('docs/REFERENCE.md', () => {
  it('lists every close code with its name', () => {
    for (const [name, code] of Object.entries(CloseCode)) {
      assert.match(reference, new RegExp(`\\| ${code} \\| ${name} \\|`), `close code ${code} (${name}) is not in the table`);
    }
  });

  it('lists every error status the API answers with', () => {
    for (const status of ERROR_STATUSES) assert.match(reference, new RegExp(`^\\| ${status} \\|`, 'm'), `status ${status} is not documented`);
  });

  it('lists every route', () => {
    const served = [...routes, ...extraRoutes].map((r) => `${r.method} ${r.url}`);
    for (const route of [...served, ...adminRoutes.map((url) => `GET ${url}`)]) {
      assert.ok(reference.includes(`\`${route}\``), `${route} is not documented`);
    }
  });

  it("names each route's body fields and query parameters, as the route reads them", () => {
    for (const route of routes) {
      const { input } = routeRow(route);
      const query = /`\?([^`]*)`/.exec(input)?.[1];
      const documentedQuery = query === undefined ? [] : query.split('&').map((p) => p.replace(/=.*/, ''));
      const documentedBody = [...input.matchAll(/`(\w+)`/g)].map((m) => m[1]);
      assert.deepEqual(documentedBody.sort(), fieldsOf(route.body), `${route.method} ${route.url}: body fields`);
      assert.deepEqual(documentedQuery.sort(), fieldsOf(route.query), `${route.method} ${route.url}: query parameters`);
    }
  });

  it("describes each route's data with the fields the route answers, at every level it shows", () => {
    const problems: string[] = [];
    for (const route of routes) {
      const shapes = shapesIn(routeRow(route).answer);
      if (shapes.length === 0) continue;
      const schema = z.toJSONSchema(route.data, { io: 'output', unrepresentable: 'any' }) as Parameters<typeof shapeMismatches>[1] & { anyOf?: object[] };
      const where = `${route.method} ${route.url}`;
      const variants = (schema.anyOf ?? [schema]) as Parameters<typeof shapeMismatches>[1][];
      assert.equal(shapes.length, variants.length, `${where}: ${variants.length} answer shape(s), ${shapes.length} documented`);
      shapes.forEach((shape, i) => problems.push(...shapeMismatches(shape, variants[i], `${where} (answer ${i + 1})`)));
    }
    assert.deepEqual(problems, []);
  });
});
