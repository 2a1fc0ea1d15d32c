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

const SINGULAR: Record<string, string> = { people: 'person', faces: 'face', keys: 'key', cameras: 'camera', sessions: 'session', users: 'user', enrollments: 'enrollment' };

/**
 * The kind of thing a route changes: the collection named before the route's target parameter
 * (":faceId" → "face", ":id" after "people" → "person"), else the route's first segment
 * ("/api/v1/attendance/mark" → "attendance").
 */
export function targetTypeOf(url: string, param?: string): string | null {
  const segments = url.split('?')[0]!.split('/').filter(Boolean).slice(2); // drop "api", "v1"
  if (segments.length === 0) return null;
  const at = param ? segments.indexOf(`:${param}`) : -1;
  const collection = at > 0 ? segments[at - 1]! : segments[0]!;
  if (collection === 'logs' && segments[0] !== 'logs') return `${segments[0]}_log`;
  return SINGULAR[collection] ?? collection.replace(/s$/, '');
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
    const param = 'faceId' in params ? 'faceId' : 'id' in params ? 'id' : Object.keys(params)[0];
    let targetId: string | null = param ? (params[param] ?? null) : null;
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
        targetType: targetTypeOf(route.url, param),
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
