import type { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as tfCore from '@tensorflow/tfjs-core';
import type * as HumanPackage from '@vladmandic/human';
import type { Config, Human } from '@vladmandic/human';
import type { RgbImage } from '../../domain/types.ts';
import { ModelMissingError, VisionError } from '../errors.ts';

type HumanModule = typeof HumanPackage;
/** The tfjs namespace Human runs on (Human types it as any; tfjs-core's types cover what we use). */
export type HumanTf = typeof tfCore;
export type Tensor = tfCore.Tensor;
export type { Human };

/** The part of a tfjs-converter GraphModel this project uses. */
export interface GraphModel {
  readonly inputs: { shape?: number[] }[];
  readonly executor?: unknown;
  execute(input: Tensor): Tensor | Tensor[];
  dispose(): void;
}

/** The Human models this project uses, by the name Human gives them. */
export type HumanModelName = 'blazeface' | 'facemesh' | 'faceres' | 'antispoof' | 'liveness';

export interface HumanLoadOptions {
  /** Faces kept per image (Human's face.detector.maxDetected; its default of 1 suits a webcam demo). */
  maxFaces: number;
  /** BlazeFace and mesh confidence below which a face is dropped (Human's face.detector.minConfidence). */
  minFaceScore: number;
  /** Load faceres (the 1024-d descriptor). */
  faceres?: boolean;
  antispoof?: boolean;
  liveness?: boolean;
  /**
   * Let Human's own detect() run the loaded faceres/antispoof/liveness models on every face. Off for
   * the engine, which runs them itself only when asked; on for the "Human as shipped" baseline.
   */
  runFaceModelsInDetect?: boolean;
  /** Human's face.detector.rotation: straighten rolled faces before the mesh (off by default in Human). */
  rotation?: boolean;
  /** Human's own console logging. */
  debug?: boolean;
  /** Folder holding Human's model files; default: the models/ folder of the installed package. */
  modelsDir?: string;
}

/** A loaded, warmed-up Human instance. Release it when done: Human shares loaded models between its instances in a thread. */
export interface LoadedHuman {
  readonly human: Human;
  readonly tf: HumanTf;
  /** The graph model of each requested model name. */
  readonly models: Readonly<Partial<Record<HumanModelName, GraphModel>>>;
  /** Drops this user; the last user of the thread disposes the models' weights. */
  release(): void;
}

const require = createRequire(import.meta.url);

/**
 * The folder of the installed @vladmandic/human package. Its exports map lists subpaths without the
 * leading "./", so Node refuses them all (even package.json); the main entry still resolves.
 */
export function humanPackageDir(): string {
  let dir = path.dirname(require.resolve('@vladmandic/human'));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new VisionError('engine_unavailable', 'cannot locate the @vladmandic/human package folder');
    dir = parent;
  }
  return dir;
}

/** Where Human's model files are installed (they ship inside the npm package). */
export function humanModelsDir(): string {
  return path.join(humanPackageDir(), 'models');
}

/** The wasm binaries of the installed tfjs wasm backend, with a trailing slash as tfjs expects. */
export function tfjsWasmDir(): string {
  const main = require.resolve('@tensorflow/tfjs-backend-wasm');
  // main is …/dist/index.js (or another file in dist/); the .wasm files sit beside it.
  const dist = path.dirname(main);
  if (!existsSync(path.join(dist, 'tfjs-backend-wasm-simd.wasm'))) {
    throw new VisionError('engine_unavailable', `tfjs wasm binaries not found in ${dist}`);
  }
  return dist + path.sep;
}

function loadHumanModule(): HumanModule {
  const file = path.join(humanPackageDir(), 'dist', 'human.node-wasm.js');
  try {
    return require(file) as HumanModule;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // human.node-wasm.js requires tfjs-core, tfjs-converter and tfjs-backend-wasm as separate packages.
    throw new VisionError('engine_unavailable', `cannot load Human's wasm build (${message.split('\n')[0]})`);
  }
}

/** Human's config for a server: no frame caching, no video-demo defaults, only face models. */
export function humanConfig(options: HumanLoadOptions): Partial<Config> {
  const runInDetect = options.runFaceModelsInDetect ?? false;
  return {
    backend: 'wasm',
    wasmPath: tfjsWasmDir(),
    modelBasePath: pathToFileURL(options.modelsDir ?? humanModelsDir()).href + '/',
    debug: options.debug ?? false,
    async: false,
    warmup: 'none',
    // Caching reuses the previous frame's faces when two inputs look alike: wrong for unrelated requests.
    cacheSensitivity: 0,
    cacheModels: false,
    validateModels: false,
    filter: { enabled: false, equalization: false, flip: false } as Config['filter'],
    gesture: { enabled: false },
    body: { enabled: false } as Config['body'],
    hand: { enabled: false } as Config['hand'],
    object: { enabled: false } as Config['object'],
    segmentation: { enabled: false } as Config['segmentation'],
    face: {
      enabled: true,
      detector: {
        maxDetected: options.maxFaces,
        minConfidence: options.minFaceScore,
        skipFrames: 0,
        skipTime: 0,
        rotation: options.rotation ?? false,
        return: false,
      },
      mesh: { enabled: true, keepInvalid: false },
      attention: { enabled: false },
      iris: { enabled: false },
      emotion: { enabled: false },
      description: { enabled: (options.faceres ?? false) && runInDetect, skipFrames: 0, skipTime: 0 },
      antispoof: { enabled: (options.antispoof ?? false) && runInDetect, skipFrames: 0, skipTime: 0 },
      liveness: { enabled: (options.liveness ?? false) && runInDetect, skipFrames: 0, skipTime: 0 },
    } as Config['face'],
  };
}

/**
 * Human loads models through tfjs-converter, which fetches URLs; Node's fetch has no file://. This load
 * router reads a file:// model.json and its weight shards from disk instead.
 */
function ensureFileLoadRouter(tf: HumanTf): void {
  // Registering twice would make tfjs find two handlers for one URL and refuse both.
  if (tf.io.getLoadHandlers('file:///probe/model.json').length > 0) return;
  const router = (url: string | string[]): tfCore.io.IOHandler | null => {
    if (typeof url !== 'string' || !url.startsWith('file://')) return null;
    const jsonPath = fileURLToPath(url);
    return {
      load: async () => {
        const modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tfCore.io.ModelJSON;
        return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
          const specs = manifest.flatMap((group) => group.weights);
          const shards = await Promise.all(
            manifest.flatMap((group) => group.paths).map((p) => readFile(path.join(path.dirname(jsonPath), p))),
          );
          const all = Buffer.concat(shards);
          return [specs, all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength)];
        });
      },
    };
  };
  // tfjs types a router as always returning a handler, but its registry skips routers that return null.
  tf.io.registerLoadRouter(router as Parameters<HumanTf['io']['registerLoadRouter']>[0]);
}

/** Names the file a model needs that is absent: its json, else a weight shard its manifest lists. */
function missingModelFile(modelsDir: string, name: string): string | null {
  const jsonPath = path.join(modelsDir, `${name}.json`);
  if (!existsSync(jsonPath)) return jsonPath;
  try {
    const manifest = JSON.parse(readFileSync(jsonPath, 'utf8')).weightsManifest as { paths: string[] }[];
    for (const shard of manifest.flatMap((group) => group.paths)) {
      const shardPath = path.join(modelsDir, shard);
      if (!existsSync(shardPath)) return shardPath;
    }
  } catch {
    return jsonPath; // unreadable json counts as missing
  }
  return null;
}

function requestedModels(options: HumanLoadOptions): HumanModelName[] {
  const names: HumanModelName[] = ['blazeface', 'facemesh'];
  if (options.faceres) names.push('faceres');
  if (options.antispoof) names.push('antispoof');
  if (options.liveness) names.push('liveness');
  return names;
}

// Human keeps each loaded GraphModel in a module-level variable: every Human instance of a thread
// shares them. So weights may be disposed only when the thread's last Human user releases them.
const sharedState = { users: 0, models: new Set<GraphModel>() };

/**
 * Creates a Human instance on the wasm backend with local models, checks that every requested model
 * loaded (ModelMissingError names the file otherwise), and runs each model once so that the first real
 * call is not the slow one.
 */
export async function loadHuman(options: HumanLoadOptions): Promise<LoadedHuman> {
  const modelsDir = options.modelsDir ?? humanModelsDir();
  const names = requestedModels(options);
  for (const name of names) {
    const missing = missingModelFile(modelsDir, name);
    if (missing) throw new ModelMissingError(missing);
  }
  const { Human: HumanClass } = loadHumanModule();
  const config = humanConfig(options);
  const human = new HumanClass(config);
  const tf = human.tf as HumanTf;
  ensureFileLoadRouter(tf);
  let models: Partial<Record<HumanModelName, GraphModel>>;
  const listenersBefore = processErrorListeners();
  try {
    models = await loadModels(human, tf, options, config, modelsDir, names);
  } catch (err) {
    // Free what did load (unless another user shares it), and since Human caches even a failed
    // model in module state, make the next load start afresh.
    for (const model of Object.values(human.models.models) as (GraphModel | null)[]) {
      if (model && !sharedState.models.has(model)) disposeQuietly(model);
    }
    human.reset();
    throw err;
  } finally {
    removeListenersAddedSince(listenersBefore);
  }
  sharedState.users++;
  for (const model of Object.values(models)) sharedState.models.add(model);
  let released = false;
  const handle: LoadedHuman = {
    human,
    tf,
    models,
    release() {
      if (released) return;
      released = true;
      sharedState.users--;
      if (sharedState.users > 0) return;
      for (const model of sharedState.models) model.dispose();
      sharedState.models.clear();
      // Makes the next load() in this thread reload models instead of reusing the disposed ones.
      human.reset();
    },
  };
  try {
    warmUpModels(tf, models);
    // One pass through Human's own pipeline too (resize, NMS and crop kernels have a first-call cost).
    const blank = tf.zeros([1, 128, 128, 3]);
    try {
      await human.detect(blank);
    } finally {
      blank.dispose();
    }
  } catch (err) {
    handle.release();
    throw err;
  }
  return handle;
}

async function loadModels(
  human: Human,
  tf: HumanTf,
  options: HumanLoadOptions,
  config: Partial<Config>,
  modelsDir: string,
  names: HumanModelName[],
): Promise<Partial<Record<HumanModelName, GraphModel>>> {
  // load() runs only the models its config enables; enable every requested one for loading.
  await human.load({
    face: {
      description: { enabled: options.faceres ?? false },
      antispoof: { enabled: options.antispoof ?? false },
      liveness: { enabled: options.liveness ?? false },
    },
  } as Partial<Config>);
  human.config.face.description!.enabled = config.face!.description!.enabled;
  human.config.face.antispoof!.enabled = config.face!.antispoof!.enabled;
  human.config.face.liveness!.enabled = config.face!.liveness!.enabled;
  if (tf.getBackend() !== 'wasm') {
    throw new VisionError('engine_unavailable', `Human runs on backend "${tf.getBackend()}", expected wasm`);
  }

  // A model that failed to load only logs inside Human; its stats tell.
  const stats = human.models.stats().modelStats;
  const models: Partial<Record<HumanModelName, GraphModel>> = {};
  for (const name of names) {
    const loaded = stats.find((s) => s.name === name)?.loaded === true;
    const model = human.models.models[name] as GraphModel | null | undefined;
    if (!loaded || !model || !model.executor) {
      throw new ModelMissingError(missingModelFile(modelsDir, name) ?? path.join(modelsDir, `${name}.json`));
    }
    models[name] = model;
  }
  return models;
}

const ERROR_EVENTS = ['uncaughtException', 'unhandledRejection'] as const;
type ErrorEvent = (typeof ERROR_EVENTS)[number];
type Listener = (...args: unknown[]) => void;
// process's typed overloads do not take a union of event names; its EventEmitter face does.
const processEvents: EventEmitter = process;

function processErrorListeners(): Map<ErrorEvent, Set<Listener>> {
  return new Map(ERROR_EVENTS.map((event) => [event, new Set(processEvents.listeners(event) as Listener[])]));
}

/**
 * The wasm backend's Emscripten runtime, when it starts, adds process-wide handlers that rethrow every
 * uncaught exception and unhandled rejection; removing them leaves that policy to the application.
 */
function removeListenersAddedSince(before: Map<ErrorEvent, Set<Listener>>): void {
  for (const event of ERROR_EVENTS) {
    for (const listener of processEvents.listeners(event) as Listener[]) {
      if (!before.get(event)!.has(listener)) processEvents.removeListener(event, listener);
    }
  }
}

function disposeQuietly(model: GraphModel): void {
  try {
    model.dispose();
  } catch {
    // a model whose load failed may have nothing to dispose
  }
}

/** Runs every model once on zeros: the first inference of a tfjs graph costs hundreds of ms. */
function warmUpModels(tf: HumanTf, models: Partial<Record<HumanModelName, GraphModel>>): void {
  for (const model of Object.values(models)) {
    const shape = model.inputs[0]?.shape?.map((d) => (d > 0 ? d : 1));
    if (!shape) continue;
    const input = tf.zeros(shape);
    const output = model.execute(input);
    tf.dispose([input, ...(Array.isArray(output) ? output : [output])] as never);
  }
}

/** An RgbImage as the [1, height, width, 3] tensor Human's detect() takes (int32 0..255; Human casts it to float). */
export function imageTensor(tf: HumanTf, image: RgbImage): Tensor {
  // Measured on 1920×1280: bytes → int32 tensor + Human's cast in wasm 7.6 CPU-ms, new Float32Array(bytes) alone 15.
  return tf.tensor4d(image.data, [1, image.height, image.width, 3], 'int32');
}

/** Live tensors in the tfjs instance Human runs on (for leak checks; valid with or without a loaded Human). */
export function humanTensorCount(): number {
  const requireFromHuman = createRequire(path.join(humanPackageDir(), 'dist', 'human.node-wasm.js'));
  const tf = requireFromHuman('@tensorflow/tfjs-core') as HumanTf;
  return tf.memory().numTensors;
}
