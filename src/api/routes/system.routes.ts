import { z } from 'zod';
import { calibratedThresholds, embeddingModelIdFor } from '../../vision/engine-factory.ts';
import { lastStorageRefusal } from '../problem.ts';
import type { RouteModule } from '../server.ts';

/** What the health check asks of the database (the store, wired in app.ts). */
export interface StorageHealthSource {
  /** Throws when the database cannot answer. */
  ping(): Promise<void>;
  /** Why the database cannot take writes now, or null. */
  writeProblem(): Promise<string | null>;
}

/** A refused write keeps the store reported as failing this long, unless a change succeeds before (the only signs the API has). */
const REFUSAL_SHOWN_MS = 60_000;

const STORE_STATUS = { storage_full: 'full', storage_read_only: 'read_only', storage_unavailable: 'unavailable' } as const;
type StoreStatus = 'ok' | (typeof STORE_STATUS)[keyof typeof STORE_STATUS];

async function storeStatus(source: StorageHealthSource | undefined, refusal: { code: string; atMs: number } | undefined): Promise<StoreStatus> {
  if (source) {
    try {
      await source.ping();
    } catch {
      return 'unavailable';
    }
    if ((await source.writeProblem().catch(() => 'unknown')) !== null) return 'read_only';
  }
  if (refusal && Date.now() - refusal.atMs < REFUSAL_SHOWN_MS) return STORE_STATUS[refusal.code as keyof typeof STORE_STATUS] ?? 'unavailable';
  return 'ok';
}

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
  /** read_only: the database (SQLite: the file, its -wal/-shm or folder) is not writable now, or a write was refused as read-only; full/unavailable: a write was refused in the last minute and none succeeded since. */
  store: z.object({
    status: z.enum(['ok', 'read_only', 'full', 'unavailable']),
    lastRefusal: z.object({ code: z.string(), at: z.string() }).optional(),
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
      const refusal = lastStorageRefusal(app);
      const store = await storeStatus(deps.services.storage, refusal);
      return {
        status: vision.workers > 0 && store === 'ok' ? ('ok' as const) : ('degraded' as const),
        store: { status: store, ...(refusal ? { lastRefusal: { code: refusal.code, at: new Date(refusal.atMs).toISOString() } } : {}) },
        version: deps.version,
        uptimeS: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
        vision: { engine: deps.config.vision.engine, ...vision },
      };
    },
  );

  app.get(
    '/api/v1/system/info',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['system'],
        summary: 'Version, models, thresholds in force and gallery size',
        response: {
          200: z.object({
            version: z.string(),
            engine: z.string(),
            embeddingModelId: z.string(),
            workers: z.number(),
            thresholds: z.object({ verify: z.number(), search: z.number(), minMargin: z.number(), liveness: z.number() }),
            recommended: z.object({ verify: z.number(), search: z.number() }).describe('What `facegate eval` measured for this embedding model (used when no threshold is configured)'),
            requireLiveness: z.boolean().describe('identity.requireLiveness: a face below the liveness threshold is never named'),
            retention: z.object({ recognitionLogDays: z.number(), eventsDays: z.number(), snapshotsDays: z.number() }).describe('trust.retention, days; 0 = kept'),
            classifier: z.enum(['cosine', 'svm']),
            gallery: z.object({ size: z.number(), kind: z.string(), otherModels: z.array(z.object({ modelId: z.string(), count: z.number() })) }),
            storeImages: z.boolean(),
          }),
        },
      },
    },
    async () => {
      const gallery = await deps.services.gallery.status();
      return {
        version: deps.version,
        engine: deps.config.vision.engine,
        embeddingModelId: embeddingModelIdFor(deps.config.vision).modelId,
        workers: deps.vision.stats().workers,
        thresholds: { ...calibratedThresholds(deps.config), minMargin: deps.config.identity.minMargin, liveness: deps.config.vision.livenessThreshold },
        recommended: calibratedThresholds({ vision: deps.config.vision, identity: {} }),
        requireLiveness: deps.config.identity.requireLiveness,
        retention: {
          recognitionLogDays: deps.config.trust.retention.recognitionLogDays,
          eventsDays: deps.config.trust.retention.eventsDays,
          snapshotsDays: deps.config.trust.retention.snapshotsDays,
        },
        classifier: deps.config.identity.classifier,
        gallery: { size: gallery.size, kind: gallery.kind, otherModels: gallery.otherModels },
        storeImages: deps.config.privacy.storeImages,
      };
    },
  );

  app.post(
    '/api/v1/system/reload-models',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['system'],
        summary: 'Load the face models again in fresh workers; the old workers finish their jobs first',
        response: { 200: z.object({ reloaded: z.literal(true), workers: z.number(), tookMs: z.number() }) },
      },
    },
    async () => {
      const started = Date.now();
      await deps.vision.reload();
      return { reloaded: true as const, workers: deps.vision.stats().workers, tookMs: Date.now() - started };
    },
  );
};
