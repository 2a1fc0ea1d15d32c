import { randomUUID } from 'node:crypto';
import type { EnrollmentConfig } from '../config/config.ts';
import { assessParallax } from '../domain/enrollment-liveness.ts';
import {
  GuidedCapture,
  ScanCoverage,
  screenCaptures,
  selectTemplates,
  type CaptureCandidate,
  type FrameObservation,
  type Guidance,
  type ObservedFace,
  type ScanCoverageSummary,
} from '../domain/enrollment.ts';
import { AppError } from '../domain/errors.ts';
import type { HeadPose } from '../domain/types.ts';
import type { DecisionRegistry, RegistrationDecision } from '../events/decisions.ts';
import type { EventBus } from '../events/event-bus.ts';
import type { EmitInput, FacegateEventName } from '../events/event-map.ts';
import type { NewPerson } from '../store/index.ts';
import type { AnalyzedFace, AnalyzeResult } from '../vision/analysis.ts';
import type { VisionPool } from '../vision/vision-pool.ts';
import type { FrameObserver } from './camera-pipeline.service.ts';
import type { CreateWithFacesResult, NewFace, PeopleService } from './people.service.ts';

/*
 * Enrollment sessions (issue 5), in memory: a crash mid-enrollment leaves nothing, because the
 * only write is the final PeopleService.createWithFaces, one unit of work.
 *
 * - guided: frames (REST uploads, or a camera's frames through the pipeline's observer seam) go
 *   through the GuidedCapture state machine; a candidate frame is embedded with liveness; when
 *   every angle is captured the session saves itself.
 * - scan: every frame is only detected; the ScanCoverage grid keeps the best frames per pose bin,
 *   and only those are embedded, at complete.
 * Either way, before saving: every capture must be the same person (consistency), the best
 * templates per pose are chosen, and createWithFaces searches the whole gallery for duplicates.
 * Sessions bound to a camera tell the clients over the EventBus (registration_start,
 * registration_angle_instruction, registration_angle_complete, registration_complete,
 * registration_failed) with the camera and track ids.
 */

export type EnrollmentMode = 'guided' | 'scan';
export type EnrollmentStatus = 'capturing' | 'saving' | 'complete' | 'failed' | 'cancelled';
export type EnrollmentFailureReason =
  | 'timeout'
  | 'cancelled'
  | 'left_area'
  | 'person_changed'
  | 'inconsistent'
  | 'duplicate'
  | 'planar_spoof'
  | 'no_usable_frames'
  | 'duplicate_external_id'
  | 'person_not_found'
  | 'internal_error';

export interface EnrollmentStart {
  mode: EnrollmentMode;
  /** A new person's data, or the id of an existing person to add templates to. */
  person?: NewPerson;
  personId?: string;
  /** Consume this camera's frames (guided capture from a browser stream or an ffmpeg camera). */
  cameraId?: string;
  /** With cameraId: the track to enroll (default: the only face in view when the first frame comes). */
  trackId?: string;
  /** Save even when the faces match someone else (admins only: the caller checks). */
  allowDuplicate?: boolean;
}

export interface EnrollmentTemplateView {
  id: string;
  pose: { label: string | null; yawDeg: number | null; pitchDeg: number | null; rollDeg: number | null };
  quality: number | null;
}

export interface GuidanceView {
  angle_name: string;
  instruction: string;
  angle_number: number;
  total_angles: number;
  progress: number;
  pose_error: { yaw: number; pitch: number } | null;
  /** What keeps the frame from being captured: no_face, several_faces, low_quality, off_pose, moving, holding, not_live, ready. */
  problem: string;
  /** Angles already captured. */
  angles_done: string[];
}

/** A session as GET /api/v1/enrollments/{id} shows it. */
export interface EnrollmentView {
  id: string;
  mode: EnrollmentMode;
  status: EnrollmentStatus;
  cameraId: string | null;
  trackId: string | null;
  /** The person being enrolled: the existing one, or the one created at the end. */
  personId: string | null;
  name: string | null;
  progress: number;
  framesReceived: number;
  /** Frames that showed exactly one good face (scan: landed in a bin; guided: were judged). */
  framesUsed: number;
  guidance: GuidanceView | null;
  coverage: ScanCoverageSummary | null;
  templates: EnrollmentTemplateView[];
  failure: { reason: EnrollmentFailureReason; message: string; duplicateOf?: string; similarity?: number } | null;
  /** Server time spent on this session's frames (detection, embedding, saving), ms. */
  computeMs: number;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
}

/** What a frame upload answers: the session after the frame, and what the frame showed. */
export interface FrameOutcome {
  session: EnrollmentView;
  frame: { faces: number; accepted: boolean; problem: string | null; pose: { yaw: number; pitch: number } | null; quality: number | null };
}

/** What the enrollment service needs of the camera pipeline. */
export interface EnrollmentCameras {
  observeFrames(cameraId: string, observer: FrameObserver): () => void;
  countRegistration(cameraId: string): void;
  /** The camera's live tracks. */
  tracks(cameraId: string): readonly { id: string }[];
}

/** Makes an augmented copy of a frame (src/vision/augment.ts). */
export type FrameAugmenter = (bytes: Uint8Array, kind: 'flip' | 'brighter' | 'darker' | 'blur') => Promise<Uint8Array>;

export interface EnrollmentServiceDeps {
  vision: Pick<VisionPool, 'analyze' | 'embedFaces'>;
  people: Pick<PeopleService, 'createWithFaces' | 'get'>;
  bus?: Pick<EventBus, 'emit' | 'subscribe'>;
  cameras?: EnrollmentCameras;
  decisions?: Pick<DecisionRegistry, 'register'>;
  config: EnrollmentConfig;
  /** Verification threshold (consistency default). */
  verifyThreshold: number;
  /** vision.livenessThreshold (default minimum liveness of a capture). */
  livenessThreshold: number;
  minFaceSizePx: number;
  storeThumbnails: boolean;
  /** Needed when config.augmentation is not empty. */
  augment?: FrameAugmenter;
  now?: () => number;
  log?: (message: string) => void;
}

interface KeptFrame {
  bytes: Uint8Array;
  face: AnalyzedFace;
}

interface Session {
  id: string;
  mode: EnrollmentMode;
  status: EnrollmentStatus;
  cameraId: string | null;
  trackId: string | null;
  person: NewPerson | null;
  personId: string | null;
  allowDuplicate: boolean;
  guided: GuidedCapture | null;
  /** Thumbnails of guided captures, by capture time. */
  thumbnails: Map<number, Uint8Array>;
  /** The frames of guided captures, by capture time (kept only for augmentation). */
  frames: Map<number, Uint8Array>;
  scan: ScanCoverage<KeptFrame> | null;
  framesReceived: number;
  framesUsed: number;
  lastGuidance: Guidance | null;
  lastEmitted: { angle: string; problem: string; yaw: number; pitch: number; atMs: number } | null;
  templates: EnrollmentTemplateView[];
  failure: EnrollmentView['failure'];
  /** The scan's coverage when it finished (its frames are let go). */
  frozenCoverage?: ScanCoverageSummary;
  computeMs: number;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** The time of the last frame judged: frame times are kept strictly increasing (two uploads may share a millisecond). */
  lastFrameAtMs: number;
  /** Frames of this session are processed one at a time, in order. */
  chain: Promise<unknown>;
  busy: boolean;
  detach: (() => void)[];
}

const round1 = (v: number): number => Math.round(v * 10) / 10;

/** The stored pose label of an angle or scan bin name ("front" is stored as "frontal", as uploads label it). */
export function templateLabel(name: string): string {
  return name === 'front' ? 'frontal' : name;
}

/** The quality verdict without the pose check: enrollment asks for turned poses on purpose. */
function passIgnoringPose(face: AnalyzedFace): { pass: boolean; reasons: string[] } {
  const failed = face.quality.checks.filter((c) => c.name !== 'pose' && !c.pass);
  return { pass: failed.length === 0, reasons: failed.map((c) => c.reason ?? c.name) };
}

function observedFace(face: AnalyzedFace): ObservedFace {
  const q = passIgnoringPose(face);
  return {
    box: face.box,
    pose: face.pose,
    sizePx: face.quality.sizePx,
    qualityScore: face.quality.score,
    qualityPass: q.pass,
    qualityReasons: q.reasons,
    landmarks5: face.landmarks5,
    ...(face.landmarks ? { landmarks: face.landmarks } : {}),
  };
}

function notFound(id: string): AppError {
  return new AppError('enrollment_not_found', 404, `no enrollment ${id}`, { id });
}

export class EnrollmentService {
  private readonly sessions = new Map<string, Session>();
  private readonly now: () => number;
  private readonly log: (message: string) => void;
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(private readonly deps: EnrollmentServiceDeps) {
    this.now = deps.now ?? Date.now;
    this.log = deps.log ?? (() => undefined);
    this.timer = setInterval(() => this.sweep(), 500);
    this.timer.unref();
    if (deps.decisions) this.unsubscribe.push(deps.decisions.register({ onDecision: (d) => this.onDecision(d) }));
    if (deps.bus) {
      this.unsubscribe.push(
        deps.bus.subscribe(
          (event) => {
            if (event.type === 'person_left_area') this.onLeft(event.camera_id, event.track_id);
          },
          { types: ['person_left_area'] },
        ),
      );
    }
  }

  private get minLiveness(): number {
    return this.deps.config.minLiveness ?? this.deps.livenessThreshold;
  }

  private get consistencyMin(): number {
    return this.deps.config.consistencyMinSimilarity ?? this.deps.verifyThreshold;
  }

  /** Starts an enrollment; 409 enrollment_running when the camera already has one, 503 when too many run. */
  async start(input: EnrollmentStart): Promise<EnrollmentView> {
    if (this.closed) throw new AppError('shutting_down', 503, 'the server is shutting down');
    if (!input.person === !input.personId) throw new AppError('validation_failed', 400, 'give either the person data or personId');
    if (input.trackId !== undefined && input.cameraId === undefined) throw new AppError('validation_failed', 400, 'trackId needs cameraId');
    let existingName: string | null = null;
    if (input.personId) existingName = (await this.deps.people.get(input.personId)).name;
    const active = [...this.sessions.values()].filter((s) => s.status === 'capturing' || s.status === 'saving');
    if (input.cameraId !== undefined) {
      const running = active.find((s) => s.cameraId === input.cameraId);
      if (running) throw new AppError('enrollment_running', 409, `camera ${input.cameraId} already has an enrollment under way`, { enrollmentId: running.id });
      if (!this.deps.cameras) throw new AppError('cameras_unavailable', 409, 'camera enrollment is not available on this server');
    }
    if (active.length >= this.deps.config.maxSessions) throw new AppError('too_many_enrollments', 503, `${active.length} enrollments are under way; try again later`);
    const now = this.now();
    const { config } = this.deps;
    const session: Session = {
      id: randomUUID(),
      mode: input.mode,
      status: 'capturing',
      cameraId: input.cameraId ?? null,
      trackId: input.trackId ?? null,
      person: input.person ?? null,
      personId: input.personId ?? null,
      allowDuplicate: input.allowDuplicate === true,
      guided:
        input.mode === 'guided'
          ? new GuidedCapture(
              {
                angles: config.angles,
                framesPerAngle: config.framesPerAngle,
                holdMs: config.holdMs,
                maxPoseStepDeg: config.maxPoseStepDeg,
                minLiveness: this.minLiveness,
                consistencyMinSimilarity: this.consistencyMin,
                timeoutMs: config.timeoutMs,
              },
              now,
            )
          : null,
      thumbnails: new Map(),
      frames: new Map(),
      scan: input.mode === 'scan' ? new ScanCoverage<KeptFrame>(config.scan) : null,
      framesReceived: 0,
      framesUsed: 0,
      lastGuidance: null,
      lastEmitted: null,
      templates: [],
      failure: null,
      computeMs: 0,
      createdAt: now,
      updatedAt: now,
      finishedAt: null,
      lastFrameAtMs: 0,
      chain: Promise.resolve(),
      busy: false,
      detach: [],
    };
    if (existingName !== null && session.person === null) session.person = { name: existingName };
    this.sessions.set(session.id, session);
    if (session.cameraId !== null) {
      this.emit(session, 'registration_start', {});
      if (session.guided) this.emitInstruction(session, this.firstGuidance(session), true);
      session.detach.push(this.deps.cameras!.observeFrames(session.cameraId, (observed) => this.onCameraFrame(session, observed.frame.bytes, observed.frame.receivedAtMs, observed.analysis, observed.trackIds)));
    }
    return this.view(session);
  }

  get(id: string): EnrollmentView {
    const session = this.sessions.get(id);
    if (!session) throw notFound(id);
    return this.view(session);
  }

  /** Enrollments under way and recently finished, newest first. */
  list(): EnrollmentView[] {
    return [...this.sessions.values()].sort((a, b) => b.createdAt - a.createdAt).map((s) => this.view(s));
  }

  /** Counts by status, for system status. */
  counts(): Record<EnrollmentStatus, number> {
    const counts: Record<EnrollmentStatus, number> = { capturing: 0, saving: 0, complete: 0, failed: 0, cancelled: 0 };
    for (const s of this.sessions.values()) counts[s.status]++;
    return counts;
  }

  /** Processes one uploaded frame (JPEG/PNG bytes); answers once it is judged. */
  async addFrame(id: string, bytes: Uint8Array): Promise<FrameOutcome> {
    const session = this.sessions.get(id);
    if (!session) throw notFound(id);
    this.assertCapturing(session);
    if (session.cameraId !== null) throw new AppError('enrollment_on_camera', 409, `enrollment ${id} takes its frames from camera ${session.cameraId}`);
    if (session.scan && session.framesReceived >= this.deps.config.scan.maxFrames) {
      throw new AppError('too_many_frames', 409, `a scan takes at most ${this.deps.config.scan.maxFrames} frames; complete it`);
    }
    session.framesReceived++;
    const run = session.chain.then(async () => {
      this.assertCapturing(session);
      const started = performance.now();
      try {
        // The landmark-fit pose, as camera frames get: ≈15× cheaper than the accurate one, and frames come by the hundred.
        const analysis = await this.deps.vision.analyze(bytes, { embed: 'none', liveness: false, pose: 'fast' });
        return await this.judge(session, bytes, this.now(), analysis, null);
      } finally {
        session.computeMs += performance.now() - started;
      }
    });
    session.chain = run.catch(() => undefined);
    const frame = await run;
    return { session: this.view(session), frame };
  }

  /** Ends a scan (embeds its best frames and saves); for guided capture, answers once it has saved itself. */
  async complete(id: string): Promise<EnrollmentView> {
    const session = this.sessions.get(id);
    if (!session) throw notFound(id);
    await session.chain;
    if (session.status === 'complete') return this.view(session);
    this.assertCapturing(session);
    if (session.guided) {
      throw new AppError('enrollment_incomplete', 409, `guided capture is at angle ${session.guided.angleNumber} of ${this.deps.config.angles.length}; it completes by itself`, {
        progress: session.guided.progress,
      });
    }
    const summary = session.scan!.summary();
    const frontal = session.scan!.kept().some((k) => k.label === 'front');
    if (summary.coveredBins < this.deps.config.scan.minCoveredBins || !frontal) {
      throw new AppError(
        'insufficient_coverage',
        409,
        `the scan covers ${summary.coveredBins} pose bins${frontal ? '' : ' without the frontal one'}; at least ${this.deps.config.scan.minCoveredBins} with the frontal one are needed: keep turning the head`,
        { coveredBins: summary.coveredBins, needed: this.deps.config.scan.minCoveredBins, frontal },
      );
    }
    const run = session.chain.then(() => this.saveScan(session));
    session.chain = run.catch(() => undefined);
    await run;
    return this.view(session);
  }

  /** Cancels an enrollment under way (nothing is saved); 409 when it already finished. */
  async cancel(id: string): Promise<EnrollmentView> {
    const session = this.sessions.get(id);
    if (!session) throw notFound(id);
    if (session.status !== 'capturing') {
      throw new AppError('enrollment_finished', 409, `enrollment ${id} is ${session.status}`, { status: session.status });
    }
    this.finishFailed(session, 'cancelled', 'the enrollment was cancelled');
    return this.view(session);
  }

  /** Cancels the enrollment under way on a camera (the WebSocket registration_cancel message); null when there is none. */
  cancelOnCamera(cameraId: string): EnrollmentView | null {
    const session = [...this.sessions.values()].find((s) => s.cameraId === cameraId && s.status === 'capturing');
    if (!session) return null;
    this.finishFailed(session, 'cancelled', 'the enrollment was cancelled');
    return this.view(session);
  }

  /** The camera a single enrollment runs on, when exactly one camera enrollment is under way. */
  camerasEnrolling(): string[] {
    return [...this.sessions.values()].filter((s) => s.cameraId !== null && s.status === 'capturing').map((s) => s.cameraId!);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const off of this.unsubscribe.splice(0)) off();
    for (const session of this.sessions.values()) {
      if (session.status === 'capturing') this.finishFailed(session, 'cancelled', 'the server is shutting down');
    }
    await Promise.allSettled([...this.sessions.values()].map((s) => s.chain));
  }

  // ---- frames ----

  private onCameraFrame(session: Session, bytes: Uint8Array, atMs: number, analysis: AnalyzeResult, trackIds: readonly (string | null)[]): void {
    if (session.status !== 'capturing' || session.busy) return;
    // Bind to the only face in view when no track was named.
    const usable = analysis.faces.map((f, i) => ({ f, track: trackIds[i] ?? null })).filter((x) => x.f.quality.sizePx >= this.deps.minFaceSizePx);
    if (session.trackId === null && usable.length === 1 && usable[0]!.track !== null) {
      session.trackId = usable[0]!.track;
      this.emit(session, 'registration_start', {});
    }
    session.framesReceived++;
    session.busy = true;
    const run = session.chain.then(async () => {
      if (session.status !== 'capturing') return;
      const started = performance.now();
      try {
        await this.judge(session, bytes, atMs, analysis, trackIds);
      } finally {
        session.computeMs += performance.now() - started;
      }
    });
    session.chain = run
      .catch((err: unknown) => this.log(`enrollment ${session.id}: a camera frame failed: ${(err as Error).message}`))
      .finally(() => {
        session.busy = false;
      });
  }

  /** Judges one analysed frame for the session; returns what the frame showed. */
  private async judge(session: Session, bytes: Uint8Array, frameAtMs: number, analysis: AnalyzeResult, trackIds: readonly (string | null)[] | null): Promise<FrameOutcome['frame']> {
    session.updatedAt = this.now();
    const atMs = Math.max(frameAtMs, session.lastFrameAtMs + 1);
    session.lastFrameAtMs = atMs;
    const usable = analysis.faces.filter((f) => f.quality.sizePx >= this.deps.minFaceSizePx);
    // On a camera the enrolled track must be in view; another face next to it still spoils the frame.
    const mine = trackIds && session.trackId !== null ? analysis.faces.find((_, i) => trackIds[i] === session.trackId) : undefined;
    const face = usable.length === 1 ? usable[0]! : undefined;
    const described = (accepted: boolean, problem: string | null, f?: AnalyzedFace): FrameOutcome['frame'] => ({
      faces: usable.length,
      accepted,
      problem,
      pose: f ? { yaw: round1(f.pose.yawDeg), pitch: round1(f.pose.pitchDeg) } : null,
      quality: f ? Math.round(f.quality.score * 1000) / 1000 : null,
    });
    if (trackIds && session.trackId !== null && !mine) return described(false, 'no_face');

    if (session.scan) {
      if (!face) return described(false, usable.length === 0 ? 'no_face' : 'several_faces');
      const q = passIgnoringPose(face);
      if (!q.pass) return described(false, 'low_quality', face);
      session.framesUsed++;
      const offered = session.scan.offer(face.pose, face.quality.score, { bytes, face });
      return described(offered.kept, offered.bin === null ? 'outside_grid' : null, face);
    }

    const guided = session.guided!;
    const observation: FrameObservation = { atMs, faces: usable.map(observedFace) };
    const step = guided.observe(observation);
    if (step.kind === 'failed') {
      this.finishFailed(session, step.reason, step.reason === 'timeout' ? 'the enrollment timed out' : 'the capture failed');
      return described(false, step.reason, face);
    }
    session.framesUsed++;
    session.lastGuidance = step.guidance;
    if (step.kind === 'guide') {
      this.emitInstruction(session, step.guidance);
      return described(false, step.guidance.problem, face);
    }
    return this.captureCandidate(session, bytes, step.candidate, face!, described);
  }

  private async captureCandidate(
    session: Session,
    bytes: Uint8Array,
    candidate: CaptureCandidate,
    face: AnalyzedFace,
    described: (accepted: boolean, problem: string | null, f?: AnalyzedFace) => FrameOutcome['frame'],
  ): Promise<FrameOutcome['frame']> {
    const guided = session.guided!;
    const embedded = await this.deps.vision.embedFaces(bytes, [face], { liveness: true, alignedThumbnails: this.deps.storeThumbnails });
    const result = embedded.faces[0];
    if (!result || session.status !== 'capturing') return described(false, 'not_captured', face);
    const accepted = guided.accept(candidate, result.embedding.vector, result.liveness ?? null);
    if (accepted.kind === 'failed') {
      const message =
        accepted.reason === 'person_changed'
          ? `the face changed: this capture matches the earlier ones at ${accepted.similarity?.toFixed(3) ?? '?'}, below ${this.consistencyMin}`
          : 'the capture failed';
      this.finishFailed(session, accepted.reason, message);
      return described(false, accepted.reason, face);
    }
    if (accepted.kind === 'rejected') {
      session.lastGuidance = accepted.guidance;
      this.emitInstruction(session, accepted.guidance);
      return described(false, accepted.reason, face);
    }
    this.modelIdOf ??= result.embedding.modelId;
    if (result.alignedJpeg) session.thumbnails.set(candidate.atMs, result.alignedJpeg);
    if (this.deps.config.augmentation.length > 0) session.frames.set(candidate.atMs, bytes);
    if (accepted.kind === 'captured') {
      session.lastGuidance = accepted.guidance;
      this.emitInstruction(session, accepted.guidance, true);
      return described(true, null, face);
    }
    this.emit(session, 'registration_angle_complete', {
      angle_name: accepted.angle.name,
      progress: accepted.progress,
      message: `${accepted.angle.name} captured successfully`,
    });
    if (accepted.next) {
      session.lastGuidance = accepted.next;
      this.emitInstruction(session, accepted.next, true);
      return described(true, null, face);
    }
    session.lastGuidance = null;
    await this.saveGuided(session);
    return described(true, null, face);
  }

  /** The embedding model of the captures (all come from the one engine). */
  private modelIdOf: string | undefined;

  // ---- saving ----

  private async saveGuided(session: Session): Promise<void> {
    const guided = session.guided!;
    const captures = guided.captured;
    if (this.deps.config.minParallax > 0) {
      const assessed = assessParallax(captures.map((c) => ({ yawDeg: c.pose.yawDeg, pitchDeg: c.pose.pitchDeg, landmarks5: c.landmarks5, ...(c.landmarks ? { landmarks: c.landmarks } : {}) })));
      if (assessed.parallax !== null && assessed.parallax < this.deps.config.minParallax) {
        guided.fail('planar_spoof');
        this.finishFailed(
          session,
          'planar_spoof',
          `the face moved like a flat picture, not a head (parallax ${assessed.parallax.toFixed(4)} < ${this.deps.config.minParallax})`,
        );
        return;
      }
    }
    const candidates = captures.map((c) => ({
      label: templateLabel(c.angleName),
      qualityScore: c.qualityScore,
      embedding: c.embedding,
      pose: c.pose,
      thumbnail: session.thumbnails.get(c.atMs) ?? null,
      bytes: session.frames.get(c.atMs),
    }));
    await this.save(session, candidates);
  }

  private async saveScan(session: Session): Promise<void> {
    this.assertCapturing(session);
    session.status = 'saving';
    const started = performance.now();
    const kept = session.scan!.kept();
    let embedded;
    try {
      embedded = await Promise.all(
        kept.map((k) => this.deps.vision.embedFaces(k.item.bytes, [k.item.face], { liveness: true, alignedThumbnails: this.deps.storeThumbnails })),
      );
    } catch (err) {
      session.computeMs += performance.now() - started;
      session.status = 'capturing';
      throw err;
    }
    session.computeMs += performance.now() - started;
    const candidates = kept.flatMap((k, i) => {
      const e = embedded[i]!.faces[0];
      if (!e) return [];
      if (e.liveness !== undefined && e.liveness < this.minLiveness) return [];
      this.modelIdOf ??= e.embedding.modelId;
      return [{ label: templateLabel(k.label), qualityScore: k.quality, embedding: e.embedding.vector, pose: k.pose, thumbnail: e.alignedJpeg ?? null, bytes: k.item.bytes }];
    });
    if (candidates.length === 0) {
      this.finishFailed(session, 'no_usable_frames', 'no kept frame passed the liveness check');
      return;
    }
    const screening = screenCaptures(
      candidates.map((c) => c.embedding),
      this.consistencyMin,
    );
    if (screening.kind === 'inconsistent') {
      this.finishFailed(
        session,
        'inconsistent',
        `${screening.outliers.length} of ${candidates.length} kept frames show ${screening.secondPerson ? 'another person' : 'someone else'} (similarity down to ${screening.minSimilarity.toFixed(3)}, below ${this.consistencyMin})`,
      );
      return;
    }
    await this.save(
      session,
      screening.keep.map((i) => candidates[i]!),
    );
  }

  private async save(
    session: Session,
    candidates: { label: string; qualityScore: number; embedding: Float32Array; pose: HeadPose; thumbnail: Uint8Array | null; bytes?: Uint8Array | undefined }[],
  ): Promise<void> {
    session.status = 'saving';
    const started = performance.now();
    const chosen = selectTemplates(candidates, this.deps.config.templatesPerPose);
    const modelId = this.modelIdOf!;
    const faces: NewFace[] = chosen.map((c) => ({
      embedding: { vector: c.embedding, modelId },
      pose: { label: c.label, yawDeg: round1(c.pose.yawDeg), pitchDeg: round1(c.pose.pitchDeg), rollDeg: round1(c.pose.rollDeg) },
      quality: Math.round(c.qualityScore * 1000) / 1000,
      thumbnail: c.thumbnail,
    }));
    let result: CreateWithFacesResult;
    try {
      faces.push(...(await this.augmented(chosen, modelId)));
      result = await this.deps.people.createWithFaces(session.personId !== null ? { personId: session.personId } : { person: session.person! }, faces, {
        source: 'enrollment',
        allowDuplicate: session.allowDuplicate,
      });
    } catch (err) {
      session.computeMs += performance.now() - started;
      if (err instanceof AppError && (err.code === 'duplicate_external_id' || err.code === 'person_not_found')) {
        this.finishFailed(session, err.code, err.message);
        return;
      }
      this.log(`enrollment ${session.id}: saving failed: ${(err as Error).message}`);
      this.finishFailed(session, 'internal_error', 'saving the enrollment failed; nothing was saved');
      return;
    }
    session.computeMs += performance.now() - started;
    if (result.status === 'refused') {
      this.finishFailed(session, 'duplicate', `already enrolled: ${result.message}`, { duplicateOf: result.duplicateOf, similarity: result.similarity });
      return;
    }
    session.personId = result.person.id;
    session.person = { name: result.person.name };
    session.templates = result.templates.map((t) => ({ id: t.id, pose: t.pose, quality: t.quality }));
    session.status = 'complete';
    session.finishedAt = this.now();
    session.updatedAt = session.finishedAt;
    this.release(session);
    if (session.cameraId !== null) {
      this.deps.cameras?.countRegistration(session.cameraId);
      this.emit(session, 'registration_complete', {
        person_id: result.person.id,
        name: result.person.name,
        message: `Registration complete: ${result.person.name}`,
      });
    }
  }

  /** Extra templates from augmented copies of the chosen frames (config.augmentation; off by default). */
  private async augmented(chosen: readonly { label: string; pose: HeadPose; bytes?: Uint8Array | undefined }[], modelId: string): Promise<NewFace[]> {
    const kinds = this.deps.config.augmentation;
    const augment = this.deps.augment;
    if (kinds.length === 0 || !augment) return [];
    const faces: NewFace[] = [];
    for (const c of chosen) {
      if (!c.bytes) continue;
      for (const kind of kinds) {
        const analysis = await this.deps.vision.analyze(await augment(c.bytes, kind), { embed: 'largest', liveness: false, pose: 'fast' });
        const face = analysis.faces.find((f) => f.embedding?.modelId === modelId);
        if (!face?.embedding) continue;
        // A mirrored face is turned the other way.
        const flip = kind === 'flip';
        const label = flip ? ({ left: 'right', right: 'left' } as Record<string, string>)[c.label] ?? c.label : c.label;
        faces.push({
          embedding: face.embedding,
          pose: { label, yawDeg: round1(flip ? -c.pose.yawDeg : c.pose.yawDeg), pitchDeg: round1(c.pose.pitchDeg), rollDeg: round1(flip ? -c.pose.rollDeg : c.pose.rollDeg) },
          quality: Math.round(face.quality.score * 1000) / 1000,
        });
      }
    }
    return faces;
  }

  // ---- endings ----

  private finishFailed(session: Session, reason: EnrollmentFailureReason, message: string, duplicate?: { duplicateOf: string; similarity: number }): void {
    if (session.status === 'complete' || session.status === 'failed' || session.status === 'cancelled') return;
    session.status = reason === 'cancelled' ? 'cancelled' : 'failed';
    session.failure = { reason, message, ...duplicate };
    session.finishedAt = this.now();
    session.updatedAt = session.finishedAt;
    this.release(session);
    this.emit(session, 'registration_failed', {
      reason,
      message: `Registration failed: ${message}`,
      ...(duplicate ? { duplicate_of: duplicate.duplicateOf } : {}),
    });
  }

  /** Drops what a finished session holds (frames, observers). */
  private release(session: Session): void {
    for (const off of session.detach.splice(0)) off();
    session.thumbnails.clear();
    session.frames.clear();
    if (session.scan) {
      // Keep the coverage summary for GET, not the frames.
      const summary = session.scan.summary();
      session.scan = null;
      session.frozenCoverage = summary;
    }
  }

  private sweep(): void {
    const now = this.now();
    const { timeoutMs, idleTimeoutMs, keepFinishedMs } = this.deps.config;
    for (const session of [...this.sessions.values()]) {
      if (session.status === 'capturing') {
        if (now - session.createdAt > timeoutMs || now - session.updatedAt > idleTimeoutMs) {
          session.guided?.tick(now);
          this.finishFailed(session, 'timeout', now - session.createdAt > timeoutMs ? `not finished within ${timeoutMs} ms` : `no frame for ${idleTimeoutMs} ms`);
        }
      } else if (session.finishedAt !== null && now - session.finishedAt > keepFinishedMs) {
        this.sessions.delete(session.id);
      }
    }
  }

  private onLeft(cameraId: string, trackId: string | null): void {
    for (const session of this.sessions.values()) {
      if (session.cameraId === cameraId && session.status === 'capturing' && session.trackId !== null && session.trackId === trackId) {
        this.finishFailed(session, 'left_area', 'the person left the camera view');
      }
    }
  }

  /** "Yes, register" for an unknown track: guided capture of that track, for a person named later (PATCH). */
  private async onDecision(decision: RegistrationDecision): Promise<void> {
    if (!decision.register) return;
    // Only a track the camera still follows can be captured (a decision may come after it left, or be about an event no camera made).
    const live = decision.trackId !== null && this.deps.cameras?.tracks(decision.cameraId).some((t) => t.id === decision.trackId);
    if (!live) {
      this.log(`enrollment: "register" for camera ${decision.cameraId} track ${decision.trackId ?? '-'}, which is not in view: nothing to capture`);
      return;
    }
    const stamp = new Date(this.now()).toISOString().slice(0, 16).replace('T', ' ');
    try {
      await this.start({
        mode: 'guided',
        person: { name: `Unknown ${stamp}`, metadata: { enrolledFrom: 'unknown_person', cameraId: decision.cameraId } },
        cameraId: decision.cameraId,
        ...(decision.trackId !== null ? { trackId: decision.trackId } : {}),
      });
    } catch (err) {
      const message = err instanceof AppError ? err.message : 'the enrollment could not start';
      this.deps.bus?.emit('registration_failed', { camera_id: decision.cameraId, track_id: decision.trackId, reason: err instanceof AppError ? err.code : 'internal_error', message });
      if (!(err instanceof AppError)) throw err;
    }
  }

  // ---- events and views ----

  private emit<K extends FacegateEventName>(session: Session, type: K, payload: Omit<EmitInput<K>, 'camera_id' | 'track_id'>): void {
    if (session.cameraId === null || !this.deps.bus) return;
    try {
      this.deps.bus.emit(type, { ...payload, camera_id: session.cameraId, track_id: session.trackId } as EmitInput<K>);
    } catch (err) {
      this.log(`enrollment ${session.id}: could not emit ${type}: ${(err as Error).message}`);
    }
  }

  private firstGuidance(session: Session): Guidance {
    const angle = session.guided!.currentAngle!;
    return { angle, angleNumber: 1, totalAngles: this.deps.config.angles.length, progress: 0, poseError: null, problem: 'no_face' };
  }

  /** Sends the instruction when it says something new: another angle or problem, or the pose error moved ≥ 3°, or 1 s passed. */
  private emitInstruction(session: Session, guidance: Guidance, force = false): void {
    if (session.cameraId === null) return;
    const now = this.now();
    const yaw = guidance.poseError?.yaw ?? 0;
    const pitch = guidance.poseError?.pitch ?? 0;
    const last = session.lastEmitted;
    const changed =
      force ||
      !last ||
      last.angle !== guidance.angle.name ||
      last.problem !== guidance.problem ||
      Math.abs(last.yaw - yaw) >= 3 ||
      Math.abs(last.pitch - pitch) >= 3 ||
      now - last.atMs >= 1000;
    if (!changed) return;
    session.lastEmitted = { angle: guidance.angle.name, problem: guidance.problem, yaw, pitch, atMs: now };
    this.emit(session, 'registration_angle_instruction', {
      angle_name: guidance.angle.name,
      instruction: guidance.angle.instruction,
      angle_number: guidance.angleNumber,
      total_angles: guidance.totalAngles,
      progress: guidance.progress,
      pose_error: { yaw, pitch },
      message: `Please ${guidance.angle.instruction.charAt(0).toLowerCase()}${guidance.angle.instruction.slice(1)}`,
    });
  }

  private assertCapturing(session: Session): void {
    if (session.status !== 'capturing') {
      throw new AppError('enrollment_finished', 409, `enrollment ${session.id} is ${session.status}`, {
        status: session.status,
        ...(session.failure ? { reason: session.failure.reason } : {}),
      });
    }
  }

  private view(session: Session): EnrollmentView {
    const guided = session.guided;
    const g = session.lastGuidance ?? (guided?.status === 'capturing' ? this.firstGuidance(session) : null);
    const progress =
      session.status === 'complete' ? 100 : guided ? guided.progress : Math.round((session.scan?.summary() ?? session.frozenCoverage)?.coverage ?? 0);
    return {
      id: session.id,
      mode: session.mode,
      status: session.status,
      cameraId: session.cameraId,
      trackId: session.trackId,
      personId: session.personId,
      name: session.person?.name ?? null,
      progress,
      framesReceived: session.framesReceived,
      framesUsed: session.framesUsed,
      guidance:
        guided && g && session.status === 'capturing'
          ? {
              angle_name: g.angle.name,
              instruction: g.angle.instruction,
              angle_number: g.angleNumber,
              total_angles: g.totalAngles,
              progress: guided.progress,
              pose_error: g.poseError,
              problem: g.problem,
              angles_done: [...new Set(guided.captured.map((c) => c.angleName))].filter((name) => guided.captured.filter((c) => c.angleName === name).length >= this.deps.config.framesPerAngle),
            }
          : null,
      coverage: session.scan?.summary() ?? session.frozenCoverage ?? null,
      templates: session.templates,
      failure: session.failure,
      computeMs: Math.round(session.computeMs),
      createdAt: session.createdAt,
      updatedAt: session.updatedAt,
      expiresAt: session.finishedAt !== null ? session.finishedAt + this.deps.config.keepFinishedMs : session.createdAt + this.deps.config.timeoutMs,
    };
  }
}
