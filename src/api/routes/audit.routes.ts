import { z } from 'zod';
import type { RouteModule } from '../server.ts';

const entrySchema = z.object({
  id: z.number(),
  at: z.number().describe('epoch ms'),
  actor: z.string().describe('"key:<id>", "user:<id>", "cli" or "system"'),
  actorName: z.string().nullable(),
  ip: z.string().nullable(),
  action: z.string().describe('e.g. "DELETE /api/v1/people/:id"'),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()).describe('the request with images and secrets redacted'),
});

export const auditRoutes: RouteModule = (app, { services }) => {
  app.get(
    '/api/v1/audit',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'The audit log (append-only), newest first',
        querystring: z.strictObject({
          beforeId: z.coerce.number().int().positive().optional().describe('page on: the smallest id received'),
          targetId: z.string().max(200).optional(),
          actor: z.string().max(200).optional(),
          action: z.string().max(200).optional().describe('entries whose action starts with this'),
          sinceMs: z.coerce.number().int().min(0).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
        response: { 200: z.object({ items: z.array(entrySchema), nextBeforeId: z.number().nullable() }) },
      },
    },
    async (request) => {
      const q = request.query;
      const items = await services.audit.list({
        ...(q.beforeId !== undefined ? { beforeId: q.beforeId } : {}),
        ...(q.targetId !== undefined ? { targetId: q.targetId } : {}),
        ...(q.actor !== undefined ? { actor: q.actor } : {}),
        ...(q.action !== undefined ? { actionPrefix: q.action } : {}),
        ...(q.sinceMs !== undefined ? { sinceMs: q.sinceMs } : {}),
        limit: q.limit,
      });
      return { items, nextBeforeId: items.length === q.limit ? items[items.length - 1]!.id : null };
    },
  );
};
