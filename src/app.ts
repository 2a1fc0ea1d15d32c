import { readFileSync } from 'node:fs';
import { buildServer, type ApiApp } from './api/server.ts';
import type { Config } from './config/config.ts';
import { projectPath } from './config/paths.ts';
import { AuthService } from './services/auth.service.ts';
import { migrateToLatest, openDatabase, type Store } from './store/index.ts';
import { createVisionPool, type VisionPool } from './vision/vision-pool.ts';

/** The running application: the composition root is the only place that wires concrete parts together. */
export interface App {
  server: ApiApp;
  vision: VisionPool;
  store: Store;
  close(): Promise<void>;
}

export const VERSION: string = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { version: string }).version;

/** Opens the store and brings its schema up to date (migrations run at every start). */
export async function openStore(config: Config, log: (message: string) => void = () => {}): Promise<Store> {
  const store = await openDatabase(config);
  try {
    const applied = await migrateToLatest(store);
    if (applied.length > 0) log(`database ${store.location}: applied migrations ${applied.join(', ')}`);
    // Images stored before the no-images setting was turned on are removed, not just hidden.
    if (!config.privacy.storeImages) await store.templates.purgeThumbnails();
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

export async function createApp(config: Config, log: (message: string) => void = () => {}): Promise<App> {
  const store = await openStore(config, log);
  let vision: VisionPool;
  try {
    vision = await createVisionPool(config.vision, { onWorkerError: (message) => console.error(`facegate: ${message}`) });
  } catch (err) {
    await store.close();
    throw err;
  }
  let server: ApiApp;
  try {
    const auth = new AuthService(store.apiKeys);
    const firstKey = await auth.ensureAdminKey();
    if (firstKey) {
      log(`no API key existed, so an admin key was created. It is shown this once; keep it:\n\n    ${firstKey}\n`);
    }
    server = await buildServer({ config, vision, services: { auth }, version: VERSION, startedAt: new Date() });
  } catch (err) {
    await vision.close();
    await store.close();
    throw err;
  }
  return {
    server,
    vision,
    store,
    async close() {
      await server.close();
      await vision.close();
      await store.close();
    },
  };
}
