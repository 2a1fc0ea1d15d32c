import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { z } from 'zod';
import { cameraStateSchema, type CameraState } from '../../events/event-map.ts';
import type { CameraPipelineStats } from '../../services/camera-pipeline.service.ts';
import type { RouteModule } from '../server.ts';

/*
 * Operating the real-time side. GET /api/v1/system/status: seed 000's system status (the state a
 * kiosk polls when it cannot keep a WebSocket open), per camera, with the pipeline's counters;
 * access device, like the seed's kiosks. GET /metrics: the same numbers and the process's in
 * Prometheus text; access operator — give Prometheus an operator key as a bearer token
 * (scrape_config `authorization: { credentials: fg_… }`).
 */

const latencySchema = z.object({
  p50Ms: z.number().nullable(),
  p99Ms: z.number().nullable(),
  count: z.number().describe('frames measured since the camera started (percentiles are over the last 512)'),
});

const pipelineSchema = z.object({
  maxFps: z.number().nullable().describe('processing rate limit in force; null = none'),
  framesIn: z.number(),
  framesProcessed: z.number(),
  framesDropped: z.number().describe('replaced by a newer frame, stale, or refused by an overloaded pool'),
  droppedStale: z.number(),
  droppedOverloaded: z.number(),
  frameErrors: z.number().describe('frames that could not be processed (an undecodable image…)'),
  processingFps: z.number(),
  latency: latencySchema.describe('from a frame received to its result out'),
  activeTracks: z.number(),
  embeddings: z.number(),
  recognitions: z.number().describe('tracks identified as an enrolled person'),
  unknowns: z.number().describe('tracks settled as nobody enrolled'),
  registrations: z.number(),
  lastFrameAt: z.number().nullable().describe('epoch ms'),
  resultListeners: z.number().describe('clients receiving this camera’s results'),
});

const cameraStatusSchema = cameraStateSchema.extend({
  pipeline: pipelineSchema.nullable().describe('null when no frame or client has reached the pipeline for this camera yet'),
  source: z
    .object({ state: z.string(), kind: z.string(), lastError: z.string().nullable(), fps: z.number() })
    .nullable()
    .describe('the camera’s source, when it is a defined camera'),
  session: z.string().nullable().describe('the recognition session running on this camera'),
});

const statusSchema = cameraStateSchema.omit({ camera_id: true }).extend({
  camera_id: z.string().nullable().describe('the camera the top-level (seed 000) fields describe; null when they sum up every camera'),
  status: z.enum(['ok', 'degraded']),
  version: z.string(),
  uptimeS: z.number(),
  cameras: z.array(cameraStatusSchema),
  enrollments: z
    .array(z.object({ id: z.string(), mode: z.string(), status: z.string(), cameraId: z.string().nullable(), progress: z.number(), name: z.string().nullable() }))
    .describe('enrollments under way (GET /api/v1/enrollments/{id} for the detail)'),
  vision: z.object({
    workers: z.number(),
    busy: z.number(),
    queued: z.number().describe('jobs waiting for a worker'),
    completed: z.number(),
    failed: z.number(),
    restarts: z.number(),
  }),
  totals: z.object({
    framesIn: z.number(),
    framesProcessed: z.number(),
    framesDropped: z.number(),
    recognitions: z.number(),
    unknowns: z.number(),
    registrations: z.number(),
    activeTracks: z.number(),
  }),
});

const statusQuery = z.strictObject({
  camera: z.string().min(1).max(100).optional().describe('describe this camera at the top level (seed 000 fields)'),
});

/** Sums several cameras into one seed-000 state: "any" for the flags, the latest camera for the event. */
function summarize(states: CameraState[]): Omit<CameraState, 'camera_id'> {
  const latest = [...states].sort((a, b) => (b.updated_at ?? 0) - (a.updated_at ?? 0))[0];
  const registering = states.find((s) => s.registration_in_progress);
  const waiting = states.find((s) => s.waiting_for_user_response);
  return {
    current_event: latest?.current_event ?? null,
    person_in_detection_area: states.some((s) => s.person_in_detection_area),
    person_data: latest?.person_data ?? null,
    waiting_for_user_response: waiting !== undefined,
    waiting_track_id: waiting?.waiting_track_id ?? null,
    registration_in_progress: registering !== undefined,
    registration_track_id: registering?.registration_track_id ?? null,
    current_registration_angle: registering?.current_registration_angle ?? null,
    registration_progress: registering?.registration_progress ?? 0,
    updated_at: latest?.updated_at ?? null,
  };
}

interface SourceLike {
  id: string;
  kind: string;
  state: string;
  lastError: string | null;
  stats: { fps: number };
}

/** The cameras service when it is wired in (its list of defined and streaming cameras). */
function sourcesOf(services: unknown): SourceLike[] {
  const cameras = (services as { cameras?: { list?: () => SourceLike[] } }).cameras;
  return typeof cameras?.list === 'function' ? cameras.list() : [];
}

export const statusRoutes: RouteModule = (app, deps) => {
  const { services, vision } = deps;
  const { pipeline, events, sessions } = services;

  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'facegate_' });
  const poolGauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  poolGauge('facegate_vision_workers', 'Vision worker threads ready', () => vision.stats().workers);
  poolGauge('facegate_vision_busy_workers', 'Vision workers processing a job', () => vision.stats().busy);
  poolGauge('facegate_vision_queued_jobs', 'Vision jobs waiting for a worker', () => vision.stats().queued);
  poolGauge('facegate_vision_completed_jobs', 'Vision jobs completed since start (a counter)', () => vision.stats().completed);
  poolGauge('facegate_vision_failed_jobs', 'Vision jobs failed since start (a counter)', () => vision.stats().failed);
  poolGauge('facegate_vision_worker_restarts', 'Vision workers replaced since start (a counter)', () => vision.stats().restarts);
  poolGauge('facegate_uptime_seconds', 'Seconds since the server started', () => Math.round((Date.now() - deps.startedAt.getTime()) / 1000));
  poolGauge('facegate_events_last_id', 'Id of the newest event emitted', () => events.bus.lastId);

  app.get(
    '/api/v1/system/status',
    {
      config: { access: 'device' },
      schema: {
        tags: ['system'],
        summary: 'What every camera sees and does now (seed 000 system status, per camera) with the pipeline counters',
        description:
          'Top level: seed 000’s fields (current_event, registration_in_progress, waiting_for_user_response, registration_progress, ' +
          'person_in_detection_area, …) for ?camera=ID, or summed over every camera. `cameras`: each camera’s state, pipeline counters ' +
          '(frames in / processed / dropped, processing fps, latency, active tracks, recognitions) and source. `vision`: the worker queue.',
        querystring: statusQuery,
        response: { 200: statusSchema },
      },
    },
    async (request) => {
      const stats = new Map<string, CameraPipelineStats>(pipeline.stats().map((s) => [s.cameraId, s]));
      const sources = new Map(sourcesOf(services).map((s) => [s.id, s]));
      const ids = new Set<string>([...stats.keys(), ...sources.keys(), ...events.state.list().map((s) => s.camera_id)]);
      if (request.query.camera) ids.add(request.query.camera);
      const cameras = [...ids].sort().map((id) => {
        const p = stats.get(id);
        const src = sources.get(id);
        return {
          ...events.state.get(id),
          pipeline: p
            ? {
                maxFps: p.maxFps,
                framesIn: p.framesIn,
                framesProcessed: p.framesProcessed,
                framesDropped: p.framesDropped,
                droppedStale: p.droppedStale,
                droppedOverloaded: p.droppedOverloaded,
                frameErrors: p.frameErrors,
                processingFps: p.processingFps,
                latency: p.latency,
                activeTracks: p.activeTracks,
                embeddings: p.embeddings,
                recognitions: p.recognitions,
                unknowns: p.unknowns,
                registrations: p.registrations,
                lastFrameAt: p.lastFrameAt,
                resultListeners: p.resultListeners,
              }
            : null,
          source: src ? { state: src.state, kind: src.kind, lastError: src.lastError, fps: src.stats.fps } : null,
          session: sessions.runningOn(id) ?? null,
        };
      });
      const top = request.query.camera
        ? { ...events.state.get(request.query.camera), camera_id: request.query.camera }
        : { ...summarize(cameras), camera_id: null };
      const sum = (pick: (s: CameraPipelineStats) => number) => [...stats.values()].reduce((n, s) => n + pick(s), 0);
      const visionStats = vision.stats();
      return {
        ...top,
        status: visionStats.workers > 0 ? ('ok' as const) : ('degraded' as const),
        version: deps.version,
        uptimeS: Math.round((Date.now() - deps.startedAt.getTime()) / 1000),
        cameras,
        enrollments: services.enrollments
          .list()
          .filter((e) => e.status === 'capturing' || e.status === 'saving')
          .map((e) => ({ id: e.id, mode: e.mode, status: e.status, cameraId: e.cameraId, progress: e.progress, name: e.name })),
        vision: visionStats,
        totals: {
          framesIn: sum((s) => s.framesIn),
          framesProcessed: sum((s) => s.framesProcessed),
          framesDropped: sum((s) => s.framesDropped),
          recognitions: sum((s) => s.recognitions),
          unknowns: sum((s) => s.unknowns),
          registrations: sum((s) => s.registrations),
          activeTracks: sum((s) => s.activeTracks),
        },
      };
    },
  );

  app.get(
    '/metrics',
    {
      config: { access: 'operator' },
      schema: {
        tags: ['system'],
        summary: 'Prometheus metrics (text format 0.0.4)',
        description:
          'Per camera: frames in / processed / dropped (by reason), errors, embeddings, track decisions, processing fps, active tracks, ' +
          'a latency histogram (frame received → result out). Vision pool gauges, uptime, and process metrics (facegate_process_*, facegate_nodejs_*). ' +
          'Needs an operator key: in Prometheus, `authorization: { credentials: <key> }` sends it as a bearer token.',
      },
    },
    async (_request, reply) => {
      // Refreshes the pipeline's gauges (fps, tracks) before they are read.
      pipeline.stats();
      const text = (await registry.metrics()) + (await pipeline.metricsRegistry.metrics());
      return reply.type(registry.contentType).send(text);
    },
  );
};
