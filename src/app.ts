import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildServer } from './api/server.ts';
import type { Config } from './config/config.ts';
import { projectPath } from './config/paths.ts';
import { createVisionPool, type VisionPool } from './vision/vision-pool.ts';

/** The running application: the composition root is the only place that wires concrete parts together. */
export interface App {
  server: FastifyInstance;
  vision: VisionPool;
  close(): Promise<void>;
}

export const VERSION: string = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;

export async function createApp(config: Config): Promise<App> {
  const vision = await createVisionPool(config.vision, {
    onWorkerError: (message) => console.error(`facegate: ${message}`),
  });
  let server: FastifyInstance;
  try {
    server = await buildServer({ config, vision, version: VERSION, startedAt: new Date() });
  } catch (err) {
    await vision.close();
    throw err;
  }
  return {
    server,
    vision,
    async close() {
      await server.close();
      await vision.close();
    },
  };
}
