import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command, Option } from 'commander';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerEvalCommand } from '../../src/cli/eval.ts';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { projectPath } from '../../src/config/paths.ts';
import type { EvalVisionPool, EvaluationJson } from '../../src/services/evaluation.service.ts';
import { createVisionPool } from '../../src/vision/vision-pool.ts';

const GROUP_PHOTO = projectPath('node_modules/@vladmandic/face-api/demo/sample5.jpg');

/** The real pool, counting how often it is started and how many images it analyses. */
function countingPool() {
  const counts = { opened: 0, analyzed: 0 };
  const openPool = async (config: Config): Promise<EvalVisionPool> => {
    counts.opened++;
    const pool = await createVisionPool(config.vision);
    return {
      size: pool.size,
      analyze: (bytes, options) => {
        counts.analyzed++;
        return pool.analyze(bytes, options);
      },
      close: () => pool.close(),
    };
  };
  return { counts, openPool };
}

/**
 * A tiny labelled dataset made from one group photo (so every face is a different person): each
 * face cropped with a margin into its own identity folder as three variants (re-encoded, brighter,
 * smaller), plus one image with no face in it.
 */
async function buildDataset(dir: string, config: Config): Promise<{ identities: number; images: number }> {
  const photo = await readFile(GROUP_PHOTO);
  const pool = await createVisionPool({ ...config.vision, workers: 1 });
  let faces;
  try {
    faces = (await pool.analyze(photo, { embed: 'none', liveness: false })).faces;
  } finally {
    await pool.close();
  }
  expect(faces.length).toBeGreaterThanOrEqual(4);
  const { width, height } = await sharp(photo).metadata();
  let images = 0;
  for (const [i, face] of faces.entries()) {
    const margin = face.box.width * 0.4;
    const left = Math.max(0, Math.round(face.box.x - margin));
    const top = Math.max(0, Math.round(face.box.y - margin));
    const crop = {
      left,
      top,
      width: Math.min(width! - left, Math.round(face.box.width + 2 * margin)),
      height: Math.min(height! - top, Math.round(face.box.height + 2 * margin)),
    };
    const folder = join(dir, `person${i + 1}`);
    await mkdir(folder, { recursive: true });
    const base = sharp(photo).extract(crop);
    await base.clone().jpeg({ quality: 92 }).toFile(join(folder, '1.jpg'));
    await base.clone().modulate({ brightness: 1.25 }).jpeg({ quality: 85 }).toFile(join(folder, '2.jpg'));
    await base
      .clone()
      .resize({ width: Math.round(crop.width * 0.7) })
      .jpeg({ quality: 90 })
      .toFile(join(folder, '10.jpg'));
    images += 3;
  }
  // A smooth gradient: a decodable image in which no face can be found.
  const gradient = Buffer.alloc(160 * 160 * 3);
  for (let p = 0; p < 160 * 160; p++) gradient.fill(Math.floor(p / 160), p * 3, p * 3 + 3);
  await sharp(gradient, { raw: { width: 160, height: 160, channels: 3 } }).jpeg().toFile(join(dir, 'person1', '20-no-face.jpg'));
  return { identities: faces.length, images: images + 1 };
}

/** A program shaped like src/cli/main.ts (global --engine/--config), with the eval command on it. */
function evalProgram(openPool: (config: Config) => Promise<EvalVisionPool>, stdout: string[]): Command {
  const program = new Command()
    .name('facegate')
    .exitOverride()
    .option('-c, --config <file>')
    .addOption(new Option('--engine <engine>').choices(['onnx', 'human', 'human-fr']));
  registerEvalCommand(program, {
    openPool,
    stdout: { write: (text: string) => stdout.push(text) },
    stderr: new Writable({ write: (_chunk, _encoding, done) => done() }),
  });
  return program;
}

describe('facegate eval', () => {
  let dir: string;
  let config: Config;
  let dataset: { identities: number; images: number };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'facegate-eval-'));
    config = loadConfig({ env: {} });
    dataset = await buildDataset(join(dir, 'faces'), config);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('measures a dataset, writes every JSON key, and answers a second run from the cache', async () => {
    const { counts, openPool } = countingPool();
    const run = async (jsonName: string, extra: string[] = []) => {
      const stdout: string[] = [];
      const args = ['eval', '--dataset', join(dir, 'faces'), '--json', join(dir, jsonName), '--cache-dir', join(dir, 'cache'), ...extra];
      await evalProgram(openPool, stdout).parseAsync(['node', 'facegate', ...args]);
      return { stdout: stdout.join(''), json: JSON.parse(await readFile(join(dir, jsonName), 'utf8')) as EvaluationJson & Record<string, unknown> };
    };

    const first = await run('first.json');
    expect(counts).toEqual({ opened: 1, analyzed: dataset.images });
    const json = first.json;
    for (const key of ['auc', 'accuracy', 'tar_at_far', 'rank1', 'open_set', 'thresholds', 'failures', 'lfw']) expect(json).toHaveProperty(key);
    expect(json.engine).toBe(config.vision.engine);
    expect(json.model_id).toEqual(expect.any(String));
    expect(json.counts).toMatchObject({ identities: dataset.identities, images: dataset.images, embedded: dataset.images - 1, failures: 1 });
    expect(json.failures).toEqual([{ path: join(dir, 'faces', 'person1', '20-no-face.jpg'), reason: 'no face found' }]);
    // Variants of one crop are the same face: verification and identification must be near perfect.
    expect(json.auc).toBeGreaterThan(0.95);
    expect(json.accuracy!.mean).toBeGreaterThan(0.9);
    expect(json.accuracy!.std).toBeGreaterThanOrEqual(0);
    expect(json.tar_at_far['0.01']!.tar).toBeGreaterThan(0.8);
    expect(json.tar_at_far['0.01']!.achieved_far).toBeLessThanOrEqual(0.01);
    expect(json.tar_at_far['0.001']!.threshold).toBeGreaterThan(-1);
    expect(json.rank1).toBe(1);
    expect(json.rank1_detail).toEqual({ correct: 2 * dataset.identities, probes: 2 * dataset.identities, gallery_identities: dataset.identities });
    expect(json.open_set!.unknown_probes).toBe(3);
    expect(json.open_set!.unknown_accept).toBeGreaterThanOrEqual(0);
    expect(json.open_set!.unknown_accept).toBeLessThanOrEqual(1);
    expect(json.open_set!.known_accept).toBeGreaterThan(0.5);
    expect(json.open_set!.at_threshold.unknown_accept).toBe(0);
    expect(json.thresholds!.verify).toBeGreaterThan(0);
    expect(json.thresholds!.verify).toBeLessThan(1);
    expect(json.thresholds!.search).toBeGreaterThanOrEqual(json.thresholds!.verify!);
    expect(json.lfw).toBeNull();
    expect(first.stdout).toMatch(/ROC AUC/);
    expect(first.stdout).toMatch(/rank-1 +100\.00%/);
    expect(first.stdout).toContain('20-no-face.jpg: no face found');

    const second = await run('second.json');
    expect(counts).toEqual({ opened: 1, analyzed: dataset.images });
    expect(second.json.counts).toMatchObject({ from_cache: dataset.images, engine_calls: 0 });
    for (const key of ['auc', 'accuracy', 'tar_at_far', 'rank1', 'open_set', 'thresholds', 'failures']) expect(second.json[key]).toEqual(json[key]);

    await run('third.json', ['--no-cache']);
    expect(counts).toEqual({ opened: 2, analyzed: 2 * dataset.images });
    expect(await readdir(join(dir, 'cache'))).toHaveLength(1);
  });

  it('runs the LFW protocol on a pairs file', async () => {
    // Lay the dataset out as LFW does (Name/Name_0001.jpg) with a 2-fold pairs list.
    const lfw = join(dir, 'lfw');
    const names = Array.from({ length: dataset.identities }, (_, i) => `Person_${i + 1}`);
    for (const [i, name] of names.entries()) {
      await mkdir(join(lfw, name), { recursive: true });
      for (const [k, file] of ['1.jpg', '2.jpg', '10.jpg'].entries()) {
        await writeFile(join(lfw, name, `${name}_000${k + 1}.jpg`), await readFile(join(dir, 'faces', `person${i + 1}`, file)));
      }
    }
    const [a, b, c, d] = names as [string, string, string, string];
    const pairs = ['2 2', `${a} 1 2`, `${b} 1 3`, `${a} 1 ${b} 1`, `${c} 2 ${d} 3`, `${c} 1 3`, `${d} 2 3`, `${c} 1 ${a} 3`, `${d} 1 ${b} 2`];
    await writeFile(join(dir, 'pairs.txt'), pairs.join('\n'));
    const { counts, openPool } = countingPool();
    const stdout: string[] = [];
    await evalProgram(openPool, stdout).parseAsync([
      'node',
      'facegate',
      'eval',
      '--lfw-pairs',
      join(dir, 'pairs.txt'),
      '--images',
      lfw,
      '--json',
      join(dir, 'lfw.json'),
      '--cache-dir',
      join(dir, 'cache'),
    ]);
    // Same bytes as the dataset's images: every embedding comes from the cache.
    expect(counts.analyzed).toBe(0);
    const json = JSON.parse(await readFile(join(dir, 'lfw.json'), 'utf8')) as EvaluationJson;
    expect(json.lfw).toMatchObject({ mean: 1, std: 0 });
    expect(json.lfw!.folds).toHaveLength(2);
    expect(json.counts).toMatchObject({ genuine_pairs: 4, impostor_pairs: 4, failures: 0 });
    expect(json.rank1).toBeNull();
    expect(json.open_set).toBeNull();
    expect(stdout.join('')).toMatch(/LFW 2-fold accuracy +100\.00% ± 0\.00%/);
    expect(existsSync(join(dir, 'lfw.json'))).toBe(true);
  });
});
