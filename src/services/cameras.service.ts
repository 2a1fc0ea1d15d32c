import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CAMERA_ID_PATTERN, type CameraConfig, type Config } from '../config/config.ts';
import { AppError } from '../domain/errors.ts';
import { checkCameraUrl, checkVideoDevice, describeInput, resolveVideoFile, type CameraKind, type FfmpegInput } from '../sources/camera-input.ts';
import { probeFfmpeg } from '../sources/ffmpeg-probe.ts';
import { FfmpegSource, type SourceState } from '../sources/ffmpeg-source.ts';
import { FpsMeter } from '../sources/fps-meter.ts';
import type { Frame, FramePipeline } from '../sources/frame.ts';
import type { CameraRecord, CamerasRepository, NewCamera } from '../store/index.ts';

/*
 * Cameras: their definitions (config.cameras, rewritten at every start, and POST /api/v1/cameras,
 * kept in the store), the ffmpeg sources reading the server-side ones, and the WebSocket streams
 * feeding the push ones. Every camera's frames go to the pipeline, which keeps the newest per
 * camera and processes at most its maxFps.
 *
 * Push cameras: a stream to an unknown camera id creates a transient push camera (listed while a
 * client streams, never stored) unless sources.stream.autoCreatePushCameras is false, in which
 * case push cameras are registered first. One client streams a push camera at a time: a newer
 * connection replaces the older one (a kiosk reloading its page must not be locked out by its own
 * half-dead socket), which is told so (code "replaced") and closed.
 */

/** stopped/starting/running/error/reconnecting/ended/unavailable as the ffmpeg source has them; `idle` = an enabled push camera no client streams to. */
export type CameraState = SourceState | 'idle';

export interface CameraStats {
  /** Frames the source produced (ffmpeg) or the client sent and the server accepted (push). */
  framesIn: number;
  /** Frames lost before processing: in the source (broken ffmpeg output, rate-limited or refused messages) plus those the pipeline dropped (replaced by a newer one, stale, overloaded). */
  framesDropped: number;
  /** Frames fully processed by the pipeline. */
  framesProcessed: number;
  /** Frames per second out of the source over the last few seconds. */
  fps: number;
  /** Frames per second the pipeline processes. */
  processingFps: number;
}

export interface CameraView {
  id: string;
  name: string;
  kind: CameraKind;
  /** The URL (credentials hidden), device or file path; null for push cameras. */
  source: string | null;
  /** The rate in force, frames per second; null = no limit. */
  maxFps: number | null;
  /** Should run: ffmpeg cameras start at boot, push cameras accept streams. */
  enabled: boolean;
  loop: boolean;
  /** config = config.cameras, api = POST /api/v1/cameras, transient = a push camera created by a stream. */
  origin: 'config' | 'api' | 'transient';
  state: CameraState;
  /** When the state was entered, epoch ms. */
  since: number;
  lastError: string | null;
  stats: CameraStats;
  /** ffmpeg cameras: the process and its recent stderr. */
  ffmpeg: { pid: number | null; failures: number; nextRetryAt: number | null; stderrTail: string[] } | null;
  /** push cameras: the streaming client. */
  stream: { connected: boolean; connectedAt: number | null; remoteAddress: string | null; rateLimited: number; rejected: number } | null;
  /** Several nodes (issue 9): the node the camera is assigned to (null = any) and the node running it now (ffmpeg cameras; null = none). */
  node: { assigned: string | null; runningOn: string | null };
}

export interface NewCameraInput {
  id?: string;
  name: string;
  kind: CameraKind;
  url?: string;
  device?: string;
  path?: string;
  maxFps?: number;
  /** Start it now and at every boot (default true). */
  autoStart?: boolean;
  loop?: boolean;
  /** Several nodes: the node that runs it (null or absent = any). */
  node?: string | null;
}

/**
 * Which node runs which ffmpeg camera when several nodes share one PostgreSQL (issue 9; leases
 * in the database, src/cluster). Absent = this node runs every camera (one node).
 */
export interface CameraOwnership {
  readonly nodeId: string;
  /** True when this node holds the camera's lease now. */
  owns(cameraId: string): boolean;
  /** The node holding the camera's lease, null when none does. */
  holder(cameraId: string): string | null;
  /** Look at the leases soon (a camera was created, assigned or started). */
  wake(): void;
}

/** The pipeline as cameras need it (CameraPipeline is one). */
export interface CamerasPipeline extends FramePipeline {
  configureCamera(cameraId: string, options: { maxFps?: number | null }): void;
  removeCamera(cameraId: string): Promise<void>;
  stats(cameraId?: string): ReadonlyArray<{ framesDropped: number; framesProcessed: number; processingFps: number }>;
}

export interface CamerasServiceDeps {
  cameras: CamerasRepository;
  pipeline: CamerasPipeline;
  config: Pick<Config, 'dataDir' | 'sources' | 'cameras' | 'realtime' | 'vision'>;
  log?: (message: string) => void;
  ownership?: CameraOwnership;
}

/** Why a push stream was ended by the server. */
export type EvictionCode = 'replaced' | 'camera_stopped' | 'camera_deleted' | 'server_closing';

/** A client's WebSocket stream to a push camera, as the stream route holds it. */
export interface PushStream {
  readonly cameraId: string;
  /** Offers an accepted image to the pipeline. */
  offer(bytes: Uint8Array, meta?: { frameId?: string | number; clientTimestamp?: number }): void;
  /** Counts a message dropped by the rate limit or refused as malformed. */
  countDropped(reason: 'rate_limited' | 'rejected'): void;
  /** The client went away: releases the camera (a transient camera disappears). */
  close(): void;
}

interface Streamer {
  handle: PushStream;
  connectedAt: number;
  remoteAddress: string | null;
  evict: (code: EvictionCode, message: string) => void;
}

interface CameraEntry {
  record: CameraRecord & { transient?: boolean };
  source?: FfmpegSource;
  /** The input the source was built for (JSON), to rebuild it when that changed. */
  sourceInput?: string;
  /** Why the camera cannot start (its file left the allowed roots…), until the next start. */
  blockedReason: string | null;
  blockedSince: number;
  streamer?: Streamer;
  push: { framesIn: number; rateLimited: number; rejected: number; seq: number; fps: FpsMeter; idleSince: number };
}

const FFMPEG_KINDS: readonly CameraKind[] = ['rtsp', 'mjpeg', 'v4l2', 'file'];
const FIELD_OF: Record<CameraKind, 'url' | 'device' | 'path' | null> = { rtsp: 'url', mjpeg: 'url', v4l2: 'device', file: 'path', push: null };

function isFfmpegKind(kind: CameraKind): boolean {
  return FFMPEG_KINDS.includes(kind);
}

function notFound(id: string): AppError {
  return new AppError('camera_not_found', 404, `no camera ${id}`);
}

/** A camera id from a name: lower case, [a-z0-9-], at most 48 characters. */
function slugify(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48)
    .replace(/-+$/, '');
}

export class CamerasService {
  private readonly entries = new Map<string, CameraEntry>();
  private readonly log: (message: string) => void;
  private closed = false;

  constructor(private readonly deps: CamerasServiceDeps) {
    this.log = deps.log ?? (() => undefined);
  }

  /** True when this node should run the camera: always with one node, else when it holds the lease. */
  private owns(cameraId: string): boolean {
    return this.deps.ownership?.owns(cameraId) ?? true;
  }

  /**
   * Several nodes (issue 9): brings this node in line with the store and the leases. Cameras
   * created, changed or deleted by another node are picked up; owned enabled ffmpeg cameras are
   * started, and those whose lease went to another node (or ran out) are stopped.
   */
  async reconcile(): Promise<void> {
    if (this.closed) return;
    const records = await this.deps.cameras.list();
    const stored = new Set(records.map((r) => r.id));
    for (const record of records) {
      const entry = this.entries.get(record.id);
      if (!entry) this.addEntry(record);
      else if (!entry.record.transient) {
        if (record.updatedAt !== entry.record.updatedAt) this.deps.pipeline.configureCamera(record.id, { maxFps: record.maxFps });
        entry.record = record;
      }
    }
    for (const [id, entry] of this.entries) {
      if (entry.record.transient || stored.has(id)) continue;
      this.entries.delete(id);
      await entry.source?.stop();
      await this.deps.pipeline.removeCamera(id);
    }
    for (const entry of this.entries.values()) {
      if (!isFfmpegKind(entry.record.kind)) continue;
      const shouldRun = entry.record.enabled && this.owns(entry.record.id);
      if (shouldRun && !entry.source?.active) {
        try {
          await this.startEntry(entry);
          this.log(`camera ${entry.record.id}: started on this node`);
        } catch (err) {
          this.log(`camera ${entry.record.id} did not start: ${(err as Error).message}`);
        }
      } else if (!shouldRun && entry.source?.active) {
        await entry.source.stop();
        this.log(`camera ${entry.record.id}: stopped on this node (${entry.record.enabled ? 'another node runs it' : 'disabled'})`);
      }
    }
  }

  /** Folders file cameras may read from. */
  get allowedFileRoots(): string[] {
    return (this.deps.config.sources.allowedFileRoots ?? [join(this.deps.config.dataDir, 'videos')]).map((r) => resolve(r));
  }

  /**
   * At boot: writes config.cameras into the store (dropping config cameras no longer configured),
   * loads every camera and starts the enabled ffmpeg ones. A camera that cannot start is logged
   * and shown with its error; the server runs on.
   */
  async start(): Promise<void> {
    if (this.deps.config.sources.allowedFileRoots === undefined) mkdirSync(this.allowedFileRoots[0]!, { recursive: true });
    const configured = new Set<string>();
    for (const camera of this.deps.config.cameras) {
      configured.add(camera.id);
      await this.deps.cameras.upsert(this.fromConfig(camera));
    }
    for (const record of await this.deps.cameras.list()) {
      if (record.origin === 'config' && !configured.has(record.id)) {
        await this.deps.cameras.delete(record.id);
        continue;
      }
      this.addEntry(record);
    }
    const toStart = [...this.entries.values()].filter((e) => e.record.enabled && isFfmpegKind(e.record.kind) && this.owns(e.record.id));
    if (toStart.length > 0) {
      const probe = await probeFfmpeg(this.deps.config.sources.ffmpegPath);
      if (!probe.ok) this.log(`${probe.message}; cameras ${toStart.map((e) => e.record.id).join(', ')} stay unavailable`);
    }
    for (const entry of toStart) {
      try {
        await this.startEntry(entry);
      } catch (err) {
        this.log(`camera ${entry.record.id} did not start: ${(err as Error).message}`);
      }
    }
  }

  /** Assigns a camera to a node (null = any node); the leases follow within a renewal period. */
  async assignNode(id: string, node: string | null): Promise<CameraView> {
    const entry = this.entries.get(id);
    if (!entry || entry.record.transient) throw notFound(id);
    if (!(await this.deps.cameras.assignNode(id, node))) throw notFound(id);
    entry.record = { ...entry.record, nodeId: node };
    this.deps.ownership?.wake();
    return this.view(entry);
  }

  /** Stops every source and ends every stream. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const entry of this.entries.values()) entry.streamer?.evict('server_closing', 'the server is shutting down');
    await Promise.all([...this.entries.values()].map((e) => e.source?.stop()));
  }

  list(): CameraView[] {
    return [...this.entries.values()].sort((a, b) => (a.record.id < b.record.id ? -1 : 1)).map((e) => this.view(e));
  }

  get(id: string): CameraView {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(id);
    return this.view(entry);
  }

  /** Defines a camera (POST /api/v1/cameras) and starts it unless autoStart is false. */
  async create(input: NewCameraInput): Promise<CameraView> {
    const id = input.id ?? this.freeId(input.name);
    if (!CAMERA_ID_PATTERN.test(id)) throw new AppError('invalid_camera_id', 400, 'a camera id is letters, digits, "_", "-" and "." (at most 64, starting with a letter or digit)');
    const record: NewCamera = {
      id,
      name: input.name,
      kind: input.kind,
      ...this.checkedSource(input.kind, input),
      maxFps: input.maxFps ?? null,
      enabled: input.autoStart ?? true,
      loop: input.kind === 'file' ? (input.loop ?? false) : false,
      origin: 'api',
      nodeId: input.node ?? null,
    };
    if (input.loop && input.kind !== 'file') throw new AppError('invalid_camera_source', 400, 'loop applies to file cameras only');
    const existing = this.entries.get(id);
    // A client already streams to this id as a transient camera: registering it as push keeps that stream.
    if (existing && !(existing.record.transient && input.kind === 'push')) {
      throw new AppError('camera_exists', 409, existing.record.transient ? `a client is streaming to ${id}; register it as a push camera or choose another id` : `camera ${id} exists`);
    }
    const created = await this.deps.cameras.create(record);
    if (!created) throw new AppError('camera_exists', 409, `camera ${id} exists`);
    if (existing) {
      existing.record = created;
      this.deps.pipeline.configureCamera(id, { maxFps: created.maxFps });
      return this.view(existing);
    }
    const entry = this.addEntry(created);
    if (created.enabled && isFfmpegKind(created.kind) && this.owns(id)) await this.startEntry(entry);
    this.deps.ownership?.wake();
    return this.view(entry);
  }

  /** Deletes a camera defined by the API (config cameras live in the config file): stops it first. */
  async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(id);
    if (entry.record.origin === 'config') {
      throw new AppError('camera_in_config', 409, `camera ${id} is defined in the configuration (cameras); remove it there`);
    }
    this.entries.delete(id);
    entry.streamer?.evict('camera_deleted', `camera ${id} was deleted`);
    await entry.source?.stop();
    if (!entry.record.transient) await this.deps.cameras.delete(id);
    await this.deps.pipeline.removeCamera(id);
  }

  /** Starts an ffmpeg camera (and keeps it enabled across restarts); lets a push camera accept streams again. */
  async startCamera(id: string): Promise<CameraView> {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(id);
    if (!entry.record.transient) await this.setEnabled(entry, true);
    if (isFfmpegKind(entry.record.kind) && this.owns(id)) await this.startEntry(entry);
    this.deps.ownership?.wake();
    return this.view(entry);
  }

  /** Stops an ffmpeg camera (kept stopped across restarts); a push camera ends its stream and refuses new ones until started. */
  async stopCamera(id: string): Promise<CameraView> {
    const entry = this.entries.get(id);
    if (!entry) throw notFound(id);
    if (entry.record.transient) {
      entry.streamer?.evict('camera_stopped', `camera ${id} was stopped`);
      this.entries.delete(id);
      return { ...this.view(entry), state: 'stopped', since: Date.now() };
    }
    await this.setEnabled(entry, false);
    entry.streamer?.evict('camera_stopped', `camera ${id} was stopped`);
    await entry.source?.stop();
    return this.view(entry);
  }

  /**
   * Attaches a client's stream to a push camera (creating a transient one for an unknown id when
   * allowed); a stream already attached is evicted with "replaced". Throws AppError when the
   * camera is not a push camera, is stopped, or is unknown and may not be created.
   */
  openPushStream(cameraId: string, options: { remoteAddress?: string; onEvicted: (code: EvictionCode, message: string) => void }): PushStream {
    if (this.closed) throw new AppError('server_closing', 503, 'the server is shutting down');
    if (!CAMERA_ID_PATTERN.test(cameraId)) throw new AppError('invalid_camera_id', 400, 'a camera id is letters, digits, "_", "-" and "." (at most 64, starting with a letter or digit)');
    let entry = this.entries.get(cameraId);
    if (!entry) {
      if (!this.deps.config.sources.stream.autoCreatePushCameras) {
        throw new AppError('camera_not_found', 404, `no camera ${cameraId}; register it first (POST /api/v1/cameras with kind "push")`);
      }
      const now = Date.now();
      entry = this.addEntry({
        id: cameraId,
        name: cameraId,
        kind: 'push',
        url: null,
        device: null,
        path: null,
        maxFps: null,
        enabled: true,
        loop: false,
        origin: 'api',
        nodeId: null,
        createdAt: now,
        updatedAt: now,
        transient: true,
      });
    }
    if (entry.record.kind !== 'push') {
      throw new AppError('not_a_push_camera', 409, `camera ${cameraId} is a ${entry.record.kind} camera read by the server; stream to a push camera`);
    }
    if (!entry.record.enabled) throw new AppError('camera_stopped', 409, `camera ${cameraId} is stopped (POST /api/v1/cameras/${cameraId}/start)`);
    entry.streamer?.evict('replaced', 'another client started streaming to this camera');
    const target = entry;
    let open = true;
    const handle: PushStream = {
      cameraId,
      offer: (bytes, meta = {}) => {
        if (!open || this.closed) return;
        const now = Date.now();
        target.push.framesIn++;
        target.push.fps.tick(now);
        const frame: Frame = {
          cameraId,
          seq: ++target.push.seq,
          receivedAtMs: now,
          bytes,
          ...(meta.frameId !== undefined ? { frameId: meta.frameId } : {}),
          ...(meta.clientTimestamp !== undefined ? { clientTimestamp: meta.clientTimestamp } : {}),
        };
        this.deps.pipeline.offer(frame);
      },
      countDropped: (reason) => {
        if (reason === 'rate_limited') target.push.rateLimited++;
        else target.push.rejected++;
      },
      close: () => {
        if (!open) return;
        open = false;
        if (target.streamer?.handle !== handle) return;
        target.streamer = undefined;
        target.push.idleSince = Date.now();
        if (target.record.transient && this.entries.get(cameraId) === target) this.entries.delete(cameraId);
      },
    };
    entry.streamer = {
      handle,
      connectedAt: Date.now(),
      remoteAddress: options.remoteAddress ?? null,
      evict: (code, message) => {
        if (!open) return;
        handle.close();
        options.onEvicted(code, message);
      },
    };
    return handle;
  }

  // ---- internals ----

  private fromConfig(camera: CameraConfig): NewCamera {
    const source = (() => {
      try {
        return this.checkedSource(camera.kind, camera, false);
      } catch (err) {
        // Kept as configured; the camera shows the error when it tries to start.
        this.log(`config camera ${camera.id}: ${(err as Error).message}`);
        return { url: camera.url ?? null, device: camera.device ?? null, path: camera.path ?? null };
      }
    })();
    return {
      id: camera.id,
      name: camera.name ?? camera.id,
      kind: camera.kind,
      ...source,
      maxFps: camera.maxFps ?? null,
      enabled: camera.enabled,
      loop: camera.kind === 'file' && camera.loop,
      origin: 'config',
      nodeId: camera.node ?? null,
    };
  }

  /** The kind's one source field, checked; the other fields must be absent. */
  private checkedSource(
    kind: CameraKind,
    input: { url?: string; device?: string; path?: string },
    strict = true,
  ): { url: string | null; device: string | null; path: string | null } {
    const field = FIELD_OF[kind];
    for (const other of ['url', 'device', 'path'] as const) {
      if (other !== field && input[other] !== undefined && strict) {
        throw new AppError('invalid_camera_source', 400, `a ${kind} camera takes ${field ?? 'no url, device or path'}, not ${other}`);
      }
    }
    const value = field ? input[field] : undefined;
    if (field && !value) throw new AppError('invalid_camera_source', 400, `a ${kind} camera needs ${field}`);
    switch (kind) {
      case 'rtsp':
      case 'mjpeg':
        return { url: checkCameraUrl(kind, value!), device: null, path: null };
      case 'v4l2':
        return { url: null, device: checkVideoDevice(value!), path: null };
      case 'file':
        return { url: null, device: null, path: resolveVideoFile(value!, this.allowedFileRoots) };
      case 'push':
        return { url: null, device: null, path: null };
    }
  }

  /** The ffmpeg input of a camera, checked again (a file may have moved, a link changed). */
  private inputOf(record: CameraRecord): FfmpegInput {
    const checked = this.checkedSource(record.kind, { url: record.url ?? undefined, device: record.device ?? undefined, path: record.path ?? undefined }, false);
    switch (record.kind) {
      case 'rtsp':
      case 'mjpeg':
        return { kind: record.kind, url: checked.url! };
      case 'v4l2':
        return { kind: 'v4l2', device: checked.device! };
      case 'file':
        return { kind: 'file', path: checked.path!, loop: record.loop };
      case 'push':
        throw new Error('push cameras have no ffmpeg input');
    }
  }

  private freeId(name: string): string {
    const base = slugify(name) || 'camera';
    if (!this.entries.has(base)) return base;
    for (let n = 2; ; n++) {
      const id = `${base}-${n}`;
      if (!this.entries.has(id)) return id;
    }
  }

  private addEntry(record: CameraRecord & { transient?: boolean }): CameraEntry {
    const entry: CameraEntry = {
      record,
      blockedReason: null,
      blockedSince: record.updatedAt,
      push: { framesIn: 0, rateLimited: 0, rejected: 0, seq: 0, fps: new FpsMeter(), idleSince: Date.now() },
    };
    this.entries.set(record.id, entry);
    this.deps.pipeline.configureCamera(record.id, { maxFps: record.maxFps });
    return entry;
  }

  private async setEnabled(entry: CameraEntry, enabled: boolean): Promise<void> {
    if (entry.record.enabled === enabled) return;
    await this.deps.cameras.setEnabled(entry.record.id, enabled);
    entry.record = { ...entry.record, enabled };
  }

  private effectiveMaxFps(record: CameraRecord): number | null {
    const fps = record.maxFps ?? this.deps.config.realtime.defaultMaxFps;
    return fps > 0 ? fps : null;
  }

  private async startEntry(entry: CameraEntry): Promise<void> {
    if (this.closed || entry.source?.active) return;
    let input: FfmpegInput;
    try {
      input = this.inputOf(entry.record);
    } catch (err) {
      entry.blockedReason = (err as Error).message;
      entry.blockedSince = Date.now();
      throw new AppError('camera_source_invalid', 409, `camera ${entry.record.id} cannot start: ${entry.blockedReason}`);
    }
    entry.blockedReason = null;
    const sources = this.deps.config.sources;
    const inputKey = JSON.stringify(input);
    if (!entry.source || entry.sourceInput !== inputKey) {
      await entry.source?.stop();
      const source = new FfmpegSource({
        cameraId: entry.record.id,
        input,
        sink: this.deps.pipeline,
        output: { maxFps: this.effectiveMaxFps(entry.record) ?? 0, maxWidthPx: sources.maxWidthPx, jpegQuality: sources.jpegQuality },
        ffmpegPath: sources.ffmpegPath,
        maxFrameBytes: this.deps.config.vision.image.maxBytes,
        reconnect: sources.reconnect,
        stallTimeoutMs: sources.stallTimeoutMs,
        stopTimeoutMs: sources.stopTimeoutMs,
        onStateChange: (status) => {
          if (status.state === 'unavailable' || (status.state === 'error' && status.failures === 0)) {
            this.log(`camera ${entry.record.id}: ${status.state}: ${status.lastError ?? ''}`);
          }
        },
      });
      entry.source = source;
      entry.sourceInput = inputKey;
    }
    await entry.source!.start();
  }

  private view(entry: CameraEntry): CameraView {
    const { record } = entry;
    const pipeline = this.deps.pipeline.stats(record.id)[0];
    const base = {
      id: record.id,
      name: record.name,
      kind: record.kind,
      maxFps: this.effectiveMaxFps(record),
      enabled: record.enabled,
      loop: record.loop,
      origin: record.transient ? ('transient' as const) : record.origin,
      node: { assigned: record.nodeId, runningOn: isFfmpegKind(record.kind) ? (this.deps.ownership?.holder(record.id) ?? null) : null },
    };
    if (record.kind === 'push') {
      const streamer = entry.streamer;
      const state: CameraState = streamer ? 'running' : record.enabled ? 'idle' : 'stopped';
      return {
        ...base,
        source: null,
        state,
        since: streamer ? streamer.connectedAt : entry.push.idleSince,
        lastError: null,
        stats: {
          framesIn: entry.push.framesIn,
          framesDropped: entry.push.rateLimited + entry.push.rejected + (pipeline?.framesDropped ?? 0),
          framesProcessed: pipeline?.framesProcessed ?? 0,
          fps: entry.push.fps.fps(),
          processingFps: pipeline?.processingFps ?? 0,
        },
        ffmpeg: null,
        stream: {
          connected: streamer !== undefined,
          connectedAt: streamer?.connectedAt ?? null,
          remoteAddress: streamer?.remoteAddress ?? null,
          rateLimited: entry.push.rateLimited,
          rejected: entry.push.rejected,
        },
      };
    }
    const status = entry.source?.status();
    const sourceText = (() => {
      try {
        return describeInput(this.inputOfUnchecked(record));
      } catch {
        return null;
      }
    })();
    const blocked = entry.blockedReason !== null && !entry.source?.active;
    return {
      ...base,
      source: sourceText,
      state: blocked ? 'stopped' : (status?.state ?? 'stopped'),
      since: blocked ? entry.blockedSince : (status?.sinceMs ?? record.updatedAt),
      lastError: blocked ? entry.blockedReason : (status?.lastError ?? null),
      stats: {
        framesIn: status?.counters.framesOut ?? 0,
        framesDropped: (status?.counters.framesDiscarded ?? 0) + (pipeline?.framesDropped ?? 0),
        framesProcessed: pipeline?.framesProcessed ?? 0,
        fps: status?.fps ?? 0,
        processingFps: pipeline?.processingFps ?? 0,
      },
      ffmpeg: {
        pid: status?.pid ?? null,
        failures: status?.failures ?? 0,
        nextRetryAt: status?.nextRetryAtMs ?? null,
        stderrTail: status?.stderrTail ?? [],
      },
      stream: null,
    };
  }

  /** The input as stored, for display (not checked). */
  private inputOfUnchecked(record: CameraRecord): FfmpegInput {
    switch (record.kind) {
      case 'rtsp':
      case 'mjpeg':
        return { kind: record.kind, url: record.url ?? '' };
      case 'v4l2':
        return { kind: 'v4l2', device: record.device ?? '' };
      case 'file':
        return { kind: 'file', path: record.path ?? '', loop: record.loop };
      case 'push':
        throw new Error('push cameras have no ffmpeg input');
    }
  }
}
