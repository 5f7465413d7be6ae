import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CloseCode } from '../src/protocol/close-codes.js';
import { adminRoutes } from '../src/logic/admin.js';
import { ERROR_STATUSES } from '../src/logic/errors.js';
import { extraRoutes } from '../src/logic/extra-routes.js';
import { routes } from '../src/logic/routes.js';

const reference = readFileSync(new URL('../../docs/REFERENCE.md', import.meta.url), 'utf8');

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
});
