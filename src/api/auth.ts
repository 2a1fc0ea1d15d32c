import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ACCESS_LEVELS, allows, type AccessLevel, type AuthService, type Principal } from '../services/auth.service.ts';
import { sendProblem } from './problem.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route. Every route declares it; the server refuses to start otherwise. */
    access?: AccessLevel;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** Routes that plugins register for themselves (the OpenAPI page and its assets) are public. */
const PUBLIC_PREFIXES = ['/docs'];

/**
 * The key a request presents: `Authorization: Bearer …` or `X-API-Key: …`; a WebSocket upgrade may
 * also carry it as `?key=…`, because browsers cannot set headers on a WebSocket.
 */
export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) return header.slice('Bearer '.length).trim();
  const key = request.headers['x-api-key'];
  if (typeof key === 'string') return key.trim();
  if (request.headers.upgrade?.toLowerCase() === 'websocket') {
    const query = request.url.indexOf('?');
    const fromQuery = query >= 0 ? new URLSearchParams(request.url.slice(query + 1)).get('key') : null;
    if (fromQuery) return fromQuery.trim();
  }
  return undefined;
}

/** The URL with a `key` query parameter masked, for logs. */
export function maskKeyInUrl(url: string): string {
  return url.replace(/([?&]key=)[^&#]*/gi, '$1***');
}

/**
 * Every route must say who may call it (`config: { access }`), and every request is checked
 * against that before its body is read: 401 without a valid key, 403 with too low a scope.
 */
export function installAuth(app: FastifyInstance, auth: AuthService): void {
  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path ?? '';
    if (PUBLIC_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`))) {
      route.config = { ...(route.config ?? {}), access: 'public' } as typeof route.config;
      return;
    }
    const access = (route.config as { access?: AccessLevel } | undefined)?.access;
    if (!access || !ACCESS_LEVELS.includes(access)) {
      throw new Error(`route ${route.method} ${url} does not declare who may call it (config.access)`);
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    // No route matched: the not-found handler answers, and it reveals nothing.
    const access = request.routeOptions.config.access ?? 'public';
    const key = presentedKey(request);
    if (key) request.principal = await auth.authenticate(key);
    if (access === 'public' || allows(request.principal, access)) return;
    if (!key) return sendProblem(reply, 401, 'unauthorized', 'this route needs an API key (Authorization: Bearer <key> or X-API-Key)');
    if (!request.principal) return sendProblem(reply, 401, 'unauthorized', 'the API key is unknown or revoked');
    return sendProblem(reply, 403, 'forbidden', `this route needs the ${access} scope; the key has ${request.principal.scopes.join(', ')}`);
  });
}
