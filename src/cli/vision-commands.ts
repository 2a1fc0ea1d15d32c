import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Config } from '../config/config.ts';
import { cosineSimilarity } from '../domain/metrics.ts';
import type { AnalyzedFace } from '../vision/analysis.ts';
import { calibratedThresholds } from '../vision/engine-factory.ts';
import { createVisionPool, type VisionPool } from '../vision/vision-pool.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

/** The JSON a CLI user sees for one face: rounded, without the full landmark set unless asked. */
export function describeFace(face: AnalyzedFace, withLandmarks = false): Record<string, unknown> {
  return {
    box: { x: round(face.box.x, 1), y: round(face.box.y, 1), width: round(face.box.width, 1), height: round(face.box.height, 1) },
    score: round(face.score),
    pose: { yawDeg: round(face.pose.yawDeg, 1), pitchDeg: round(face.pose.pitchDeg, 1), rollDeg: round(face.pose.rollDeg, 1) },
    quality: {
      score: round(face.quality.score),
      pass: face.quality.pass,
      sizePx: round(face.quality.sizePx, 1),
      checks: face.quality.checks.map((c) => ({ ...c, value: round(c.value, 2) })),
    },
    ...(face.liveness === undefined ? {} : { liveness: round(face.liveness) }),
    landmarks5: face.landmarks5.map((p) => [round(p.x, 1), round(p.y, 1)]),
    ...(withLandmarks && face.landmarks ? { landmarks: face.landmarks.map((p) => [round(p.x, 1), round(p.y, 1)]) } : {}),
  };
}

/** Starts a pool just large enough for a one-off command, runs fn, and always closes the pool. */
async function withPool<T>(config: Config, workers: number, fn: (pool: VisionPool) => Promise<T>): Promise<T> {
  const pool = await createVisionPool({ ...config.vision, workers: Math.min(workers, config.vision.workers) });
  try {
    return await fn(pool);
  } finally {
    await pool.close();
  }
}

export function registerVisionCommands(program: Command): void {
  program
    .command('detect')
    .description('find every face in an image: box, score, pose, quality (with reasons), liveness')
    .argument('<image>', 'image file (JPEG, PNG or WebP)')
    .option('--landmarks', 'include every landmark point, not only the five alignment points')
    .action(async (imagePath: string, options: { landmarks?: boolean }) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const bytes = await readFile(imagePath);
      const result = await withPool(config, 1, (pool) => pool.analyze(bytes, { embed: 'none', liveness: true, findSmallFaces: true }));
      const out = {
        image: { path: imagePath, width: result.width, height: result.height },
        engine: config.vision.engine,
        faces: result.faces.map((f) => describeFace(f, options.landmarks)),
      };
      console.log(JSON.stringify(out, null, 2));
    });

  program
    .command('compare')
    .description('similarity of the largest face in two images, and same/different at the verification threshold')
    .argument('<a>', 'first image')
    .argument('<b>', 'second image')
    .action(async (a: string, b: string) => {
      const config = configFromOptions(program.opts<GlobalOptions>());
      const [bytesA, bytesB] = await Promise.all([readFile(a), readFile(b)]);
      const [ra, rb] = await withPool(config, 2, (pool) =>
        Promise.all([pool.analyze(bytesA, { embed: 'largest', liveness: false }), pool.analyze(bytesB, { embed: 'largest', liveness: false })]),
      );
      const ea = ra.faces.find((f) => f.embedding)?.embedding;
      const eb = rb.faces.find((f) => f.embedding)?.embedding;
      const missing = [!ea ? a : undefined, !eb ? b : undefined].filter(Boolean);
      if (!ea || !eb) {
        console.log(JSON.stringify({ result: 'no_face', detail: `no face found in ${missing.join(' and ')}` }, null, 2));
        process.exitCode = 3;
        return;
      }
      const similarity = cosineSimilarity(ea, eb);
      const threshold = calibratedThresholds(config).verify;
      console.log(
        JSON.stringify(
          { similarity: round(similarity, 4), threshold, same: similarity >= threshold, modelId: ea.modelId, faces: { a: ra.faces.length, b: rb.faces.length } },
          null,
          2,
        ),
      );
    });
}
