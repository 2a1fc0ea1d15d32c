import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelMissingError } from '../../src/vision/errors.ts';
import { humanModelsDir, humanTensorCount, loadHuman, tfjsWasmDir } from '../../src/vision/human/human-loader.ts';

// Its own file: a failed model load leaves Human's module state behind, and vitest gives each file a fresh process.
describe('loadHuman', () => {
  let dir: string;
  const errorListeners = () => [process.listenerCount('uncaughtException'), process.listenerCount('unhandledRejection')];
  const errorListenersAtStart = errorListeners();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'facegate-human-models-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const copyModel = async (name: string) => {
    for (const ext of ['json', 'bin']) await copyFile(path.join(humanModelsDir(), `${name}.${ext}`), path.join(dir, `${name}.${ext}`));
  };

  it('finds the package models and the local wasm binaries (never the CDN default)', () => {
    expect(humanModelsDir()).toMatch(/@vladmandic[\\/]human[\\/]models$/);
    expect(tfjsWasmDir()).toMatch(/@tensorflow[\\/]tfjs-backend-wasm[\\/]dist[\\/]$/);
  });

  it('names a missing model.json', async () => {
    await copyModel('blazeface');
    const loading = loadHuman({ maxFaces: 1, minFaceScore: 0.5, modelsDir: dir });
    await expect(loading).rejects.toThrow(ModelMissingError);
    await expect(loading).rejects.toMatchObject({ modelPath: path.join(dir, 'facemesh.json') });
  });

  it('names a missing weight shard', async () => {
    await copyFile(path.join(humanModelsDir(), 'facemesh.json'), path.join(dir, 'facemesh.json'));
    await expect(loadHuman({ maxFaces: 1, minFaceScore: 0.5, modelsDir: dir })).rejects.toMatchObject({
      code: 'model_missing',
      modelPath: path.join(dir, 'facemesh.bin'),
    });
  });

  it('names a model whose weights fail to load', async () => {
    const bin = await readFile(path.join(humanModelsDir(), 'facemesh.bin'));
    await writeFile(path.join(dir, 'facemesh.bin'), bin.subarray(0, 1000));
    await expect(loadHuman({ maxFaces: 1, minFaceScore: 0.5, modelsDir: dir })).rejects.toMatchObject({
      code: 'model_missing',
      modelPath: path.join(dir, 'facemesh.json'),
    });
  });

  it('loads afresh after a failure, on wasm, and frees the weights on release', async () => {
    await copyModel('facemesh');
    let weightTensors = 0;
    for (const name of ['blazeface', 'facemesh']) {
      const manifest = JSON.parse(await readFile(path.join(dir, `${name}.json`), 'utf8')).weightsManifest as { weights: unknown[] }[];
      weightTensors += manifest.reduce((sum, group) => sum + group.weights.length, 0);
    }
    const loaded = await loadHuman({ maxFaces: 3, minFaceScore: 0.5, modelsDir: dir, liveness: false });
    let whileLoaded: number;
    try {
      expect(loaded.tf.getBackend()).toBe('wasm');
      expect(Object.keys(loaded.models).sort()).toEqual(['blazeface', 'facemesh']);
      expect(loaded.human.config.face.detector?.maxDetected).toBe(3);
      expect(loaded.human.config.cacheSensitivity).toBe(0);
      whileLoaded = humanTensorCount();
      expect(whileLoaded).toBeGreaterThan(weightTensors);
    } finally {
      loaded.release();
    }
    expect(humanTensorCount()).toBeLessThanOrEqual(whileLoaded - weightTensors);
  });

  it("leaves no process-wide error handlers of the wasm runtime behind", () => {
    expect(errorListeners()).toEqual(errorListenersAtStart);
  });
});
