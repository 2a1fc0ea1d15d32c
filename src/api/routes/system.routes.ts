import { z } from 'zod';
import type { RouteModule } from '../server.ts';

const healthSchema = z.object({
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  uptimeS: z.number(),
  vision: z.object({
    engine: z.string(),
    workers: z.number(),
    busy: z.number(),
    queued: z.number(),
    completed: z.number(),
    failed: z.number(),
    restarts: z.number(),
  }),
});

export const systemRoutes: RouteModule = (app, deps) => {
  app.get(
    '/api/v1/system/health',
    {
      config: { access: 'public' },
      schema: { tags: ['system'], summary: 'Liveness of the server and its vision workers', response: { 200: healthSchema } },
    },
    async () => {
      const vision = deps.vision.stats();
      return {
        status: vision.workers > 0 ? ('ok' as const) : ('degraded' as const),
        version: deps.version,
        uptimeS: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
        vision: { engine: deps.config.vision.engine, ...vision },
      };
    },
  );
};
