import fastifyCors from '@fastify/cors';
import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SecurityConfig } from '../config/config.ts';
import { sendProblem } from './problem.ts';

/*
 * HTTP hardening in one place: CORS closed unless origins are configured, WebSocket upgrades from
 * foreign origins refused (a browser sends its cookies with them), per-key and per-IP rate limits
 * on the expensive and the guessable routes, security headers on every answer, and JSON bodies
 * that must be strict schemas (unknown fields are a 400, not silently dropped).
 */

/** What a route's requests count against. Routes may set `config.limit`; else the URL decides (see limitClassOf). */
export type LimitClass = 'recognition' | 'upload' | 'login' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Which rate limit a route's requests count against; unset = decided from its URL. */
    limit?: LimitClass;
  }
}

const RECOGNITION = /^\/api\/v1\/(recognize|verify|detect|compare)(\/|$)/;
const UPLOAD = /^\/api\/v1\/(people(\/:[A-Za-z]+\/faces|\/import)?|enrollments?(\/.*)?)$/;
const LOGIN = /(^|\/)(login|sessions\/login|auth\/login)$/;

/** The limit class of a route by method and URL pattern, when the route does not declare one. */
export function limitClassOf(method: string, url: string): LimitClass {
  if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return 'none';
  if (RECOGNITION.test(url)) return 'recognition';
  if (LOGIN.test(url)) return 'login';
  if (method === 'POST' && UPLOAD.test(url)) return 'upload';
  return 'none';
}

/** The origin of the server a request reached, as a browser would write it. */
function ownOrigins(request: FastifyRequest): string[] {
  const host = request.headers.host;
  return host ? [`http://${host}`, `https://${host}`] : [];
}

/** Registers CORS, security headers, the WebSocket origin check and the rate limits. Call after installAuth. */
export async function installHardening(app: FastifyInstance, config: SecurityConfig): Promise<void> {
  const allowed = new Set(config.corsOrigins);
  const any = allowed.has('*');
  await app.register(fastifyCors, {
    // false = no CORS headers at all: a browser on another origin cannot read any answer.
    origin: allowed.size === 0 ? false : any ? true : [...allowed],
    credentials: !any,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-API-Key', 'X-CSRF-Token'],
    maxAge: 600,
  });

  app.addHook('onRequest', async (request, reply) => {
    // Cross-site WebSocket hijacking: a page elsewhere could open our sockets with the user's cookies.
    if (request.headers.upgrade?.toLowerCase() !== 'websocket') return;
    const origin = request.headers.origin;
    if (!origin || any || allowed.has(origin) || ownOrigins(request).includes(origin)) return;
    return sendProblem(reply, 403, 'origin_not_allowed', 'WebSocket connections from this origin are not allowed (security.corsOrigins)');
  });

  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('Cross-Origin-Opener-Policy', 'same-origin');
    reply.header('Cross-Origin-Resource-Policy', 'same-origin');
    reply.header('Permissions-Policy', 'camera=(self), microphone=(), geolocation=()');
    // The Swagger UI pages need their own inline scripts; everything else gets the strict policy.
    if (!request.url.startsWith('/docs')) reply.header('Content-Security-Policy', config.contentSecurityPolicy);
    if (request.protocol === 'https') reply.header('Strict-Transport-Security', 'max-age=31536000; includeSubDomains');
    // API answers hold personal data: no shared cache may keep them.
    if (request.url.startsWith('/api/') && !reply.hasHeader('cache-control')) reply.header('Cache-Control', 'no-store');
    return payload;
  });

  const limits = config.rateLimit;
  if (!limits.enabled) return;
  await app.register(fastifyRateLimit, { global: false });
  const limiter = (name: string, max: number, by: 'key' | 'ip') =>
    app.createRateLimit({
      max,
      timeWindow: limits.windowMs,
      keyGenerator: (req) => `${name}:${by}:${by === 'key' ? (req.principal?.keyId ?? req.ip) : req.ip}`,
    });
  const checks: Record<Exclude<LimitClass, 'none'>, Array<{ by: 'key' | 'ip'; check: ReturnType<typeof limiter> }>> = {
    recognition: [
      { by: 'key', check: limiter('recognition', limits.recognitionPerKey, 'key') },
      { by: 'ip', check: limiter('recognition', limits.recognitionPerIp, 'ip') },
    ],
    upload: [
      { by: 'key', check: limiter('upload', limits.uploadPerKey, 'key') },
      { by: 'ip', check: limiter('upload', limits.uploadPerIp, 'ip') },
    ],
    login: [{ by: 'ip', check: limiter('login', limits.loginPerIp, 'ip') }],
  };

  // Runs after auth (hooks run in registration order), so a key's requests count against its id.
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions;
    if (!route.url) return;
    const cls = route.config.limit ?? limitClassOf(request.method, route.url);
    if (cls === 'none') return;
    for (const { by, check } of checks[cls]) {
      // A request without a key counts against its IP only (the per-key limit would count it twice).
      if (by === 'key' && !request.principal) continue;
      const result = await check(request);
      // isAllowed is true only for allow-listed keys; a counted request is over the limit when isExceeded.
      if (result.isAllowed || !result.isExceeded) continue;
      reply.header('Retry-After', String(result.ttlInSeconds));
      reply.header('RateLimit-Limit', String(result.max));
      reply.header('RateLimit-Remaining', '0');
      return sendProblem(reply, 429, 'rate_limited', `too many ${cls} requests from this ${by === 'key' ? 'key' : 'address'}; retry in ${result.ttlInSeconds} s`, {
        limit: result.max,
        windowMs: limits.windowMs,
        retryAfterS: result.ttlInSeconds,
      });
    }
  });
}

interface ZodLike {
  def?: { type?: string; catchall?: ZodLike; shape?: Record<string, ZodLike>; innerType?: ZodLike; in?: ZodLike; out?: ZodLike; options?: ZodLike[]; element?: ZodLike; left?: ZodLike; right?: ZodLike; valueType?: ZodLike; schema?: ZodLike };
}

/**
 * Paths (e.g. "body.people[]") of objects in a zod schema that would accept unknown fields: an
 * object must be z.strictObject, so a misspelt field is refused, not silently ignored.
 */
export function looseObjectPaths(schema: unknown, path = 'body', seen = new Set<unknown>()): string[] {
  const def = (schema as ZodLike | undefined)?.def;
  if (!def || seen.has(schema)) return [];
  seen.add(schema);
  switch (def.type) {
    case 'object': {
      const strict = def.catchall?.def?.type === 'never';
      const own = strict ? [] : [path];
      return own.concat(...Object.entries(def.shape ?? {}).map(([k, v]) => looseObjectPaths(v, `${path}.${k}`, seen)));
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return looseObjectPaths(def.innerType, path, seen);
    case 'pipe':
      return looseObjectPaths(def.in, path, seen);
    case 'lazy':
      return [];
    case 'union':
      return (def.options ?? []).flatMap((o) => looseObjectPaths(o, path, seen));
    case 'intersection':
      return [...looseObjectPaths(def.left, path, seen), ...looseObjectPaths(def.right, path, seen)];
    case 'array':
      return looseObjectPaths(def.element, `${path}[]`, seen);
    case 'record':
      return looseObjectPaths(def.valueType, `${path}{}`, seen);
    default:
      return [];
  }
}

/**
 * Where a value holds a NUL character (U+0000) in a string or a key, as "body.people[0].name", or
 * undefined. Walked without recursion: a body may nest deeper than the stack.
 */
export function nulCharacterPath(value: unknown, path: string): string | undefined {
  const pending: Array<[unknown, string]> = [[value, path]];
  while (pending.length > 0) {
    const [v, at] = pending.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return at;
      continue;
    }
    if (v === null || typeof v !== 'object' || Buffer.isBuffer(v)) continue;
    for (const [key, child] of Object.entries(v)) {
      const childAt = Array.isArray(v) ? `${at}[${key}]` : `${at}.${key}`;
      if (key.includes('\u0000')) return childAt;
      pending.push([child, childAt]);
    }
  }
  return undefined;
}

/**
 * Before installAuth: CORS's catch-all OPTIONS route is public (a preflight carries no credentials),
 * a route whose JSON body schema would accept unknown fields stops the server from starting, and
 * text with a NUL character is refused (PostgreSQL cannot store one in a text column: it was a 500
 * there, and taken on SQLite — now a 400 on both).
 */
export function prepareHardening(app: FastifyInstance): void {
  app.addHook('preValidation', async (request, reply) => {
    for (const [part, value] of [['params', request.params], ['query', request.query], ['body', request.body]] as const) {
      const at = nulCharacterPath(value, part);
      if (at) return sendProblem(reply, 400, 'validation_failed', `${at} contains a NUL character (\\u0000)`);
    }
  });
  app.addHook('onRoute', (route) => {
    if (route.method === 'OPTIONS' && route.url === '*') route.config = { ...(route.config ?? {}), access: 'public' } as typeof route.config;
  });
  app.addHook('onRoute', (route) => {
    const body = (route.schema as { body?: unknown } | undefined)?.body;
    if (!body) {
      // No body schema: the route takes no JSON fields at all (multipart routes read request.parts(), not body).
      // DELETE too: Fastify parses its body, and DELETE /people/{id} {"keepFaces": true} must not erase quietly.
      const methods = ([] as string[]).concat(route.method);
      if (!methods.some((m) => ['POST', 'PUT', 'PATCH', 'DELETE'].includes(m))) return;
      const refuseFields = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
        const value = request.body;
        const empty = value === undefined || value === null || (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0);
        if (!empty) await sendProblem(reply, 400, 'validation_failed', `${request.method} ${route.url} takes no JSON body`);
      };
      route.preValidation = ([] as NonNullable<typeof route.preValidation>[]).concat(route.preValidation ?? [], refuseFields as never).flat() as typeof route.preValidation;
      return;
    }
    const loose = looseObjectPaths(body);
    if (loose.length > 0) {
      throw new Error(`route ${String(route.method)} ${route.url} accepts unknown fields at ${loose.join(', ')}: use z.strictObject`);
    }
  });
}
