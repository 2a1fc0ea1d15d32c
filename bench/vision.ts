/**
 * `facegate bench vision`: what the face pipeline costs on this machine.
 * - CPU-ms per stage (decode, detect, landmarks, pose, align, embed, liveness, quality), measured
 *   in-process with process.cpuUsage() around each stage, one stage at a time;
 * - the same 1-face images through Human's own detect() with faceres on, in the same run: the
 *   ratio between the two is the figure, absolute times on a shared machine are not;
 * - frames/s through the real worker pool with 1 and N workers, with and without embedding.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import type { Config } from '../src/config/config.ts';
import { projectPath } from '../src/config/paths.ts';
import type { AnalyzeOptions } from '../src/vision/analysis.ts';
import { analyzeImage } from '../src/vision/analyze.ts';
import { createFaceEngine } from '../src/vision/engine-factory.ts';
import type { StageProfiler, VisionStage } from '../src/vision/face-engine.ts';
import { humanDetectWithFaceres } from '../src/vision/human/human-reference.ts';
import { decodeImage } from '../src/vision/image.ts';
import { createVisionPool } from '../src/vision/vision-pool.ts';
import { median, printTable, writeResults } from './report.ts';

/** Adds process CPU time (user + system, all threads) per stage; valid while one stage runs at a time. */
class CpuProfiler implements StageProfiler {
  readonly samplesMs = new Map<VisionStage, number>();

  async measure<T>(stage: VisionStage, fn: () => Promise<T>): Promise<T> {
    const start = process.cpuUsage();
    try {
      return await fn();
    } finally {
      const used = process.cpuUsage(start);
      this.samplesMs.set(stage, (this.samplesMs.get(stage) ?? 0) + (used.user + used.system) / 1000);
    }
  }
}

interface BenchImage {
  name: string;
  bytes: Buffer;
}

const STAGES: VisionStage[] = ['decode', 'detect', 'landmarks', 'pose', 'quality', 'align', 'embed', 'liveness'];

/** One-face photos: Pointing'04 frontal shots when ../shared/datasets is there, else face crops from the face-api demo photos. */
async function oneFaceImages(datasetDir: string, count: number): Promise<BenchImage[]> {
  const poseDir = join(datasetDir, 'pose');
  if (existsSync(poseDir)) {
    const images: BenchImage[] = [];
    for (const person of readdirSync(poseDir).filter((d) => d.startsWith('person')).sort()) {
      const frontal = readdirSync(join(poseDir, person)).find((f) => f.endsWith('+0+0.jpg'));
      if (frontal) images.push({ name: `${person}/${frontal}`, bytes: await readFile(join(poseDir, person, frontal)) });
    }
    if (images.length > 0) return images.slice(0, count);
  }
  // Fallback: 640×480 crops centred on the largest face of each demo photo.
  const images: BenchImage[] = [];
  for (const sample of demoPhotoPaths().slice(0, count)) {
    const meta = await sharp(sample).metadata();
    const width = Math.min(640, meta.width ?? 640);
    const height = Math.min(480, meta.height ?? 480);
    const bytes = await sharp(sample).extract({ left: Math.max(0, ((meta.width ?? width) - width) >> 1), top: 0, width, height }).jpeg().toBuffer();
    images.push({ name: `crop-${sample.split('/').pop()}`, bytes });
  }
  return images;
}

function demoPhotoPaths(): string[] {
  const dir = projectPath('node_modules/@vladmandic/face-api/demo');
  return [1, 2, 3, 4, 5, 6].map((n) => join(dir, `sample${n}.jpg`));
}

async function multiFaceImages(): Promise<BenchImage[]> {
  return Promise.all(demoPhotoPaths().map(async (p) => ({ name: p.split('/').pop()!, bytes: await readFile(p) })));
}

interface StageResult {
  images: number;
  faces: number;
  /** Median over images of CPU-ms per stage (per image for decode/detect/landmarks/pose, per face summed for the rest). */
  stageCpuMs: Partial<Record<VisionStage, number>>;
  /** decode excluded: from decoded image to embedding of one new face. */
  newFaceCpuMs: number;
  /** detect + landmarks + pose + quality: a frame whose faces are already known. */
  trackedFrameCpuMs: number;
}

async function measureStages(config: Config, images: BenchImage[], repeats: number): Promise<StageResult> {
  const engine = createFaceEngine(config.vision);
  await engine.load();
  const perStage = new Map<VisionStage, number[]>();
  const newFace: number[] = [];
  const tracked: number[] = [];
  let faces = 0;
  try {
    for (let r = 0; r < repeats + 1; r++) {
      for (const image of images) {
        const profiler = new CpuProfiler();
        const decoded = await profiler.measure('decode', () => decodeImage(image.bytes, config.vision.image));
        const options: AnalyzeOptions = { embed: 'all', liveness: true };
        const result = await analyzeImage(engine, decoded, options, config.vision, profiler as never);
        if (r === 0) {
          faces += result.faces.length;
          continue; // warm-up pass
        }
        const s = (stage: VisionStage): number => profiler.samplesMs.get(stage) ?? 0;
        for (const stage of STAGES) perStage.set(stage, [...(perStage.get(stage) ?? []), s(stage)]);
        const perFace = Math.max(1, result.faces.length);
        tracked.push(s('detect') + s('landmarks') + s('pose') + s('quality'));
        newFace.push(s('detect') + s('landmarks') + s('pose') + s('quality') + (s('align') + s('embed')) / perFace);
      }
    }
  } finally {
    await engine.dispose();
  }
  return {
    images: images.length,
    faces,
    stageCpuMs: Object.fromEntries(STAGES.map((stage) => [stage, median(perStage.get(stage) ?? [])])),
    newFaceCpuMs: median(newFace),
    trackedFrameCpuMs: median(tracked),
  };
}

async function measureHuman(images: BenchImage[], repeats: number): Promise<{ cpuMsPerImage: number; facesFound: number }> {
  const reference = await humanDetectWithFaceres();
  const samples: number[] = [];
  let facesFound = 0;
  try {
    const decoded = await Promise.all(images.map((i) => decodeImage(i.bytes)));
    for (let r = 0; r < repeats + 1; r++) {
      for (const image of decoded) {
        const start = process.cpuUsage();
        const found = await reference.detect(image);
        const used = process.cpuUsage(start);
        if (r === 0) facesFound += found;
        else samples.push((used.user + used.system) / 1000);
      }
    }
  } finally {
    await reference.dispose();
  }
  return { cpuMsPerImage: median(samples), facesFound };
}

interface ThroughputResult {
  workers: number;
  mode: 'embed' | 'track';
  images: string;
  framesPerS: number;
  cpuMsPerFrame: number;
}

async function measureThroughput(config: Config, images: BenchImage[], label: string, workers: number, mode: 'embed' | 'track', frames: number): Promise<ThroughputResult> {
  const pool = await createVisionPool({ ...config.vision, workers });
  try {
    const options: AnalyzeOptions = { embed: mode === 'embed' ? 'all' : 'none', liveness: mode === 'embed' };
    await Promise.all(images.slice(0, workers).map((i) => pool.analyze(i.bytes, options))); // warm-up
    let next = 0;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    const runner = async (): Promise<void> => {
      while (next < frames) {
        const image = images[next++ % images.length]!;
        await pool.analyze(image.bytes, options);
      }
    };
    await Promise.all(Array.from({ length: workers * 2 }, runner));
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    return { workers, mode, images: label, framesPerS: frames / seconds, cpuMsPerFrame: (cpu.user + cpu.system) / 1000 / frames };
  } finally {
    await pool.close();
  }
}

export interface VisionBenchOptions {
  repeats: number;
  frames: number;
  datasetDir: string;
  skipHuman: boolean;
}

export async function runVisionBench(config: Config, options: VisionBenchOptions): Promise<void> {
  const single = await oneFaceImages(options.datasetDir, 10);
  const multi = await multiFaceImages();
  const maxWorkers = Math.max(2, Math.min(config.vision.workers, availableParallelism()));
  console.log(`facegate bench vision: engine ${config.vision.engine}, ${single.length} one-face and ${multi.length} multi-face images, ${options.repeats} repeats`);

  const oneFace = await measureStages(config, single, options.repeats);
  const multiFace = await measureStages(config, multi, Math.max(1, Math.floor(options.repeats / 2)));
  printTable(
    'CPU-ms per stage (median per image, in-process, one stage at a time)',
    ['images', 'faces', ...STAGES, 'new face', 'tracked frame'],
    [
      ['1-face', oneFace.faces, ...STAGES.map((s) => oneFace.stageCpuMs[s] ?? NaN), oneFace.newFaceCpuMs, oneFace.trackedFrameCpuMs],
      ['multi-face', multiFace.faces, ...STAGES.map((s) => multiFace.stageCpuMs[s] ?? NaN), multiFace.newFaceCpuMs, multiFace.trackedFrameCpuMs],
    ],
  );

  let human: { cpuMsPerImage: number; facesFound: number } | undefined;
  if (!options.skipHuman) {
    human = await measureHuman(single, options.repeats);
    const ours = oneFace.newFaceCpuMs + (oneFace.stageCpuMs.liveness ?? 0);
    printTable(
      "Against Human's own detect() with faceres, same 1-face images, same run",
      ['pipeline', 'CPU-ms / image', 'faces found', 'ratio'],
      [
        [`facegate ${config.vision.engine}: detect → embed + liveness`, ours, oneFace.faces, 1],
        ['Human detect() + faceres', human.cpuMsPerImage, human.facesFound, human.cpuMsPerImage / ours],
      ],
    );
  }

  const throughput: ThroughputResult[] = [];
  for (const workers of [1, maxWorkers]) {
    for (const mode of ['embed', 'track'] as const) {
      throughput.push(await measureThroughput(config, single, '1-face', workers, mode, options.frames));
    }
    throughput.push(await measureThroughput(config, multi, 'multi-face', workers, 'embed', Math.max(12, options.frames / 4)));
  }
  printTable(
    'Throughput through the worker pool (embed = every face embedded + liveness; track = detection, landmarks, pose, quality only)',
    ['images', 'workers', 'mode', 'frames/s', 'CPU-ms / frame'],
    throughput.map((t) => [t.images, t.workers, t.mode, t.framesPerS, t.cpuMsPerFrame]),
  );

  const file = writeResults('vision', {
    date: new Date().toISOString(),
    engine: config.vision.engine,
    machine: { cpus: availableParallelism(), node: process.version },
    oneFace,
    multiFace,
    human: human ? { ...human, ratio: human.cpuMsPerImage / (oneFace.newFaceCpuMs + (oneFace.stageCpuMs.liveness ?? 0)) } : null,
    throughput,
    targets: {
      newFaceCpuMsMax: 100,
      trackedFrameCpuMsMax: 20,
      humanRatioMin: 2.5,
      met: {
        newFace: oneFace.newFaceCpuMs <= 100,
        trackedFrame: oneFace.trackedFrameCpuMs <= 20,
        humanRatio: human ? human.cpuMsPerImage / (oneFace.newFaceCpuMs + (oneFace.stageCpuMs.liveness ?? 0)) >= 2.5 : null,
      },
    },
  });
  console.log(`\nwrote ${file}`);
}
