import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ACCESS_LEVELS, allows, type AccessLevel, type AuthService, type Principal } from '../services/auth.service.ts';
import type { UsersService } from '../services/users.service.ts';
import { sendProblem } from './problem.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call this route. Every route declares it; the server refuses to start otherwise. */
    access?: AccessLevel;
  }
  interface FastifyRequest {
    principal?: Principal;
    /** The browser session token, when the principal came from the session cookie. */
    sessionToken?: string;
  }
}

/** Routes that plugins register for themselves (the OpenAPI page and its assets) are public. */
const PUBLIC_PREFIXES = ['/docs', '/assets'];

/** The web UI's session cookie (HttpOnly, SameSite=Strict; see auth.routes.ts). */
export const SESSION_COOKIE = 'fg_session';
/** The header a cookie-authenticated mutating request must carry, with the session's CSRF token. */
export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Whether a browser request comes from a page of this server (Origin absent = not a browser cross-site request). */
function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (!origin) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

function isUpgrade(request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket';
}

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
export function installAuth(app: FastifyInstance, auth: AuthService, users?: UsersService): void {
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
    else if (users) {
      // The web UI's session cookie counts like a key with the session's scope. SameSite=Strict
      // keeps other sites from sending it; a mutating request must also echo the CSRF token
      // (which only a page of this origin can read), and a WebSocket must come from this origin.
      const token = request.cookies?.[SESSION_COOKIE];
      const session = token ? await users.principalForSession(token) : undefined;
      if (token && session) {
        if (isUpgrade(request) ? !sameOrigin(request) : !SAFE_METHODS.has(request.method)) {
          const presented = request.headers[CSRF_HEADER];
          const csrfOk = !isUpgrade(request) && typeof presented === 'string' && sameToken(presented, session.csrfToken);
          if (!csrfOk) {
            if (access === 'public') return;
            return sendProblem(reply, 403, 'csrf_failed', isUpgrade(request) ? 'a WebSocket signed in by cookie must come from a page of this server' : `a signed-in browser request that changes something needs the ${CSRF_HEADER} header from GET /api/v1/auth/session`);
          }
        }
        request.principal = session.principal;
        request.sessionToken = token;
      }
    }
    if (access === 'public' || allows(request.principal, access)) return;
    if (!key && !request.principal) return sendProblem(reply, 401, 'unauthorized', 'this route needs an API key (Authorization: Bearer <key> or X-API-Key) or a signed-in session');
    if (!request.principal) return sendProblem(reply, 401, 'unauthorized', 'the API key is unknown or revoked');
    return sendProblem(reply, 403, 'forbidden', `this route needs the ${access} scope; the ${request.sessionToken ? 'session' : 'key'} has ${request.principal.scopes.join(', ')}`);
  });
}
