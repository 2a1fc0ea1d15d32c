import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { Backoff, type BackoffOptions } from './backoff.ts';
import { ffmpegArgs, type FfmpegInput, type FfmpegOutputOptions } from './camera-input.ts';
import { FFMPEG_MISSING_MESSAGE, probeFfmpeg, type FfmpegProbe } from './ffmpeg-probe.ts';
import { FpsMeter } from './fps-meter.ts';
import type { Frame, FrameSink } from './frame.ts';
import { JpegSplitter } from './jpeg-splitter.ts';

/**
 * stopped → starting → running; a failure → error → reconnecting (backoff) → starting …;
 * a file without loop that plays to its end → ended; ffmpeg absent → unavailable.
 * Giving up after reconnect.maxAttempts failures → stopped (lastError says why).
 */
export const SOURCE_STATES = ['stopped', 'starting', 'running', 'error', 'reconnecting', 'ended', 'unavailable'] as const;
export type SourceState = (typeof SOURCE_STATES)[number];

export interface SourceCounters {
  /** Frames handed to the sink. */
  framesOut: number;
  /** Encoded bytes handed to the sink. */
  bytesOut: number;
  /** Frames lost inside the source (broken or oversize JPEGs from ffmpeg). */
  framesDiscarded: number;
  /** ffmpeg processes started. */
  spawns: number;
}

export interface SourceStatus {
  state: SourceState;
  /** When the state was entered, epoch ms. */
  sinceMs: number;
  lastError: string | null;
  /** The last lines ffmpeg wrote to stderr. */
  stderrTail: string[];
  /** Consecutive failures since the last frame. */
  failures: number;
  /** When the next reconnect attempt is due (state reconnecting), epoch ms. */
  nextRetryAtMs: number | null;
  /** Frames per second out of ffmpeg over the last few seconds. */
  fps: number;
  /** The running ffmpeg's process id. */
  pid: number | null;
  counters: SourceCounters;
}

export interface ReconnectOptions extends BackoffOptions {
  /** Consecutive failures after which the source gives up (state stopped); 0 = never. */
  maxAttempts: number;
}

export interface FfmpegSourceOptions {
  cameraId: string;
  input: FfmpegInput;
  sink: FrameSink;
  output: FfmpegOutputOptions;
  /** The ffmpeg binary (a name on PATH or a path). */
  ffmpegPath: string;
  /** A JPEG from ffmpeg larger than this is discarded. */
  maxFrameBytes: number;
  reconnect: ReconnectOptions;
  /** No frame for this long (since start or the last frame) counts as a failure, in ms. */
  stallTimeoutMs: number;
  /** After SIGTERM, ffmpeg gets this long before SIGKILL, in ms. */
  stopTimeoutMs: number;
  onStateChange?: (status: SourceStatus) => void;
  /** Checks ffmpeg before each start; default runs `ffmpeg -version`. */
  probe?: (ffmpegPath: string) => Promise<FfmpegProbe>;
  random?: () => number;
}

const STDERR_LINES = 20;
const STDERR_LINE_CHARS = 400;

type Child = ChildProcessByStdio<null, Readable, Readable>;

/** One server-side camera read by an ffmpeg child process, its frames offered to a sink. */
export class FfmpegSource {
  private stateValue: SourceState = 'stopped';
  private sinceMs = Date.now();
  private lastError: string | null = null;
  private readonly stderrLines: string[] = [];
  private stderrPartial = '';
  /** The last stderr line of the current ffmpeg run (older runs' lines stay in the tail only). */
  private lastStderrLine: string | undefined;
  private child: Child | undefined;
  private childExited: Promise<void> = Promise.resolve();
  /** Bumped by start() and stop(): callbacks of an older run see a different number and do nothing. */
  private generation = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private nextRetryAtMs: number | null = null;
  private lastFrameAtMs = 0;
  private seq = 0;
  private readonly fpsMeter = new FpsMeter();
  private readonly splitter: JpegSplitter;
  private readonly backoff: Backoff;
  private readonly count: SourceCounters = { framesOut: 0, bytesOut: 0, framesDiscarded: 0, spawns: 0 };

  constructor(private readonly options: FfmpegSourceOptions) {
    this.splitter = new JpegSplitter({ maxFrameBytes: options.maxFrameBytes });
    this.backoff = new Backoff(options.reconnect, options.random);
  }

  get cameraId(): string {
    return this.options.cameraId;
  }

  get state(): SourceState {
    return this.stateValue;
  }

  /** True while the source runs or tries to (starting, running, error, reconnecting). */
  get active(): boolean {
    return this.stateValue === 'starting' || this.stateValue === 'running' || this.stateValue === 'error' || this.stateValue === 'reconnecting';
  }

  status(): SourceStatus {
    const splitter = this.splitter.counters;
    return {
      state: this.stateValue,
      sinceMs: this.sinceMs,
      lastError: this.lastError,
      stderrTail: [...this.stderrLines],
      failures: this.backoff.attempts,
      nextRetryAtMs: this.stateValue === 'reconnecting' ? this.nextRetryAtMs : null,
      fps: this.fpsMeter.fps(),
      pid: this.child?.pid ?? null,
      counters: { ...this.count, framesDiscarded: splitter.corrupt + splitter.oversize },
    };
  }

  /**
   * Starts reading (no-op while already active). Resolves once ffmpeg was checked and spawned, or
   * the state is unavailable; failures after that are retried in the background.
   */
  async start(): Promise<void> {
    if (this.active) return;
    const generation = ++this.generation;
    this.backoff.reset();
    this.lastError = null;
    this.setState('starting');
    const probe = await (this.options.probe ?? probeFfmpeg)(this.options.ffmpegPath);
    if (generation !== this.generation) return;
    if (!probe.ok) {
      this.lastError = probe.message;
      this.setState('unavailable');
      return;
    }
    this.spawnChild(generation);
  }

  /** Stops reading: SIGTERM to ffmpeg, SIGKILL after stopTimeoutMs; resolves when it has exited. */
  async stop(): Promise<void> {
    this.generation++;
    this.clearTimers();
    const child = this.child;
    if (child) {
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs);
      await this.childExited;
      clearTimeout(killTimer);
    }
    this.splitter.reset();
    if (this.stateValue !== 'stopped') this.setState('stopped');
  }

  private spawnChild(generation: number): void {
    const args = ffmpegArgs(this.options.input, this.options.output);
    this.splitter.reset();
    this.stderrPartial = '';
    this.lastStderrLine = undefined;
    this.count.spawns++;
    let child: Child;
    try {
      child = spawn(this.options.ffmpegPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      this.fail(generation, `cannot start ffmpeg: ${(err as Error).message}`);
      return;
    }
    this.child = child;
    let finished = false;
    let resolveExit: () => void = () => undefined;
    this.childExited = new Promise<void>((resolve) => (resolveExit = resolve));
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: NodeJS.ErrnoException): void => {
      if (finished) return;
      finished = true;
      if (this.child === child) this.child = undefined;
      this.clearWatchdog();
      resolveExit();
      this.onExit(generation, code, signal, spawnError);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      // A spawn failure has no pid; other errors (kill failures) are followed by 'close'.
      if (child.pid === undefined) finish(null, null, err);
    });
    child.on('close', (code, signal) => finish(code, signal));
    child.stdout.on('data', (chunk: Buffer) => {
      if (generation !== this.generation) return;
      for (const bytes of this.splitter.push(chunk)) this.onFrame(bytes);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => this.onStderr(text));
    this.lastFrameAtMs = Date.now();
    this.startWatchdog(generation, child);
  }

  private onFrame(bytes: Uint8Array): void {
    const now = Date.now();
    this.lastFrameAtMs = now;
    this.fpsMeter.tick(now);
    this.count.framesOut++;
    this.count.bytesOut += bytes.length;
    if (this.stateValue !== 'running') {
      this.backoff.reset();
      this.lastError = null;
      this.setState('running');
    }
    const frame: Frame = { cameraId: this.options.cameraId, seq: ++this.seq, receivedAtMs: now, bytes };
    try {
      this.options.sink.offer(frame);
    } catch (err) {
      // The sink contract says offer never throws; if one does, the camera must not die of it.
      this.lastError = `the frame sink failed: ${(err as Error).message}`;
    }
  }

  private onStderr(text: string): void {
    const lines = (this.stderrPartial + text).split(/\r?\n|\r/);
    this.stderrPartial = (lines.pop() ?? '').slice(-STDERR_LINE_CHARS);
    for (const line of lines) {
      const trimmed = line.trim();
      if (!trimmed) continue;
      this.pushStderrLine(trimmed);
    }
  }

  private pushStderrLine(line: string): void {
    this.lastStderrLine = line.slice(0, STDERR_LINE_CHARS);
    this.stderrLines.push(this.lastStderrLine);
    if (this.stderrLines.length > STDERR_LINES) this.stderrLines.shift();
  }

  private onExit(generation: number, code: number | null, signal: NodeJS.Signals | null, spawnError?: NodeJS.ErrnoException): void {
    if (this.stderrPartial.trim()) this.onStderr('\n');
    if (generation !== this.generation) return; // stopped or restarted: stop() sets the state
    if (spawnError) {
      if (spawnError.code === 'ENOENT' || spawnError.code === 'EACCES') {
        this.lastError = `${FFMPEG_MISSING_MESSAGE} (${this.options.ffmpegPath}: ${spawnError.code})`;
        this.generation++;
        this.setState('unavailable');
        return;
      }
      this.fail(generation, `cannot start ffmpeg: ${spawnError.message}`);
      return;
    }
    const input = this.options.input;
    if (code === 0 && input.kind === 'file' && !input.loop) {
      this.generation++;
      this.setState('ended');
      return;
    }
    const lastLine = this.lastStderrLine;
    const how = signal ? `was killed by ${signal}` : code === 0 ? 'ended the stream' : `exited with code ${code}`;
    this.fail(generation, lastLine && code !== 0 ? `ffmpeg ${how}: ${lastLine}` : `ffmpeg ${how}`);
  }

  /** A failed run: error, then reconnect after a backoff delay, or give up after maxAttempts. */
  private fail(generation: number, message: string): void {
    if (generation !== this.generation) return;
    this.lastError = message;
    this.setState('error');
    const { maxAttempts } = this.options.reconnect;
    if (maxAttempts > 0 && this.backoff.attempts >= maxAttempts) {
      this.generation++;
      this.lastError = `gave up after ${this.backoff.attempts + 1} failed attempts; last: ${message}`;
      this.setState('stopped');
      return;
    }
    const delayMs = this.backoff.nextDelayMs();
    this.nextRetryAtMs = Date.now() + delayMs;
    this.setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (generation !== this.generation) return;
      this.setState('starting');
      this.spawnChild(generation);
    }, delayMs);
  }

  private startWatchdog(generation: number, child: Child): void {
    this.clearWatchdog();
    const periodMs = Math.max(50, Math.min(1000, this.options.stallTimeoutMs / 4));
    this.watchdog = setInterval(() => {
      if (generation !== this.generation || this.child !== child) return;
      const silentMs = Date.now() - this.lastFrameAtMs;
      if (silentMs < this.options.stallTimeoutMs) return;
      // Kill it; its exit then goes through fail() with this message rather than the signal's.
      const message = this.stateValue === 'running' ? `no frame for ${silentMs} ms: the stream stalled` : `no frame within ${silentMs} ms of starting`;
      this.clearWatchdog();
      this.pushStderrLine(message);
      child.kill('SIGKILL');
    }, periodMs);
  }

  private setState(state: SourceState): void {
    if (state !== 'reconnecting') this.nextRetryAtMs = null;
    this.stateValue = state;
    this.sinceMs = Date.now();
    this.options.onStateChange?.(this.status());
  }

  private clearWatchdog(): void {
    if (this.watchdog !== undefined) {
      clearInterval(this.watchdog);
      this.watchdog = undefined;
    }
  }

  private clearTimers(): void {
    this.clearWatchdog();
    if (this.retryTimer !== undefined) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
  }
}
