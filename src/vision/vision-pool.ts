import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { VisionConfig } from '../config/config.ts';
import type { DetectedFace } from '../domain/types.ts';
import type { AnalyzeOptions, AnalyzeResult, EmbedFacesOptions, EmbedFacesResult } from './analysis.ts';
import { VisionError, WorkerFailedError } from './errors.ts';
import type { WorkerReply, WorkerRequest, WorkerStartup } from './vision.worker.ts';

/** Runs the face engine on worker threads, so the server's event loop never runs inference. */
export interface VisionPool {
  readonly size: number;
  /** Decodes an encoded image and analyses it on the next free worker. */
  analyze(bytes: Uint8Array, options: AnalyzeOptions): Promise<AnalyzeResult>;
  /** Embeds faces an earlier analyze found in the same image (a tracker embeds only the faces it needs). */
  embedFaces(bytes: Uint8Array, faces: DetectedFace[], options: EmbedFacesOptions): Promise<EmbedFacesResult>;
  stats(): VisionPoolStats;
  /**
   * Starts a fresh set of workers (models loaded again from disk) and retires the old ones once
   * their running job is done; if the new workers cannot load, the old ones keep serving.
   */
  reload(): Promise<void>;
  /** Stops the workers once running jobs have finished (at most drainTimeoutMs). */
  close(drainTimeoutMs?: number): Promise<void>;
}

export interface VisionPoolStats {
  workers: number;
  busy: number;
  queued: number;
  completed: number;
  failed: number;
  /** Workers replaced after a crash or a timed-out job. */
  restarts: number;
}

/** Thrown when more jobs wait than vision.maxQueue allows: the caller should shed load, not queue. */
export class VisionOverloadedError extends VisionError {
  constructor(queued: number) {
    super('vision_overloaded', `the face engine is busy (${queued} jobs waiting); try again shortly`);
  }
}

export interface VisionPoolOptions {
  /** Lets tests crash a worker on purpose ({ crash: true } jobs); never set in production. */
  allowCrashForTests?: boolean;
  onWorkerError?: (message: string) => void;
}

interface Job {
  request: WorkerRequest;
  transfer: ArrayBuffer[];
  resolve: (result: never) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
  ready: boolean;
  /** Being replaced by a reload: takes no new job and is not respawned when it exits. */
  retiring?: boolean;
  /** Its job timed out: already answered and replaced; stopped once the run ends (or at last resort). */
  stuck?: boolean;
  killTimer?: NodeJS.Timeout;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const IS_TYPESCRIPT_SOURCE = import.meta.url.endsWith('.ts');
const WORKER_URL = new URL(IS_TYPESCRIPT_SOURCE ? './vision.worker.ts' : './vision.worker.js', import.meta.url);
/** Run from source, the worker is TypeScript: a small .mjs bootstrap registers tsx in the thread first. */
const BOOTSTRAP_URL = new URL('./ts-worker-bootstrap.mjs', import.meta.url);

class WorkerPool extends EventEmitter implements VisionPool {
  private readonly slots: Slot[] = [];
  /** Interactive jobs (REST calls) are dispatched before background ones (camera frames); each queue holds up to maxQueue. */
  private readonly queue: Job[] = [];
  private readonly backgroundQueue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private counters = { completed: 0, failed: 0, restarts: 0 };

  constructor(
    private readonly config: VisionConfig,
    private readonly options: VisionPoolOptions,
  ) {
    super();
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every worker and waits until each has loaded its models (or one fails to). */
  async start(): Promise<void> {
    const starts = Array.from({ length: this.config.workers }, () => this.spawn());
    try {
      await Promise.all(starts);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  private spawn(): Promise<Slot> {
    const startup: WorkerStartup = { config: this.config, allowCrashForTests: this.options.allowCrashForTests === true };
    const worker = IS_TYPESCRIPT_SOURCE
      ? new Worker(BOOTSTRAP_URL, { workerData: { ...startup, tsEntry: WORKER_URL.href } })
      : new Worker(WORKER_URL, { workerData: startup });
    const slot: Slot = { worker, ready: false };
    this.slots.push(slot);
    return new Promise((resolve, reject) => {
      worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          slot.ready = true;
          resolve(slot);
          this.dispatch();
        } else if (reply.type === 'load-failed') {
          reject(new VisionError(reply.error.code, reply.error.message));
        } else {
          this.finish(slot, reply);
        }
      });
      worker.on('error', (err) => {
        this.options.onWorkerError?.(`vision worker error: ${err.message}`);
        if (!slot.ready) reject(new WorkerFailedError(`a vision worker failed to start: ${err.message}`));
      });
      worker.on('exit', (code) => {
        if (!slot.ready) reject(new WorkerFailedError(`a vision worker exited during start-up (code ${code})`));
        this.replace(slot, code);
      });
    });
  }

  /** A worker that died mid-job answers that job with an error and is replaced. */
  private replace(slot: Slot, exitCode: number): void {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    if (slot.timer) clearTimeout(slot.timer);
    if (slot.killTimer) clearTimeout(slot.killTimer);
    // A stuck worker's job was answered and a replacement started when it timed out.
    if (slot.stuck) return;
    if (slot.job) {
      this.counters.failed++;
      slot.job.reject(new WorkerFailedError(`the vision worker stopped while processing this image (exit code ${exitCode})`));
      slot.job = undefined;
    }
    if (this.closed || !slot.ready || slot.retiring) return;
    this.counters.restarts++;
    this.spawn().catch((err: Error) => {
      this.options.onWorkerError?.(`could not replace a vision worker: ${err.message}`);
      // With no worker left, queued jobs would wait forever: answer them now.
      if (this.slots.length === 0) this.failQueued(new WorkerFailedError('no vision worker is running'));
    });
  }

  private finish(slot: Slot, reply: Extract<WorkerReply, { type: 'result' | 'error' }>): void {
    if (slot.stuck) {
      // The timed-out run has ended: the worker is idle now, so stopping it cannot abort native code.
      slot.job = undefined;
      void slot.worker.terminate();
      return;
    }
    const job = slot.job;
    if (!job || job.request.id !== reply.id) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.job = undefined;
    if (reply.type === 'result') {
      this.counters.completed++;
      job.resolve(reply.result as never);
    } else {
      this.counters.failed++;
      job.reject(new VisionError(reply.error.code, reply.error.message));
    }
    this.dispatch();
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0 && this.backgroundQueue.length === 0) return;
      if (!slot.ready || slot.job || slot.retiring) continue;
      const job = this.queue.shift() ?? this.backgroundQueue.shift()!;
      slot.job = job;
      slot.timer = setTimeout(() => this.abandon(slot, job), this.config.jobTimeoutMs);
      slot.worker.postMessage(job.request, job.transfer);
    }
  }

  /**
   * A job ran past jobTimeoutMs: answer it now and start a replacement worker, but let the stuck
   * one run to the end of its inference before stopping it. Terminating a worker inside an ONNX run
   * can abort the whole process from native code; an idle worker stops safely. Only if it never
   * comes back (10 × the timeout) is it terminated anyway.
   */
  private abandon(slot: Slot, job: Job): void {
    if (slot.job !== job || slot.stuck) return;
    this.options.onWorkerError?.(`vision job ${job.request.id} timed out after ${this.config.jobTimeoutMs} ms; a fresh worker takes over, the stuck one stops when its run ends`);
    this.counters.failed++;
    job.reject(new VisionError('vision_timeout', `the face engine took longer than ${this.config.jobTimeoutMs} ms on this image`));
    slot.stuck = true;
    slot.retiring = true;
    slot.killTimer = setTimeout(() => void slot.worker.terminate(), this.config.jobTimeoutMs * 10);
    slot.killTimer.unref();
    if (this.closed) return;
    this.counters.restarts++;
    this.spawn().catch((err: Error) => {
      this.options.onWorkerError?.(`could not replace a vision worker: ${err.message}`);
      if (this.slots.every((s) => s.stuck)) this.failQueued(new WorkerFailedError('no vision worker is running'));
    });
  }

  analyze(bytes: Uint8Array, options: AnalyzeOptions & { crash?: boolean; stallMs?: number }): Promise<AnalyzeResult> {
    return this.submit(bytes, (id, copy) => ({ type: 'analyze', id, bytes: copy, options }), options.background === true);
  }

  embedFaces(bytes: Uint8Array, faces: DetectedFace[], options: EmbedFacesOptions): Promise<EmbedFacesResult> {
    // Only what the engine reads crosses the thread boundary (not quality, embeddings or thumbnails).
    const plain = faces.map(({ box, score, landmarks5, landmarks, pose }) => ({ box, score, landmarks5, landmarks, pose }));
    return this.submit(bytes, (id, copy) => ({ type: 'embed', id, bytes: copy, faces: plain, options }), options.background === true);
  }

  private submit<T>(bytes: Uint8Array, request: (id: number, copy: Uint8Array) => WorkerRequest, background = false): Promise<T> {
    if (this.closed) return Promise.reject(new WorkerFailedError('the vision pool is closed'));
    const queue = background ? this.backgroundQueue : this.queue;
    if (queue.length >= this.config.maxQueue) return Promise.reject(new VisionOverloadedError(queue.length));
    // Copy into a buffer of our own so it can be transferred without detaching the caller's memory.
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Promise<T>((resolve, reject) => {
      queue.push({ request: request(this.nextId++, copy), transfer: [copy.buffer], resolve: resolve as (result: never) => void, reject });
      this.dispatch();
    });
  }

  private failQueued(err: Error): void {
    for (const job of [...this.queue.splice(0), ...this.backgroundQueue.splice(0)]) {
      this.counters.failed++;
      job.reject(err);
    }
  }

  stats(): VisionPoolStats {
    return {
      workers: this.slots.filter((s) => s.ready && !s.retiring).length,
      busy: this.slots.filter((s) => s.job).length,
      queued: this.queue.length + this.backgroundQueue.length,
      ...this.counters,
    };
  }

  async reload(): Promise<void> {
    if (this.closed) throw new WorkerFailedError('the vision pool is closed');
    const old = this.slots.filter((slot) => !slot.retiring);
    for (const slot of old) slot.retiring = true;
    try {
      await Promise.all(Array.from({ length: this.config.workers }, () => this.spawn()));
    } catch (err) {
      for (const slot of this.slots.filter((s) => !old.includes(s))) {
        slot.retiring = true;
        void slot.worker.terminate();
      }
      for (const slot of old) slot.retiring = false;
      this.dispatch();
      throw err;
    }
    await Promise.all(
      old.map(async (slot) => {
        while (slot.job) await sleep(20);
        await slot.worker.terminate();
      }),
    );
  }

  /**
   * Refuses new work, fails what is queued, lets running jobs finish (up to drainTimeoutMs), then
   * stops the workers. Terminating a worker in the middle of an ONNX run can abort the whole
   * process from native code, so a graceful close waits for inference to end first.
   */
  async close(drainTimeoutMs = 10_000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failQueued(new WorkerFailedError('the vision pool is closing'));
    const deadline = Date.now() + drainTimeoutMs;
    while (this.slots.some((slot) => slot.job) && Date.now() < deadline) await sleep(20);
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }
}

/** Starts a pool of config.workers threads, each with its own engine; resolves once all are loaded. */
export async function createVisionPool(config: VisionConfig, options: VisionPoolOptions = {}): Promise<VisionPool> {
  const pool = new WorkerPool(config, options);
  await pool.start();
  return pool;
}
