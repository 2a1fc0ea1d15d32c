import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.ts';
import type { VisionPool } from '../vision/vision-pool.ts';
import { installErrorHandling } from './problem.ts';

/** Who may call a route; every route declares one in its `config.access`. */
export type RouteAccess = 'public' | 'device' | 'operator' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

export interface ServerDeps {
  config: Config;
  vision: VisionPool;
  version: string;
  startedAt: Date;
}

/** Builds the HTTP server with every route registered; the caller listens and closes it. */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: deps.config.server.logLevel, redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]'] },
    bodyLimit: deps.config.vision.image.maxBytes * 2,
  });
  installErrorHandling(app);

  app.get('/api/v1/system/health', { config: { access: 'public' } }, async () => {
    const vision = deps.vision.stats();
    return {
      status: vision.workers > 0 ? 'ok' : 'degraded',
      version: deps.version,
      uptimeS: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
      vision: { engine: deps.config.vision.engine, ...vision },
    };
  });

  await app.ready();
  return app;
}
