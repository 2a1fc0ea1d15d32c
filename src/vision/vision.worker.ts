import { parentPort, workerData } from 'node:worker_threads';
import type { VisionConfig } from '../config/config.ts';
import type { DetectedFace } from '../domain/types.ts';
import type { AnalyzeOptions, AnalyzeResult, EmbedFacesOptions, EmbedFacesResult } from './analysis.ts';
import { analyzeImage, embedDetectedFaces, WallClockProfiler } from './analyze.ts';
import { createFaceEngine } from './engine-factory.ts';
import { VisionError } from './errors.ts';
import { FollowScratch } from './follow.ts';
import { decodeImage } from './image.ts';

export interface WorkerStartup {
  config: VisionConfig;
  allowCrashForTests: boolean;
}

export type WorkerRequest =
  | { type: 'analyze'; id: number; bytes: Uint8Array; options: AnalyzeOptions & { crash?: boolean; stallMs?: number } }
  | { type: 'embed'; id: number; bytes: Uint8Array; faces: DetectedFace[]; options: EmbedFacesOptions & { crash?: boolean } };

export interface WorkerErrorInfo {
  code: string;
  message: string;
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'load-failed'; error: WorkerErrorInfo }
  | { type: 'result'; id: number; result: AnalyzeResult | EmbedFacesResult }
  | { type: 'error'; id: number; error: WorkerErrorInfo };

/** Errors we raise carry a client-safe message; anything else is an internal fault, reported without internals. */
function toErrorInfo(err: unknown): WorkerErrorInfo {
  if (err instanceof VisionError) return { code: err.code, message: err.message };
  return { code: 'vision_internal_error', message: `the face engine failed on this image: ${(err as Error)?.message ?? String(err)}` };
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('vision.worker.ts must run as a worker thread');
  const { config, allowCrashForTests } = workerData as WorkerStartup;
  const engine = createFaceEngine(config);
  try {
    await engine.load();
  } catch (err) {
    port.postMessage({ type: 'load-failed', error: toErrorInfo(err) } satisfies WorkerReply);
    return;
  }
  const followScratch = new FollowScratch();
  port.on('message', (request: WorkerRequest) => {
    void (async () => {
      if (allowCrashForTests && request.options.crash) process.exit(70);
      if (allowCrashForTests && request.type === 'analyze' && request.options.stallMs) {
        // A synchronous stall, as a long native inference is: the thread answers nothing meanwhile.
        const until = Date.now() + request.options.stallMs;
        while (Date.now() < until);
      }
      try {
        const profiler = new WallClockProfiler();
        const result = await followScratch.withFrameBuffer(async (pixels) => {
          const image = await profiler.measure('decode', () => decodeImage(request.bytes, config.image, pixels));
          return request.type === 'analyze'
            ? analyzeImage(engine, image, request.options, config, profiler, followScratch)
            : embedDetectedFaces(engine, image, request.faces, request.options, profiler);
        });
        port.postMessage({ type: 'result', id: request.id, result } satisfies WorkerReply);
      } catch (err) {
        port.postMessage({ type: 'error', id: request.id, error: toErrorInfo(err) } satisfies WorkerReply);
      }
    })();
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}

void main();
