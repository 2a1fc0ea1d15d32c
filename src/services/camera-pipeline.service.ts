import { randomBytes } from 'node:crypto';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RealtimeConfig } from '../config/config.ts';
import { FaceTracker, DEFAULT_EMBEDDING_POLICY, type EmbeddingPolicy, type TrackerConfig, type TrackView } from '../domain/tracker.ts';
import { TrackIdentityVote, type TrackIdentity, type TrackVoteConfig } from '../domain/track-identity.ts';
import type { DecisionRegistry, RegistrationDecision } from '../events/decisions.ts';
import type { EventBus } from '../events/event-bus.ts';
import type { SystemState } from '../events/system-state.ts';
import { LatestFrameSlot } from '../sources/latest-frame-slot.ts';
import type { Frame, FramePipeline, RecognitionResultFace, RecognitionResultMessage } from '../sources/frame.ts';
import type { RecognitionLogRepository } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeResult } from '../vision/analysis.ts';
import type { VisionPool } from '../vision/vision-pool.ts';
import type { PersonSummary, RecognitionService } from './recognition.service.ts';

/*
 * The camera pipeline: per camera a latest-frame slot (newest frame wins, stale ones are dropped
 * and counted) and one processing loop. Every frame is detected (no embedding, no liveness) and
 * tracked; only the tracks the tracker's embedding policy asks for are embedded (with liveness),
 * each embedding is decided against the gallery, and the track's identity is the vote over its
 * decisions. Events are about tracks, not frames: person_recognized once when a track's identity
 * becomes known, unknown_person_detected when it settles as nobody (again with
 * show_registration_dialog once it has been stable askAfterStableMs), person_left_area when it
 * leaves, system_ready when the last one has gone. The recognition log gets one row per track
 * decision.
 *
 * Detection of up to framesInFlight frames of one camera runs in parallel on the vision pool;
 * tracking consumes the results strictly in frame order. Embeddings do not hold frames up: their
 * decision reaches the events at once and the results from the next frame on.
 */

/** What a sighting carries besides the person: the track's evidence (attendance rules use it). */
export interface SightingEvidence {
  trackId: string;
  /** The margin of the track's best match for the person; null before one. */
  margin: number | null;
  liveness: number | null;
  /** The track's best-matching embedding for the person. */
  embedding: { modelId: string; vector: Float32Array } | null;
  /** The frame the person was seen in; null for the sighting that comes with an identity decision. */
  frame: { seq: number; bytes: Uint8Array } | null;
}

/** Who the pipeline tells about people seen: sessions and attendance. */
export interface SightingSink {
  sighted(cameraId: string, personId: string, confidence: number, atMs: number, evidence?: SightingEvidence): void;
}

export interface CameraPipelineDeps {
  vision: Pick<VisionPool, 'analyze' | 'embedFaces' | 'size'>;
  recognition: Pick<RecognitionService, 'decideEmbedding'>;
  recognitionLog: Pick<RecognitionLogRepository, 'append'>;
  events: { bus: EventBus; state: Pick<SystemState, 'get' | 'waitingTrack'>; decisions?: Pick<DecisionRegistry, 'register'> };
  sessions?: SightingSink;
  config: RealtimeConfig;
  /** The identity vote's thresholds (trackVoteConfigFor the model's search threshold), merged under config.vote. */
  vote?: Partial<TrackVoteConfig>;
  /** The embedding model id, for the recognition log. */
  modelId: string;
  log?: (message: string) => void;
  /** Epoch ms. */
  now?: () => number;
}

export interface CameraOptions {
  /** Frames processed per second at most; null = realtime.defaultMaxFps; 0 = no limit. */
  maxFps?: number | null;
}

/** A histogram's buckets, cumulative as Prometheus reports them. */
export interface LatencySummary {
  /** Over the last up to 512 frames. */
  p50Ms: number | null;
  p99Ms: number | null;
  count: number;
}

export interface CameraPipelineStats {
  cameraId: string;
  /** In force: null = no limit. */
  maxFps: number | null;
  framesIn: number;
  framesProcessed: number;
  /** Replaced by a newer frame before their turn, too old when their turn came, or refused by an overloaded pool. */
  framesDropped: number;
  droppedStale: number;
  droppedOverloaded: number;
  frameErrors: number;
  /** Fully processed frames per second (exponentially weighted; 0 when nothing came for 2 s). */
  processingFps: number;
  latency: LatencySummary;
  activeTracks: number;
  embeddings: number;
  recognitions: number;
  unknowns: number;
  registrations: number;
  lastFrameAt: number | null;
  resultListeners: number;
}

type ResultListener = (result: RecognitionResultMessage) => void;

/** One processed frame as a frame observer (enrollment) sees it: the analysed faces and the track each was given. */
export interface ObservedFrame {
  cameraId: string;
  frame: Frame;
  analysis: AnalyzeResult;
  /** Per face of analysis.faces, in order: its track id (null when the tracker did not take it). */
  trackIds: readonly (string | null)[];
}

export type FrameObserver = (observed: ObservedFrame) => void;

interface TrackState {
  id: string;
  embeddingInFlight: boolean;
  /** What the clients were told about this track. */
  announced: { kind: 'none' } | { kind: 'known'; personId: string } | { kind: 'unknown' };
  /** The decision last written to the recognition log ("person:<id>", "unknown:<reason>"). */
  logged: string | null;
  /** The people this track's views matched (from their decisions), by id. */
  people: Map<string, PersonSummary>;
  liveness: number | null;
  /** When the registration dialog was offered (epoch ms). */
  askedAtMs: number | null;
  /** When someone answered "no" for this track (epoch ms). */
  declinedAtMs: number | null;
  approved: boolean;
  lastQuality: number;
  /** The track's best match so far, for sightings' evidence. */
  best: { personId: string; similarity: number; margin: number; embedding: { modelId: string; vector: Float32Array } } | null;
}

interface CameraRun {
  cameraId: string;
  slot: LatestFrameSlot;
  maxFpsOverride: number | null | undefined;
  tracker: FaceTracker;
  votes: TrackIdentityVote;
  tracks: Map<string, TrackState>;
  listeners: Set<ResultListener>;
  /** The last processed frame with its result (the web UI's live view). */
  lastView: { frame: Uint8Array; result: RecognitionResultMessage } | null;
  abort: AbortController;
  loop: Promise<void>;
  /** Tracking runs strictly in frame order through this chain. */
  order: Promise<void>;
  /** Embedding jobs under way (awaited when the camera stops). */
  embedding: Set<Promise<void>>;
  counters: {
    framesIn: number;
    framesProcessed: number;
    framesDropped: number;
    droppedStale: number;
    droppedOverloaded: number;
    frameErrors: number;
    embeddings: number;
    recognitions: number;
    unknowns: number;
    registrations: number;
  };
  ewmaIntervalMs: number | null;
  lastProcessedAtMs: number | null;
  lastFrameAt: number | null;
  latencies: Float64Array;
  latencyCount: number;
  lastActivityMs: number;
}

const LATENCY_WINDOW = 512;
const EWMA_ALPHA = 0.1;
/** A camera with no listener, no track and no frame for this long is forgotten (its counters too). */
const IDLE_CAMERA_MS = 10 * 60_000;

const round = (value: number, digits = 4): number => Number(value.toFixed(digits));

/** Metric families of the pipeline, in their own registry (served at /metrics with the rest). */
class PipelineMetrics {
  readonly registry = new Registry();
  readonly framesIn = new Counter({ name: 'facegate_camera_frames_in_total', help: 'Frames offered by sources, per camera', labelNames: ['camera'], registers: [this.registry] });
  readonly framesProcessed = new Counter({
    name: 'facegate_camera_frames_processed_total',
    help: 'Frames fully processed (detection, tracking, embedding when needed), per camera',
    labelNames: ['camera'],
    registers: [this.registry],
  });
  readonly framesDropped = new Counter({
    name: 'facegate_camera_frames_dropped_total',
    help: 'Frames not processed, per camera and reason (replaced by a newer one, stale, overloaded)',
    labelNames: ['camera', 'reason'],
    registers: [this.registry],
  });
  readonly frameErrors = new Counter({ name: 'facegate_camera_frame_errors_total', help: 'Frames that failed (undecodable image, worker failure)', labelNames: ['camera'], registers: [this.registry] });
  readonly embeddings = new Counter({ name: 'facegate_camera_embeddings_total', help: 'Faces embedded for tracks', labelNames: ['camera'], registers: [this.registry] });
  readonly decisions = new Counter({
    name: 'facegate_camera_track_decisions_total',
    help: 'Track identity decisions (outcome: recognized, unknown)',
    labelNames: ['camera', 'outcome'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'facegate_camera_frame_latency_seconds',
    help: 'From a frame received to its result out',
    labelNames: ['camera'],
    buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5],
    registers: [this.registry],
  });
  readonly fps = new Gauge({ name: 'facegate_camera_processing_fps', help: 'Frames processed per second (EWMA)', labelNames: ['camera'], registers: [this.registry] });
  readonly tracks = new Gauge({ name: 'facegate_camera_active_tracks', help: 'Faces being tracked', labelNames: ['camera'], registers: [this.registry] });

  forget(cameraId: string): void {
    for (const metric of [this.framesIn, this.framesProcessed, this.frameErrors, this.embeddings, this.latency, this.fps, this.tracks]) {
      metric.remove({ camera: cameraId });
    }
    for (const reason of ['replaced', 'stale', 'overloaded']) this.framesDropped.remove({ camera: cameraId, reason });
    for (const outcome of ['recognized', 'unknown']) this.decisions.remove({ camera: cameraId, outcome });
  }
}

export class CameraPipeline implements FramePipeline {
  private readonly runs = new Map<string, CameraRun>();
  private readonly cameraOptions = new Map<string, CameraOptions>();
  /** Per camera, who else wants each processed frame (guided enrollment on a camera). */
  private readonly observers = new Map<string, Set<FrameObserver>>();
  private readonly metrics = new PipelineMetrics();
  private readonly trackerConfig: Partial<TrackerConfig>;
  private readonly embeddingPolicy: EmbeddingPolicy;
  private readonly voteConfig: Partial<TrackVoteConfig>;
  private readonly now: () => number;
  private readonly log: (message: string) => void;
  private readonly unsubscribe: (() => void)[] = [];
  /** Cameras where an announced track left: system_ready follows once none is left. */
  private readonly pendingReady = new Set<string>();
  private readonly gcTimer: NodeJS.Timeout;
  /** Set while this pipeline emits system_ready itself (the bus dispatches synchronously). */
  private emittingReady = false;
  private closed = false;
  private lastErrorLogMs = 0;

  constructor(private readonly deps: CameraPipelineDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.log ?? (() => undefined);
    const { tracker, embedding, vote } = deps.config;
    this.trackerConfig = definedOnly(tracker);
    this.embeddingPolicy = { ...DEFAULT_EMBEDDING_POLICY, ...definedOnly(embedding) };
    this.voteConfig = { ...deps.vote, ...definedOnly(vote) };
    if (deps.events.decisions) {
      this.unsubscribe.push(deps.events.decisions.register({ onDecision: (d) => this.onDecision(d) }));
    }
    // A reset sent to another node (several nodes, issue 9) reaches the node running the camera too.
    this.unsubscribe.push(deps.events.bus.subscribe((event) => this.onSystemReady(event.camera_id), { types: ['system_ready'] }, { withRelayed: true }));
    this.gcTimer = setInterval(() => this.forgetIdleCameras(), 60_000);
    this.gcTimer.unref();
  }

  /** The pipeline's Prometheus metrics (per-camera counters, gauges and the latency histogram). */
  get metricsRegistry(): Registry {
    return this.metrics.registry;
  }

  offer(frame: Frame): void {
    if (this.closed) return;
    const run = this.run(frame.cameraId);
    run.counters.framesIn++;
    this.metrics.framesIn.inc({ camera: run.cameraId });
    run.lastFrameAt = frame.receivedAtMs;
    run.lastActivityMs = this.now();
    // The slot keeps one pending frame: offering over one replaces (drops) it.
    if (run.slot.hasPending) this.countDrop(run, 'replaced');
    run.slot.offer(frame);
  }

  onResult(cameraId: string, listener: ResultListener): () => void {
    const run = this.run(cameraId);
    run.listeners.add(listener);
    return () => {
      run.listeners.delete(listener);
      run.lastActivityMs = this.now();
    };
  }

  /** Sets a camera's options (a camera definition's maxFps); applies to a running camera at once. */
  configureCamera(cameraId: string, options: CameraOptions): void {
    this.cameraOptions.set(cameraId, options);
    const run = this.runs.get(cameraId);
    if (run) {
      run.maxFpsOverride = options.maxFps;
      run.slot.setMaxFps(this.maxFpsFor(options.maxFps));
    }
  }

  /** Stops a camera's loop: its tracks leave (person_left_area, then system_ready) and its counters are forgotten. */
  async removeCamera(cameraId: string): Promise<void> {
    this.cameraOptions.delete(cameraId);
    const run = this.runs.get(cameraId);
    if (!run) return;
    await this.stopRun(run);
    this.runs.delete(cameraId);
    this.metrics.forget(cameraId);
  }

  /**
   * Calls observer with every processed frame of the camera (after tracking, in frame order),
   * until the returned function is called. An observer must be quick: it runs on the tracking path.
   */
  observeFrames(cameraId: string, observer: FrameObserver): () => void {
    let set = this.observers.get(cameraId);
    if (!set) this.observers.set(cameraId, (set = new Set()));
    set.add(observer);
    return () => {
      set.delete(observer);
      if (set.size === 0 && this.observers.get(cameraId) === set) this.observers.delete(cameraId);
    };
  }

  /** Counts an enrollment completed on a camera (for status and metrics). */
  countRegistration(cameraId: string): void {
    this.run(cameraId).counters.registrations++;
  }

  /** The live tracks of a camera (for the enrollment flow and status). */
  tracks(cameraId: string): TrackView[] {
    return this.runs.get(cameraId)?.tracker.tracks() ?? [];
  }

  /** The last processed frame of a camera and its result, if any (for the web UI's live view). */
  lastView(cameraId: string): { frame: Uint8Array; result: RecognitionResultMessage } | null {
    return this.runs.get(cameraId)?.lastView ?? null;
  }

  cameraIds(): string[] {
    return [...this.runs.keys()].sort();
  }

  stats(cameraId?: string): CameraPipelineStats[] {
    const runs = cameraId === undefined ? [...this.runs.values()] : [this.runs.get(cameraId)].filter((r): r is CameraRun => r !== undefined);
    return runs.sort((a, b) => (a.cameraId < b.cameraId ? -1 : 1)).map((run) => this.runStats(run));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.gcTimer);
    for (const off of this.unsubscribe.splice(0)) off();
    await Promise.all([...this.runs.values()].map((run) => this.stopRun(run, false)));
    this.runs.clear();
  }

  // ---- per camera ----

  private run(cameraId: string): CameraRun {
    let run = this.runs.get(cameraId);
    if (run) return run;
    const maxFpsOverride = this.cameraOptions.get(cameraId)?.maxFps;
    run = {
      cameraId,
      slot: new LatestFrameSlot({ maxFps: this.maxFpsFor(maxFpsOverride) }),
      maxFpsOverride,
      // A short random prefix keeps track ids from repeating across restarts of a camera.
      tracker: new FaceTracker({ ...this.trackerConfig, idPrefix: `${randomBytes(3).toString('hex')}-` }),
      votes: new TrackIdentityVote(this.voteConfig),
      tracks: new Map(),
      listeners: new Set(),
      lastView: null,
      abort: new AbortController(),
      loop: Promise.resolve(),
      order: Promise.resolve(),
      embedding: new Set(),
      counters: {
        framesIn: 0,
        framesProcessed: 0,
        framesDropped: 0,
        droppedStale: 0,
        droppedOverloaded: 0,
        frameErrors: 0,
        embeddings: 0,
        recognitions: 0,
        unknowns: 0,
        registrations: 0,
      },
      ewmaIntervalMs: null,
      lastProcessedAtMs: null,
      lastFrameAt: null,
      latencies: new Float64Array(LATENCY_WINDOW),
      latencyCount: 0,
      lastActivityMs: this.now(),
    };
    this.runs.set(cameraId, run);
    const started = run;
    run.loop = this.loop(started).catch((err: Error) => this.log(`camera ${cameraId}: processing loop stopped: ${err.message}`));
    return run;
  }

  private maxFpsFor(override: number | null | undefined): number | undefined {
    const fps = override ?? this.deps.config.defaultMaxFps;
    return fps > 0 ? fps : undefined;
  }

  private async loop(run: CameraRun): Promise<void> {
    const inFlightMax = this.deps.config.framesInFlight > 0 ? this.deps.config.framesInFlight : Math.max(1, this.deps.vision.size);
    const inFlight = new Set<Promise<void>>();
    const stop = run.abort.signal;
    while (!stop.aborted) {
      while (inFlight.size >= inFlightMax) await Promise.race(inFlight);
      // With tracks alive, wake up now and then so they can leave even when frames stop coming.
      const wait = new AbortController();
      const onStop = (): void => wait.abort();
      stop.addEventListener('abort', onStop, { once: true });
      const tick = run.tracker.size > 0 ? setTimeout(onStop, this.deps.config.idleTickMs) : undefined;
      const frame = await run.slot.next(wait.signal);
      clearTimeout(tick);
      stop.removeEventListener('abort', onStop);
      if (stop.aborted) break;
      if (!frame) {
        run.order = run.order.then(() => this.sweep(run));
        continue;
      }
      if (this.now() - frame.receivedAtMs > this.deps.config.maxFrameAgeMs) {
        this.countDrop(run, 'stale');
        continue;
      }
      // The tracker plans the frame: follow its faces by landmarks, or detect (see FaceTracker.planFrame).
      const follow = run.tracker.planFrame(frame.receivedAtMs);
      const analysis = this.deps.vision.analyze(frame.bytes, { embed: 'none', liveness: false, pose: 'fast', follow, background: true }).then(
        (result) => ({ ok: true as const, result }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      const step = run.order.then(async () => {
        const outcome = await analysis;
        if (outcome.ok) this.track(run, frame, outcome.result);
        else this.frameFailed(run, frame, outcome.error);
      });
      run.order = step.catch((err: Error) => this.log(`camera ${run.cameraId}: tracking failed: ${err.message}`));
      const settled = run.order;
      inFlight.add(settled);
      void settled.finally(() => inFlight.delete(settled));
    }
    await Promise.allSettled(inFlight);
  }

  private async stopRun(run: CameraRun, announce = true): Promise<void> {
    run.abort.abort();
    run.slot.close();
    await run.loop;
    await run.order;
    await Promise.allSettled(run.embedding);
    if (announce) {
      this.handleLeft(run, run.tracker.clear());
      this.ready(run);
    }
    run.votes.clear();
    run.tracks.clear();
  }

  private forgetIdleCameras(): void {
    const now = this.now();
    for (const run of [...this.runs.values()]) {
      if (run.listeners.size > 0 || run.tracker.size > 0 || run.slot.hasPending || this.observers.has(run.cameraId)) continue;
      if (now - run.lastActivityMs < IDLE_CAMERA_MS || this.cameraOptions.has(run.cameraId)) continue;
      this.runs.delete(run.cameraId);
      this.metrics.forget(run.cameraId);
      void this.stopRun(run, false);
    }
  }

  // ---- one frame ----

  private track(run: CameraRun, frame: Frame, analysis: AnalyzeResult): void {
    const now = frame.receivedAtMs;
    const faces = analysis.faces;
    const update = run.tracker.update(
      faces.map((f) => ({ box: f.box, quality: { score: f.quality.score, pass: f.quality.pass }, pose: f.pose, ...(f.follow ? { follow: f.follow } : {}) })),
      now,
      analysis.location,
    );
    this.handleLeft(run, update.left);
    for (const id of update.started) run.tracks.set(id, newTrackState(id));

    const toEmbed: { trackId: string; face: AnalyzedFace }[] = [];
    const resultFaces: RecognitionResultFace[] = [];
    for (let i = 0; i < faces.length; i++) {
      const face = faces[i]!;
      const trackId = update.detectionTrackIds[i];
      if (trackId === null || trackId === undefined) continue;
      const state = run.tracks.get(trackId) ?? newTrackState(trackId);
      run.tracks.set(trackId, state);
      state.lastQuality = face.quality.score;
      if (!state.embeddingInFlight && run.tracker.embeddingReason(trackId, run.votes.isSettled(trackId), this.embeddingPolicy) !== null) {
        state.embeddingInFlight = true;
        toEmbed.push({ trackId, face });
      }
      const identity = run.votes.identity(trackId);
      this.announce(run, state, identity, now);
      const view = update.tracks.find((t) => t.id === trackId);
      if (view) this.maybeAsk(run, state, identity, view, now);
      if (identity.status === 'known') {
        this.deps.sessions?.sighted(run.cameraId, identity.personId, identity.similarity, now, sightingEvidence(state, identity.personId, frame));
      }
      resultFaces.push(resultFace(trackId, face, state, identity));
    }
    if (toEmbed.length > 0) {
      const job = this.embed(run, frame, toEmbed);
      run.embedding.add(job);
      void job.finally(() => run.embedding.delete(job));
    }
    if (update.left.length > 0 && run.tracker.size === 0) this.ready(run);
    const observers = this.observers.get(run.cameraId);
    if (observers) {
      const observed: ObservedFrame = { cameraId: run.cameraId, frame, analysis, trackIds: update.detectionTrackIds.map((id) => id ?? null) };
      for (const observer of observers) {
        try {
          observer(observed);
        } catch (err) {
          this.log(`camera ${run.cameraId}: a frame observer failed: ${(err as Error).message}`);
        }
      }
    }

    this.emitResult(run, frame, {
      type: 'recognition_result',
      camera_id: run.cameraId,
      frame_id: frame.frameId ?? null,
      faces: resultFaces,
      timestamp: frame.clientTimestamp ?? frame.receivedAtMs,
      width: analysis.width,
      height: analysis.height,
    });
  }

  private frameFailed(run: CameraRun, frame: Frame, error: unknown): void {
    const code = (error as { code?: unknown })?.code;
    if (code === 'vision_overloaded') {
      this.countDrop(run, 'overloaded');
      return;
    }
    run.counters.frameErrors++;
    this.metrics.frameErrors.inc({ camera: run.cameraId });
    const message = error instanceof Error ? error.message : String(error);
    const now = this.now();
    if (now - this.lastErrorLogMs > 10_000) {
      this.lastErrorLogMs = now;
      this.log(`camera ${run.cameraId}: frame ${frame.seq} failed: ${message}`);
    }
    this.emitResult(run, frame, {
      type: 'recognition_result',
      camera_id: run.cameraId,
      frame_id: frame.frameId ?? null,
      faces: [],
      timestamp: frame.clientTimestamp ?? frame.receivedAtMs,
      width: 0,
      height: 0,
      error: { code: typeof code === 'string' ? code : 'frame_failed', message: typeof code === 'string' ? message : 'the frame could not be processed' },
    });
  }

  private emitResult(run: CameraRun, frame: Frame, result: RecognitionResultMessage): void {
    const now = this.now();
    if (!result.error) {
      run.counters.framesProcessed++;
      this.metrics.framesProcessed.inc({ camera: run.cameraId });
      if (run.lastProcessedAtMs !== null) {
        const interval = Math.max(0, now - run.lastProcessedAtMs);
        run.ewmaIntervalMs = run.ewmaIntervalMs === null ? interval : run.ewmaIntervalMs + EWMA_ALPHA * (interval - run.ewmaIntervalMs);
      }
      run.lastProcessedAtMs = now;
    }
    const latencyMs = Math.max(0, now - frame.receivedAtMs);
    run.latencies[run.latencyCount % LATENCY_WINDOW] = latencyMs;
    run.latencyCount++;
    this.metrics.latency.observe({ camera: run.cameraId }, latencyMs / 1000);
    run.lastActivityMs = now;
    run.lastView = { frame: frame.bytes, result };
    for (const listener of run.listeners) {
      try {
        listener(result);
      } catch (err) {
        this.log(`camera ${run.cameraId}: a result listener failed: ${(err as Error).message}`);
      }
    }
  }

  private countDrop(run: CameraRun, reason: 'replaced' | 'stale' | 'overloaded'): void {
    run.counters.framesDropped++;
    if (reason === 'stale') run.counters.droppedStale++;
    if (reason === 'overloaded') run.counters.droppedOverloaded++;
    this.metrics.framesDropped.inc({ camera: run.cameraId, reason });
  }

  private sweep(run: CameraRun): void {
    const left = run.tracker.sweep(this.now());
    this.handleLeft(run, left);
    if (left.length > 0 && run.tracker.size === 0) this.ready(run);
  }

  // ---- embeddings and identity ----

  private async embed(run: CameraRun, frame: Frame, jobs: { trackId: string; face: AnalyzedFace }[]): Promise<void> {
    let embedded;
    try {
      embedded = await this.deps.vision.embedFaces(
        frame.bytes,
        jobs.map((j) => j.face),
        { liveness: true, background: true },
      );
    } catch (err) {
      for (const job of jobs) {
        const state = run.tracks.get(job.trackId);
        if (state) state.embeddingInFlight = false;
      }
      if ((err as { code?: unknown })?.code !== 'vision_overloaded') this.log(`camera ${run.cameraId}: embedding failed: ${(err as Error).message}`);
      return;
    }
    for (let i = 0; i < jobs.length; i++) {
      const { trackId, face } = jobs[i]!;
      const result = embedded.faces[i];
      const state = run.tracks.get(trackId);
      if (state) state.embeddingInFlight = false;
      if (!result || !state || run.abort.signal.aborted) continue;
      run.counters.embeddings++;
      this.metrics.embeddings.inc({ camera: run.cameraId });
      try {
        await this.decide(run, trackId, face, result.embedding, result.liveness, frame.receivedAtMs);
      } catch (err) {
        this.log(`camera ${run.cameraId}: identity decision failed: ${(err as Error).message}`);
      }
    }
  }

  private async decide(
    run: CameraRun,
    trackId: string,
    face: AnalyzedFace,
    embedding: { vector: Float32Array; modelId: string },
    liveness: number | undefined,
    atMs: number,
  ): Promise<void> {
    const record = run.tracker.recordEmbedding(trackId, embedding.vector, atMs, { qualityScore: face.quality.score, pose: face.pose });
    if (record.mergedTrackId !== undefined) {
      // A fresh track turned out to be a missing one: it goes on under the older id, unannounced.
      run.tracks.delete(record.mergedTrackId);
      run.votes.forget(record.mergedTrackId);
    }
    const id = record.trackId;
    const decision = await this.deps.recognition.decideEmbedding({
      embedding,
      qualityPass: face.quality.pass,
      ...(liveness === undefined ? {} : { liveness }),
    });
    const state = run.tracks.get(id);
    if (!state || run.abort.signal.aborted) return;
    if (liveness !== undefined) state.liveness = liveness;
    if (decision.person) state.people.set(decision.person.id, decision.person);
    const d = decision.decision;
    if (d.decision === 'match' && (state.best?.personId !== d.personId || d.similarity > state.best.similarity)) {
      state.best = { personId: d.personId, similarity: d.similarity, margin: d.margin, embedding };
    }
    const update = run.votes.addObservation(id, decision.decision, Math.max(0, face.quality.score));
    const identity = update.identity;
    if (update.changed && identity.status !== 'pending') {
      const key = identity.status === 'known' ? `person:${identity.personId}` : `unknown:${identity.reason}`;
      if (state.logged !== key) {
        state.logged = key;
        this.writeLog(run, state, identity, decision.decision.decision === 'match' ? decision.decision.margin : null);
      }
    }
    this.announce(run, state, identity, atMs);
  }

  private writeLog(run: CameraRun, state: TrackState, identity: TrackIdentity, margin: number | null): void {
    const known = identity.status === 'known';
    this.deps.recognitionLog
      .append({
        cameraId: run.cameraId,
        trackId: state.id,
        personId: known ? identity.personId : null,
        modelId: this.deps.modelId,
        similarity: identity.status === 'pending' ? null : identity.similarity === undefined ? null : round(identity.similarity),
        margin: known && margin !== null ? round(margin) : null,
        quality: round(state.lastQuality, 3),
        liveness: state.liveness === null ? null : round(state.liveness, 3),
        decision: known ? 'match' : 'unknown',
        reason: identity.status === 'unknown' ? identity.reason : null,
      })
      .catch((err: Error) => {
        // A person deleted between the decision and the write fails the foreign key: nothing to log.
        this.log(`camera ${run.cameraId}: could not write the recognition log: ${err.message}`);
      });
  }

  /** Tells the clients what a track is, once per change of what it is. */
  private announce(run: CameraRun, state: TrackState, identity: TrackIdentity, now: number): void {
    const { bus } = this.deps.events;
    if (identity.status === 'known') {
      if (state.announced.kind === 'known' && state.announced.personId === identity.personId) return;
      // A vote names only people some view matched; none here means they were deleted meanwhile.
      const person = state.people.get(identity.personId);
      if (!person) return;
      state.announced = { kind: 'known', personId: identity.personId };
      run.counters.recognitions++;
      this.metrics.decisions.inc({ camera: run.cameraId, outcome: 'recognized' });
      bus.emit('person_recognized', {
        camera_id: run.cameraId,
        track_id: state.id,
        person_id: identity.personId,
        name: person.name,
        external_id: person.externalId,
        confidence: clampCosine(identity.similarity),
        message: `Welcome, ${person.name}`,
      });
      this.deps.sessions?.sighted(run.cameraId, identity.personId, identity.similarity, now, sightingEvidence(state, identity.personId, null));
      return;
    }
    // Only a settled "nobody" is announced: a split vote (ambiguous) or a suspected spoof keeps waiting.
    if (identity.status !== 'unknown' || identity.reason === 'ambiguous' || !run.votes.isSettled(state.id)) return;
    if (state.announced.kind === 'unknown') return;
    state.announced = { kind: 'unknown' };
    run.counters.unknowns++;
    this.metrics.decisions.inc({ camera: run.cameraId, outcome: 'unknown' });
    bus.emit('unknown_person_detected', {
      camera_id: run.cameraId,
      track_id: state.id,
      confidence: identity.similarity === undefined ? null : clampCosine(identity.similarity),
      reason: identity.reason,
      show_registration_dialog: false,
      action_required: false,
    });
  }

  /** Offers registration for an unknown track stable long enough, one track per camera at a time. */
  private maybeAsk(run: CameraRun, state: TrackState, identity: TrackIdentity, view: TrackView, now: number): void {
    if (state.announced.kind !== 'unknown' || identity.status !== 'unknown' || identity.reason !== 'below_threshold') return;
    if (state.askedAtMs !== null || state.approved) return;
    if (state.declinedAtMs !== null && now - state.declinedAtMs < this.deps.config.askAgainAfterMs) return;
    if (view.stableForMs < this.deps.config.askAfterStableMs || view.missedFrames > 0) return;
    const { state: system, bus } = this.deps.events;
    if (system.waitingTrack(run.cameraId) !== null || system.get(run.cameraId).registration_in_progress) return;
    state.askedAtMs = now;
    bus.emit('unknown_person_detected', {
      camera_id: run.cameraId,
      track_id: state.id,
      message: 'Unknown person detected - would you like to register?',
      confidence: identity.similarity === undefined ? null : clampCosine(identity.similarity),
      reason: identity.reason,
      show_registration_dialog: true,
      action_required: true,
    });
  }

  private handleLeft(run: CameraRun, left: readonly TrackView[]): void {
    for (const view of left) {
      const state = run.tracks.get(view.id);
      run.tracks.delete(view.id);
      run.votes.forget(view.id);
      if (!state || state.announced.kind === 'none') continue;
      const identity = state.announced;
      this.deps.events.bus.emit('person_left_area', {
        camera_id: run.cameraId,
        track_id: view.id,
        person_id: identity.kind === 'known' ? identity.personId : null,
      });
      run.lastActivityMs = this.now();
      this.pendingReady.add(run.cameraId);
    }
  }

  /** Back to idle once the last announced track has left. */
  private ready(run: CameraRun): void {
    if (!this.pendingReady.delete(run.cameraId)) return;
    this.emittingReady = true;
    try {
      this.deps.events.bus.emit('system_ready', { camera_id: run.cameraId });
    } finally {
      this.emittingReady = false;
    }
  }

  // ---- what clients decide ----

  private onDecision(decision: RegistrationDecision): void {
    const run = this.runs.get(decision.cameraId);
    const state = decision.trackId === null ? undefined : run?.tracks.get(decision.trackId);
    if (!state) return;
    if (decision.register) state.approved = true;
    else {
      state.declinedAtMs = this.now();
      state.askedAtMs = null;
    }
  }

  /** A reset (POST /api/v1/system/reset) makes the camera announce its tracks afresh. */
  private onSystemReady(cameraId: string): void {
    if (this.emittingReady) return;
    const runs = cameraId === '*' ? [...this.runs.values()] : [this.runs.get(cameraId)].filter((r): r is CameraRun => r !== undefined);
    for (const run of runs) {
      this.pendingReady.delete(run.cameraId);
      for (const state of run.tracks.values()) {
        state.announced = { kind: 'none' };
        state.askedAtMs = null;
      }
    }
  }

  private runStats(run: CameraRun): CameraPipelineStats {
    const now = this.now();
    const recent = run.lastProcessedAtMs !== null && now - run.lastProcessedAtMs < 2000;
    const n = Math.min(run.latencyCount, LATENCY_WINDOW);
    const window = Array.from(run.latencies.subarray(0, n)).sort((a, b) => a - b);
    const pick = (q: number) => (n === 0 ? null : round(window[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]!, 1));
    const fps = recent && run.ewmaIntervalMs !== null && run.ewmaIntervalMs > 0 ? round(1000 / run.ewmaIntervalMs, 2) : 0;
    this.metrics.fps.set({ camera: run.cameraId }, fps);
    this.metrics.tracks.set({ camera: run.cameraId }, run.tracker.size);
    return {
      cameraId: run.cameraId,
      maxFps: run.slot.maxFps === undefined ? null : round(run.slot.maxFps, 2),
      ...run.counters,
      processingFps: fps,
      latency: { p50Ms: pick(0.5), p99Ms: pick(0.99), count: run.latencyCount },
      activeTracks: run.tracker.size,
      lastFrameAt: run.lastFrameAt,
      resultListeners: run.listeners.size,
    };
  }
}

function newTrackState(id: string): TrackState {
  return {
    id,
    embeddingInFlight: false,
    announced: { kind: 'none' },
    logged: null,
    people: new Map(),
    liveness: null,
    askedAtMs: null,
    declinedAtMs: null,
    approved: false,
    lastQuality: 0,
    best: null,
  };
}

function sightingEvidence(state: TrackState, personId: string, frame: Frame | null): SightingEvidence {
  const best = state.best?.personId === personId ? state.best : null;
  return {
    trackId: state.id,
    margin: best ? round(best.margin) : null,
    liveness: state.liveness,
    embedding: best?.embedding ?? null,
    frame: frame ? { seq: frame.seq, bytes: frame.bytes } : null,
  };
}

function resultFace(trackId: string, face: AnalyzedFace, state: TrackState, identity: TrackIdentity): RecognitionResultFace {
  const person = identity.status === 'known' ? state.people.get(identity.personId) : undefined;
  const known = person !== undefined;
  const out: RecognitionResultFace = {
    track_id: trackId,
    person_id: person?.id ?? null,
    name: person?.name ?? null,
    confidence: identity.status === 'pending' || identity.similarity === undefined ? 0 : round(Math.max(0, identity.similarity)),
    bbox: [round(face.box.x, 1), round(face.box.y, 1), round(face.box.width, 1), round(face.box.height, 1)],
    is_unknown: !known,
    quality: round(face.quality.score, 3),
    liveness: state.liveness === null ? null : round(state.liveness, 3),
    pose: { yaw: round(face.pose.yawDeg, 1), pitch: round(face.pose.pitchDeg, 1), roll: round(face.pose.rollDeg, 1) },
  };
  if (!known) out.reason = identity.status === 'unknown' ? identity.reason : face.quality.pass ? 'pending' : 'low_quality';
  return out;
}

function clampCosine(value: number): number {
  return round(Math.max(-1, Math.min(1, value)));
}

function definedOnly<T extends object>(value: T): Partial<{ [K in keyof T]: Exclude<T[K], undefined> }> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<{ [K in keyof T]: Exclude<T[K], undefined> }>;
}
