import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * The one configuration tree. Every field has a one-line doc and a default; unknown keys are
 * rejected. Loaded once at start from an optional JSON file and FACEGATE_* environment
 * variables (see loadConfig), then passed down: nothing else reads the environment.
 */

const imageLimitsSchema = z.strictObject({
  /** Largest encoded image accepted, in bytes. */
  maxBytes: z.number().int().positive().default(15 * 1024 * 1024),
  /** Largest decoded image accepted, in pixels (width × height); guards against decompression bombs. */
  maxPixels: z.number().int().positive().default(40_000_000),
  /** Largest side the pipeline works on, in pixels; larger images are scaled down after decoding. */
  maxSidePx: z.number().int().positive().default(1920),
  /** Accepted encoded formats, as sharp names them. */
  formats: z.array(z.enum(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif'])).default(['jpeg', 'png', 'webp']),
});

const qualitySchema = z.strictObject({
  /** Smallest face accepted for recognition or enrollment: the shorter side of its box, in pixels. */
  minFaceSizePx: z.number().positive().default(48),
  /** Lowest sharpness accepted (variance of the Laplacian on a 112-px grey face crop). */
  minSharpness: z.number().nonnegative().default(15),
  /** Darkest mean face brightness accepted, 0..255. */
  minBrightness: z.number().min(0).max(255).default(30),
  /** Brightest mean face brightness accepted, 0..255. */
  maxBrightness: z.number().min(0).max(255).default(210),
  /** Lowest face contrast accepted (standard deviation of grey levels, 0..255). */
  minContrast: z.number().min(0).max(255).default(18),
  /** Largest |yaw| accepted for recognition, in degrees (estimates run low at large angles: 40 refuses 87% of |yaw| ≥ 60°). */
  maxYawDeg: z.number().min(0).max(90).default(40),
  /** Largest |pitch| accepted for recognition, in degrees. */
  maxPitchDeg: z.number().min(0).max(90).default(25),
});

const visionSchema = z.strictObject({
  /**
   * Which face engine runs: 'onnx' (fr_detect + fr_landmark + fr_feature, the default, chosen by
   * measurement), 'human' (Human's BlazeFace + mesh + faceres), or 'human-fr' (Human's BlazeFace +
   * mesh for detection and landmarks, fr_feature for the embedding).
   */
  engine: z.enum(['onnx', 'human', 'human-fr']).default('onnx'),
  /** Worker threads running the engine; each holds its own single-threaded model sessions. */
  workers: z.number().int().min(1).max(64).default(availableParallelism()),
  /** Folder holding the faceplugin ONNX models (installed by `npm install`). */
  modelsDir: z.string().default('models/faceplugin'),
  /** Most faces reported per image. */
  maxFaces: z.number().int().min(1).max(100).default(20),
  /**
   * Images whose larger side exceeds this get an extra tiled detector pass for small faces when the
   * caller asks for it (uploaded photos do, camera frames don't); 0 = never. In pixels.
   */
  smallFaceTilingAboveSidePx: z.number().int().min(0).default(960),
  /** Detector confidence below which a detection is dropped; unset = the engine's calibrated default. */
  minFaceScore: z.number().min(0).max(1).optional(),
  /** Liveness score (0..1) below which a face is treated as a spoof. */
  livenessThreshold: z.number().min(0).max(1).default(0.2),
  /** Jobs allowed to wait for a worker before new ones are refused as overloaded. */
  maxQueue: z.number().int().min(1).default(64),
  /** A job taking longer than this is failed and its worker replaced, in milliseconds. */
  jobTimeoutMs: z.number().int().positive().default(30_000),
  image: imageLimitsSchema.default(imageLimitsSchema.parse({})),
  quality: qualitySchema.default(qualitySchema.parse({})),
});

const identitySchema = z.strictObject({
  /**
   * One-to-one verification: cosine similarity at or above this means "same person". Unset = the
   * value `facegate eval` calibrated for the engine's embedding model (see calibratedThresholds).
   */
  verifyThreshold: z.number().min(-1).max(1).optional(),
  /**
   * One-to-many search: the best person must reach this cosine similarity to be named. Unset = the
   * calibrated value for the embedding model; it is stricter than verification, because a search
   * gives an impostor as many chances as there are people enrolled.
   */
  searchThreshold: z.number().min(-1).max(1).optional(),
  /** The best person must lead the runner-up person by this much cosine similarity, else the answer is "ambiguous". */
  minMargin: z.number().min(0).max(1).default(0.05),
  /** How a person's templates become one score: their best template, or the mean of their k best. */
  scoring: z.enum(['best', 'mean-top-k']).default('best'),
  /** k for scoring = "mean-top-k". */
  topK: z.number().int().min(1).max(20).default(3),
  /** Templates retrieved per search before they are grouped per person. */
  searchK: z.number().int().min(1).max(200).default(20),
  /** Refuse a face whose liveness is below vision.livenessThreshold ("spoof_suspected") when recognising. */
  requireLiveness: z.boolean().default(true),
  /** "cosine" (gallery search, the default) or "svm" (a classifier trained on the gallery, see POST /api/v1/system/train-model). */
  classifier: z.enum(['cosine', 'svm']).default('cosine'),
});

const gallerySchema = z.strictObject({
  /** A model's index switches from exact search to HNSW above this many templates. */
  hnswAboveTemplates: z.number().int().min(0).default(20_000),
  /** Save the in-memory index under dataDir/gallery this often (it is rebuilt from the store when missing or out of step), in milliseconds. */
  saveEveryMs: z.number().int().min(1000).default(60_000),
});

const urlFetchSchema = z.strictObject({
  /** Largest image fetched from a URL, in bytes. */
  maxBytes: z.number().int().positive().default(15 * 1024 * 1024),
  /** Give up on a URL after this long, in milliseconds. */
  timeoutMs: z.number().int().positive().default(10_000),
  /** Redirects followed at most (each target is checked again). */
  maxRedirects: z.number().int().min(0).max(10).default(3),
  /** Allow URLs that resolve to private, loopback or link-local addresses (off: blocks SSRF into your network). */
  allowPrivateNetworks: z.boolean().default(false),
  /** Content types accepted from a URL. */
  contentTypes: z.array(z.string()).default(['image/jpeg', 'image/png', 'image/webp']),
});

const serverSchema = z.strictObject({
  /** Address the HTTP server listens on. */
  host: z.string().default('0.0.0.0'),
  /** TCP port of the HTTP server. */
  port: z.number().int().min(0).max(65535).default(8080),
  /** Log level of the structured (pino) log. */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const databaseSchema = z.strictObject({
  /** PostgreSQL connection URL (postgres://…); unset = the embedded SQLite file under dataDir. Also read from DATABASE_URL. */
  url: z.string().optional(),
  /** Largest number of pooled PostgreSQL connections. */
  poolSize: z.number().int().min(1).max(100).default(10),
});

const privacySchema = z.strictObject({
  /** Store aligned face thumbnails and snapshots; false = Facegate keeps no face images at all, only embeddings. */
  storeImages: z.boolean().default(true),
});

export const configSchema = z.strictObject({
  /** Folder for the embedded database and other state. */
  dataDir: z.string().default('data'),
  database: databaseSchema.default(databaseSchema.parse({})),
  privacy: privacySchema.default(privacySchema.parse({})),
  server: serverSchema.default(serverSchema.parse({})),
  vision: visionSchema.default(visionSchema.parse({})),
  identity: identitySchema.default(identitySchema.parse({})),
  gallery: gallerySchema.default(gallerySchema.parse({})),
  urlFetch: urlFetchSchema.default(urlFetchSchema.parse({})),
});

export type Config = z.infer<typeof configSchema>;
export type VisionConfig = Config['vision'];
export type QualityLimits = VisionConfig['quality'];
export type ImageLimits = VisionConfig['image'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function snakeToCamel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function parseEnvValue(raw: string): Json {
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

/**
 * Turns FACEGATE_* variables into a partial config tree: `__` separates levels and each level is
 * UPPER_SNAKE for a camelCase key, so FACEGATE_VISION__MAX_FACES=5 sets vision.maxFaces.
 * PORT and DATABASE_URL are honoured as the usual shorthands.
 */
export function configFromEnv(env: NodeJS.ProcessEnv): Record<string, Json> {
  const tree: Record<string, Json> = {};
  const set = (path: string[], value: Json): void => {
    let node = tree;
    path.slice(0, -1).forEach((key) => {
      const next = node[key];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, Json>;
    });
    node[path[path.length - 1]!] = value;
  };
  if (env.PORT) set(['server', 'port'], parseEnvValue(env.PORT));
  if (env.DATABASE_URL) set(['database', 'url'], env.DATABASE_URL);
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('FACEGATE_') || raw === undefined || name === 'FACEGATE_CONFIG') continue;
    const path = name.slice('FACEGATE_'.length).split('__').map(snakeToCamel);
    if (path.some((p) => p === '')) continue;
    set(path, parseEnvValue(raw));
  }
  return tree;
}

function deepMerge(base: Record<string, Json>, over: Record<string, Json>): Record<string, Json> {
  const out: Record<string, Json> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] =
      value && typeof value === 'object' && !Array.isArray(value) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev, value)
        : value;
  }
  return out;
}

/** Validates a raw tree, turning zod's issues into one readable ConfigError. */
export function parseConfig(raw: unknown): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** A JSON config file; default $FACEGATE_CONFIG, else ./facegate.config.json when present. */
  file?: string;
  /** Highest-precedence overrides (CLI flags, tests). */
  overrides?: Record<string, unknown>;
}

/** Loads the effective config: defaults < file < environment < overrides. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const file = options.file ?? env.FACEGATE_CONFIG ?? (existsSync('facegate.config.json') ? 'facegate.config.json' : undefined);
  let fromFile: Record<string, Json> = {};
  if (file) {
    const path = resolve(file);
    try {
      fromFile = JSON.parse(readFileSync(path, 'utf8')) as Record<string, Json>;
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
    }
  }
  const merged = deepMerge(deepMerge(fromFile, configFromEnv(env)), (options.overrides ?? {}) as Record<string, Json>);
  return parseConfig(merged);
}

const SECRET_KEY = /(secret|password|token|key)$/i;

/** The config with secrets masked, for printing at start. */
export function maskedConfig(config: Config): unknown {
  const mask = (value: unknown, key: string): unknown => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mask(v, k)]));
    }
    if (typeof value !== 'string' || !value) return value;
    if (SECRET_KEY.test(key)) return '***';
    // A connection URL may carry a password: keep the host, hide the credentials.
    return key === 'url' ? value.replace(/\/\/([^@/]*)@/, '//***@') : value;
  };
  return mask(config, '');
}
