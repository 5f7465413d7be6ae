/**
 * The admin page and the "try it" page: static files that Vite builds from
 * admin/ into dist/admin/, served without the API key (the page asks for the
 * key and sends it with each API call). The pages may load scripts and styles
 * from this server only (Content-Security-Policy).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { apiErrors } from './errors.js';

export const ADMIN_DIR = fileURLToPath(new URL('../../admin/', import.meta.url));

/** Every path the admin pages are served at, for the reference doc and its test. */
export const adminRoutes = ['/admin', '/admin/', '/admin/try', '/admin/config.json', '/admin/assets/*'] as const;

export interface AdminConfig {
  /** Whether the API wants `Authorization: Bearer <key>` (the page then asks for it). */
  apiKey: boolean;
  /** Where the gateway listens, when this process runs one: the "try it" page's default. */
  gateway: { port: number; path: string } | null;
}

const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  // the "try it" page connects to the gateway, on another port or host
  "connect-src 'self' ws: wss:",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const ASSET_NAME = /^[\w-]+(\.[\w-]+)+$/;

function page(reply: FastifyReply, file: string): FastifyReply {
  // Pages name the current assets: always revalidate them (the assets themselves never change).
  return reply
    .header('content-security-policy', PAGE_POLICY)
    .header('referrer-policy', 'no-referrer')
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-cache')
    .sendFile(file, { cacheControl: false });
}

export function registerAdmin(app: FastifyInstance, config: () => AdminConfig): void {
  const options = { config: { auth: false } };
  app.get('/admin/config.json', options, async () => config());
  if (!existsSync(join(ADMIN_DIR, 'index.html'))) {
    const notBuilt = async (): Promise<never> => {
      throw apiErrors.notFound('the admin page is not built: run npm run build');
    };
    for (const url of adminRoutes) if (url !== '/admin/config.json') app.get(url, options, notBuilt);
    return;
  }
  void app.register(fastifyStatic, { root: ADMIN_DIR, serve: false });
  app.get('/admin', options, (_req, reply) => page(reply, 'index.html'));
  app.get('/admin/', options, (_req, reply) => page(reply, 'index.html'));
  app.get('/admin/try', options, (_req, reply) => page(reply, 'try.html'));
  app.get<{ Params: { '*': string } }>('/admin/assets/*', options, async (req, reply) => {
    const name = req.params['*'];
    // Vite writes assets flat, each name with a hash of its content: anything else is not one, and an asset never changes.
    if (!ASSET_NAME.test(name)) throw apiErrors.notFound(`no admin asset ${JSON.stringify(name.slice(0, 100))}`);
    // a browser takes an asset for what its content type says, never for what its bytes look like
    return reply.header('x-content-type-options', 'nosniff').sendFile(name, join(ADMIN_DIR, 'assets'), { immutable: true, maxAge: '365d' });
  });
}
