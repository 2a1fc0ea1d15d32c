import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildServer, type ApiApp } from './api/server.ts';
import { ClusterNode, clusterNodeId } from './cluster/cluster-node.ts';
import type { Config } from './config/config.ts';
import { startEventsRuntime, type EventsRuntime } from './events/events-runtime.ts';
import { projectPath } from './config/paths.ts';
import { AuditService } from './services/audit.service.ts';
import { PrivacyService } from './services/privacy.service.ts';
import { RetentionService } from './services/retention.service.ts';
import { AuthService } from './services/auth.service.ts';
import { CameraPipeline } from './services/camera-pipeline.service.ts';
import { CamerasService } from './services/cameras.service.ts';
import { ClassifierService } from './services/classifier.service.ts';
import { EnrollmentService } from './services/enrollment.service.ts';
import { GalleryService } from './services/gallery.service.ts';
import { ImportService } from './services/import.service.ts';
import { PeopleService } from './services/people.service.ts';
import { CosineGalleryScorer, identityPolicyFor, RecognitionService } from './services/recognition.service.ts';
import { SessionsService } from './services/sessions.service.ts';
import { AttendanceService } from './services/attendance.service.ts';
import { NegativeExamples } from './services/negative-examples.ts';
import { UsersService } from './services/users.service.ts';
import { trackVoteConfigFor } from './domain/track-identity.ts';
import { fetchImage } from './sources/url-image.ts';
import { migrateToLatest, openDatabase, type Store } from './store/index.ts';
import { calibratedThresholds, embeddingModelIdFor } from './vision/engine-factory.ts';
import { augmentImage } from './vision/augment.ts';
import { createVisionPool, type VisionPool } from './vision/vision-pool.ts';

/** The running application: the composition root is the only place that wires concrete parts together. */
export interface App {
  server: ApiApp;
  vision: VisionPool;
  store: Store;
  gallery: GalleryService;
  /** The event bus, system state, ring, decisions, webhooks and MQTT. */
  events: EventsRuntime;
  /** Frames in, tracks, identities and events out, per camera. */
  pipeline: CameraPipeline;
  /** Several nodes on one PostgreSQL (issue 9); null on SQLite (one node). */
  cluster: ClusterNode | null;
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
    if (!config.privacy.storeImages) {
      await store.templates.purgeThumbnails();
      await store.attendance.purgeSnapshots();
    }
    // A key set after templates were stored: seal the old ones now, not when they are next written.
    const sealed = await store.templates.sealPlaintext();
    if (sealed > 0) log(`encrypted ${sealed} embeddings stored before trust.embeddingKey was set`);
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * The services without the HTTP server: what the server and the CLI commands that change the
 * gallery (import) share, so that both keep the store, the index and the classifier in step.
 */
export interface Services {
  store: Store;
  vision: VisionPool;
  gallery: GalleryService;
  people: PeopleService;
  recognition: RecognitionService;
  importer: ImportService;
  classifier: ClassifierService;
  /** Revoked check-ins' faces, which the identity decision does not name their person for. */
  negatives: NegativeExamples;
  close(): Promise<void>;
}

export async function createServices(config: Config, log: (message: string) => void = () => {}): Promise<Services> {
  const store = await openStore(config, log);
  const { modelId } = embeddingModelIdFor(config.vision);
  const gallery = new GalleryService(store, {
    modelId,
    dir: join(resolve(config.dataDir), 'gallery'),
    saveEveryMs: config.gallery.saveEveryMs,
    hnswAboveTemplates: config.gallery.hnswAboveTemplates,
    hnswSubspace: config.gallery.hnswSubspace,
    hnswExpansionSearch: config.gallery.hnswExpansionSearch,
    // Sealed embeddings must not have clear copies in index files: rebuild at start instead.
    persist: config.trust.embeddingKey === undefined,
    log,
  });
  let vision: VisionPool;
  try {
    await gallery.start();
    vision = await createVisionPool(config.vision, { onWorkerError: (message) => console.error(`facegate: ${message}`) });
  } catch (err) {
    await gallery.close();
    await store.close();
    throw err;
  }
  try {
    const thresholds = calibratedThresholds(config);
    const fetchUrl = async (url: string): Promise<Uint8Array> => (await fetchImage(url, config.urlFetch)).bytes;
    const people = new PeopleService({
      store,
      gallery,
      vision,
      fetchImage: fetchUrl,
      duplicateThreshold: thresholds.search,
      searchK: config.identity.searchK,
      storeThumbnails: config.privacy.storeImages,
      minFaceSizePx: config.vision.quality.minFaceSizePx,
    });
    const importer = new ImportService({ store, people, vision, fetchImage: fetchUrl, storeThumbnails: config.privacy.storeImages, log });
    const classifier = new ClassifierService(store.templates, { modelId, dir: join(resolve(config.dataDir), 'classifier'), log });
    const trained = await classifier.load();
    const negatives = new NegativeExamples(store.attendance, modelId);
    await negatives.load();
    if (config.identity.classifier === 'svm' && !trained) {
      log('identity.classifier is "svm" but no SVM is trained yet: recognition uses the cosine search until POST /api/v1/system/train-model');
    }
    const recognition = new RecognitionService({
      store,
      vision,
      scorer:
        config.identity.classifier === 'svm'
          ? classifier.scorer(gallery, config.identity.searchK, thresholds.search, thresholds.verify)
          : new CosineGalleryScorer(gallery, config.identity.searchK),
      modelId,
      policy: identityPolicyFor(config, thresholds.search),
      verifyThreshold: thresholds.verify,
      negatives,
    });
    return {
      store,
      vision,
      gallery,
      people,
      recognition,
      importer,
      classifier,
      negatives,
      async close() {
        await vision.close();
        await gallery.close();
        await store.close();
      },
    };
  } catch (err) {
    await vision.close();
    await gallery.close();
    await store.close();
    throw err;
  }
}

/** Web UI users and sessions over a store: the server and `facegate user` share it. */
export function usersServiceFor(config: Config, store: Store, auth: AuthService = new AuthService(store.apiKeys)): UsersService {
  return new UsersService(store.users, auth, {
    sessionTtlMs: config.ui.sessionTtlHours * 3_600_000,
    maxFailedLogins: config.ui.maxFailedLogins,
    lockoutMs: config.ui.lockoutMinutes * 60_000,
  });
}

export async function createApp(config: Config, log: (message: string) => void = () => {}): Promise<App> {
  const services = await createServices(config, log);
  const { store, vision, gallery, people, recognition, importer, classifier, negatives } = services;
  let server: ApiApp;
  let events: EventsRuntime;
  const cluster = store.dialect === 'postgres' ? new ClusterNode({ nodeId: clusterNodeId(config), url: config.database.url!, config: config.cluster, store, log }) : null;
  try {
    await cluster?.prepare();
    events = await startEventsRuntime(config.events, cluster?.ringStore() ?? store.events, {
      log,
      userAgent: `facegate/${VERSION}`,
      ...(cluster ? { allocateId: () => cluster.ids.next() } : {}),
    });
  } catch (err) {
    await services.close();
    throw err;
  }
  // Attendance is created below; sessions only call this at report time.
  const sessions: SessionsService = new SessionsService({ store, log, settleCheckIns: (): Promise<void> => attendance.flush() });
  const thresholds = calibratedThresholds(config);
  const attendance: AttendanceService = new AttendanceService({
    store,
    bus: events.bus,
    config: config.attendance,
    searchThreshold: thresholds.search,
    livenessThreshold: config.vision.livenessThreshold,
    storeImages: config.privacy.storeImages,
    sessionOn: (cameraId): string | undefined => sessions.runningOn(cameraId),
    negatives,
    log,
  });
  const pipeline = new CameraPipeline({
    vision,
    recognition,
    recognitionLog: store.recognitionLog,
    events: { bus: events.bus, state: events.state, decisions: events.decisions },
    // Every sighting goes to the sessions and to attendance.
    sessions: {
      sighted: (cameraId, personId, confidence, atMs, evidence) => {
        sessions.sighted(cameraId, personId, confidence, atMs);
        attendance.sighted(cameraId, personId, confidence, atMs, evidence);
      },
    },
    config: config.realtime,
    vote: trackVoteConfigFor(thresholds.search, config.identity.minMargin),
    modelId: embeddingModelIdFor(config.vision).modelId,
    log,
  });
  const enrollments = new EnrollmentService({
    vision,
    people,
    bus: events.bus,
    cameras: pipeline,
    decisions: events.decisions,
    config: config.enrollment,
    verifyThreshold: thresholds.verify,
    livenessThreshold: config.vision.livenessThreshold,
    minFaceSizePx: config.vision.quality.minFaceSizePx,
    storeThumbnails: config.privacy.storeImages,
    augment: augmentImage,
    log,
  });
  const retention = new RetentionService({
    recognitionLog: store.recognitionLog,
    events: store.events,
    snapshotsDir: join(resolve(config.dataDir), 'snapshots'),
    retention: config.trust.retention,
    log,
  });
  const cameras = new CamerasService({ cameras: store.cameras, pipeline, config, log, ...(cluster ? { ownership: cluster } : {}) });
  // The parts in the order they stop: what feeds frames and events first, the store last.
  async function closeParts(): Promise<void> {
    await enrollments.close();
    await retention.close();
    await cameras.close();
    await cluster?.close();
    await pipeline.close();
    await sessions.close();
    await attendance.close();
    await events.close();
    await services.close();
  }
  try {
    await sessions.start();
    attendance.start();
    await cameras.start();
    retention.start();
    await cluster?.start({ bus: events.bus, decisions: events.decisions, gallery, cameras });
    const auth = new AuthService(store.apiKeys);
    const firstKey = await auth.ensureAdminKey();
    if (firstKey) {
      log(`no API key existed, so an admin key was created. It is shown this once; keep it:\n\n    ${firstKey}\n`);
    }
    const users = usersServiceFor(config, store, auth);
    await users.pruneSessions();
    server = await buildServer({
      config,
      vision,
      services: {
        auth,
        gallery,
        people,
        recognition,
        import: importer,
        classifier,
        sessions,
        events,
        pipeline,
        cameras,
        enrollments,
        attendance,
        audit: new AuditService(store.audit),
        privacy: new PrivacyService(store),
        cluster,
        storage: { ping: () => store.ping(), writeProblem: () => store.writeProblem() },
        users,
      },
      version: VERSION,
      startedAt: new Date(),
    });
  } catch (err) {
    await closeParts();
    throw err;
  }
  return {
    server,
    vision,
    store,
    gallery,
    events,
    pipeline,
    cluster,
    async close() {
      await server.close();
      await closeParts();
    },
  };
}
