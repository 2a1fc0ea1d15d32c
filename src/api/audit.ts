import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditService } from '../services/audit.service.ts';
import { limitClassOf } from './hardening.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** false = changes through this route are not audited (they change nothing an admin must answer for). */
    audit?: boolean;
  }
}

const CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const SINGULAR: Record<string, string> = { people: 'person', faces: 'face', keys: 'key', cameras: 'camera', sessions: 'session', users: 'user' };

/** "person" / "face" / "key" …: the kind of thing a route changes, from its URL pattern. */
export function targetTypeOf(url: string): string | null {
  const segments = url.split('?')[0]!.split('/').filter(Boolean).slice(2); // drop "api", "v1"
  let last: string | null = null;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (!s.startsWith(':')) last = s;
    else if (s !== ':id' && s.endsWith('Id')) last = s.slice(1, -2);
  }
  if (!last) return null;
  return SINGULAR[last] ?? last.replace(/s$/, '');
}

/** Who made the request, as the audit log names them. */
function actorOf(request: FastifyRequest): { actor: string; actorName: string | null } {
  const p = request.principal as (typeof request.principal & { userId?: string; username?: string }) | undefined;
  if (p?.userId) return { actor: `user:${p.userId}`, actorName: p.username ?? null };
  if (p?.keyId) return { actor: `key:${p.keyId}`, actorName: p.keyName };
  return { actor: 'anonymous', actorName: null };
}

/**
 * Every successful change through the API (POST/PUT/PATCH/DELETE answered 2xx) is appended to the
 * audit log before the answer leaves, so a client that saw "done" can find it in the log.
 * Recognition and login calls change nothing and are not audited (recognition has its own log).
 */
export function installAudit(app: FastifyInstance, audit: AuditService): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (!CHANGING.has(request.method) || reply.statusCode >= 300) return payload;
    const route = request.routeOptions;
    if (!route.url || route.config.audit === false) return payload;
    const cls = route.config.limit ?? limitClassOf(request.method, route.url);
    if (cls === 'recognition' || cls === 'login') return payload;
    const params = (request.params ?? {}) as Record<string, string>;
    let targetId: string | null = params.faceId ?? params.id ?? Object.values(params)[0] ?? null;
    if (!targetId && typeof payload === 'string' && payload.startsWith('{')) {
      try {
        const id = (JSON.parse(payload) as { id?: unknown }).id;
        if (typeof id === 'string' || typeof id === 'number') targetId = String(id);
      } catch {
        // not JSON: no id to take
      }
    }
    const body = request.body;
    try {
      await audit.record({
        ...actorOf(request),
        ip: request.ip,
        action: `${request.method} ${route.url}`,
        targetType: targetTypeOf(route.url),
        targetId,
        details: {
          status: reply.statusCode,
          ...(Object.keys(params).length > 0 ? { params } : {}),
          ...(body !== undefined && body !== null ? { body } : {}),
        },
      });
    } catch (err) {
      // The change is made; failing the answer now would make the client retry it. Log loudly instead.
      request.log.error({ err, action: `${request.method} ${route.url}` }, 'audit log write failed');
    }
    return payload;
  });
}
