import { calibratedThresholds, embeddingModelIdFor } from '../vision/engine-factory.ts';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import type { Config } from '../config/config.ts';
import { parseLfwPairs } from '../domain/metrics.ts';
import { runToEnd } from '../domain/svm.ts';
import { compareOnDataset, formatClassifierComparison, type ClassifierComparison } from '../services/classifier-evaluation.ts';
import {
  embedImages,
  evaluateDataset,
  evaluateLfw,
  lfwImageFiles,
  listDataset,
  toJsonReport,
  type EmbedProgress,
  type EvalVisionPool,
  type EvaluationReport,
} from '../services/evaluation.service.ts';
import { DEFAULT_EMBEDDING_CACHE_DIR, EmbeddingCache, type EmbeddingCacheKey } from '../vision/embedding-cache.ts';
import { createVisionPool } from '../vision/vision-pool.ts';
import { configFromOptions, type GlobalOptions } from './options.ts';

/** What the eval command needs from the rest of the program; tests and main may replace any of it. */
export interface EvalCommandDeps {
  /** The effective config from the global options (default: configFromOptions). */
  loadConfig?: (options: GlobalOptions) => Config;
  /** Starts the vision pool; called only when some image is not cached (default: createVisionPool). */
  openPool?: (config: Config) => Promise<EvalVisionPool>;
  /**
   * The embedding model id and pipeline version of the configured engine, known without starting
   * it; both key the embedding cache. Without it, cache entries record their model id and are
   * redone when the running engine reports another.
   */
  describeEmbedding?: (config: Config) => { modelId: string; pipelineVersion: string } | undefined;
  /** Where the table goes (default: process.stdout). */
  stdout?: { write(text: string): unknown };
  /** Where progress goes (default: process.stderr; a bar when it is a TTY). */
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

interface EvalOptions {
  dataset?: string;
  lfwPairs?: string;
  images?: string;
  json?: string;
  cache: boolean;
  cacheDir: string;
  classifier?: 'cosine' | 'svm';
}

/** Bumped when the evaluation's use of the pipeline changes what an entry means. */
const EVAL_CACHE_VERSION = 'eval1';

/**
 * The cache key: engine, model id, and a digest of the vision settings, so that a change of
 * detector threshold, image limits or any setting added later starts a fresh cache. Settings that
 * cannot change an embedding (worker count, queue, timeouts, liveness, quality limits) are left out.
 */
export function evalCacheKey(config: Config, described?: { modelId: string; pipelineVersion: string }): EmbeddingCacheKey {
  const { workers: _w, maxQueue: _q, jobTimeoutMs: _t, livenessThreshold: _l, quality: _quality, ...settings } = config.vision;
  const digest = createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 10);
  return {
    engine: config.vision.engine,
    modelId: described?.modelId ?? '',
    pipelineVersion: `${described?.pipelineVersion ?? EVAL_CACHE_VERSION}-${digest}`,
  };
}

/** A cli-progress bar on a terminal; a plain line every few seconds otherwise (logs, CI). */
function progressReporter(stream: NodeJS.WritableStream & { isTTY?: boolean }, label: string) {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} [{bar}] {value}/{total} images | {cached} cached | {failures} failed | {eta_formatted} left`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(p: EmbedProgress): void {
        if (!started) {
          bar.start(p.total, 0, { cached: 0, failures: 0 });
          started = true;
        }
        bar.update(p.done, { cached: p.fromCache, failures: p.failures });
      },
      stop(): void {
        if (started) bar.stop();
      },
    };
  }
  const startMs = Date.now();
  let lastMs = 0;
  let last: EmbedProgress | undefined;
  let printed: EmbedProgress | undefined;
  const line = (p: EmbedProgress): void => {
    printed = p;
    lastMs = Date.now();
    const seconds = (lastMs - startMs) / 1000;
    stream.write(`${label}: ${p.done}/${p.total} images, ${p.fromCache} cached, ${p.failures} failed, ${seconds.toFixed(0)} s\n`);
  };
  return {
    update(p: EmbedProgress): void {
      last = p;
      if (Date.now() - lastMs >= 5000) line(p);
    },
    stop(): void {
      if (last && last !== printed) line(last);
    },
  };
}

const pct = (x: number | null | undefined, digits = 2): string => (x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(digits)}%`);
const num = (x: number | null | undefined, digits = 4): string =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : Number.isFinite(x) ? x.toFixed(digits) : x > 0 ? '+∞' : '−∞';

/** The report as an aligned two-column table. */
export function formatReport(report: EvaluationReport, config: Config, source: string): string {
  const rows: [string, string][] = [];
  const c = report.counts;
  rows.push(['engine / model', `${config.vision.engine} / ${report.modelId ?? '—'}`]);
  rows.push(['identities / images', `${c.identities} / ${c.images} (${report.failures.length} failed, ${c.fromCache} from cache, ${c.engineCalls} analysed)`]);
  rows.push(['genuine / impostor pairs', `${c.genuinePairs} / ${c.impostorPairs}`]);
  rows.push(['ROC AUC', num(report.auc)]);
  if (report.accuracy) {
    const cv = report.accuracy.cv;
    const kind = report.accuracy.balanced ? 'balanced accuracy' : 'accuracy';
    rows.push([`${kind}, ${cv?.folds.length ?? 0}-fold CV`, cv ? `${pct(cv.mean)} ± ${pct(cv.std)}` : '—']);
    rows.push([`best ${kind} (all scores)`, `${pct(report.accuracy.accuracy)} at ${num(report.accuracy.threshold)}`]);
  }
  for (const far of ['0.01', '0.001'] as const) {
    const t = report.tarAtFar[far];
    rows.push([`TAR @ FAR ${Number(far) * 100}%`, t ? `${num(t.tar)} at ${num(t.threshold)} (FAR ${pct(t.achievedFar, 3)})` : '—']);
  }
  if (report.lfw) rows.push([`LFW ${report.lfw.folds.length}-fold accuracy`, `${pct(report.lfw.mean)} ± ${pct(report.lfw.std)}`]);
  if (report.mode === 'dataset') {
    rows.push(['rank-1', report.rank1 ? `${pct(report.rank1.rate)} (${report.rank1.correct}/${report.rank1.probes})` : '—']);
    const os = report.openSet;
    if (os) {
      const at = (r: typeof os.atConfig) =>
        `unknowns accepted ${pct(r.unknownAccept)} of ${r.unknowns}, knowns named right ${pct(r.knownAccept)} of ${r.knowns}, wrong ${pct(r.knownMisidentified)}`;
      rows.push([`open set at search ${num(os.atConfig.threshold, 3)} (config)`, at(os.atConfig)]);
      rows.push([`open set at ${num(os.atUnknown1pct.threshold)} (unknowns ≤ 1%)`, at(os.atUnknown1pct)]);
    } else {
      rows.push(['open set', '—']);
    }
  }
  if (report.thresholds) {
    const t = report.thresholds;
    rows.push(['recommended verify threshold', `${num(t.verify)} (${t.verifyBasis === 'far_0.001' ? 'TAR @ FAR 0.1%' : 'best accuracy'}; in force ${calibratedThresholds(config).verify})`]);
    if (t.search !== null) {
      rows.push(['recommended search threshold', `${num(t.search)} (${t.searchBasis === 'verify' ? 'raised to verify' : 'open set, unknowns ≤ 1%'}; in force ${calibratedThresholds(config).search})`]);
    }
  }
  const width = Math.max(...rows.map(([label]) => label.length));
  const lines = [`Facegate recognition evaluation: ${source}`, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)];
  if (report.failures.length > 0) {
    lines.push(`Failures (${report.failures.length}):`);
    for (const f of report.failures) lines.push(`  ${f.path}: ${f.reason}`);
  }
  return `${lines.join('\n')}\n`;
}

async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, 'utf8');
  await rename(tmp, path);
}

/** Registers `facegate eval`: recognition accuracy on a labelled folder or on the LFW pairs protocol. */
export function registerEvalCommand(program: Command, deps: EvalCommandDeps = {}): void {
  const loadConfig = deps.loadConfig ?? ((options: GlobalOptions) => configFromOptions(options));
  const openPool = deps.openPool ?? ((config: Config) => createVisionPool(config.vision));
  program
    .command('eval')
    .description(
      'measure recognition: ROC AUC, accuracy (10-fold), TAR at FAR 1% and 0.1%, rank-1, open-set search and recommended thresholds ' +
        'on a folder of identity folders (--dataset), or LFW 10-fold accuracy (--lfw-pairs with --images)',
    )
    .option('--dataset <dir>', 'folder with one sub-folder of images per identity')
    .option('--lfw-pairs <file>', "LFW pairs.txt (10 folds × 300 matched + 300 mismatched pairs)")
    .option('--images <dir>', 'LFW images folder holding <Name>/<Name>_NNNN.jpg')
    .option('--json <file>', 'also write the results as JSON')
    .option('--no-cache', 'neither read nor write the embedding cache')
    .option('--cache-dir <dir>', 'embedding cache folder', DEFAULT_EMBEDDING_CACHE_DIR)
    .addOption(new Option('--classifier <kind>', 'with --dataset, svm also compares the SVM (alone and with cosine fallback) against cosine on a half/half split').choices(['cosine', 'svm']))
    .addHelpText('after', '\nThe global options --engine onnx|human|human-fr, --workers N and --config FILE apply (facegate --engine human eval …).')
    .action(async (options: EvalOptions, command: Command) => {
      if (Boolean(options.dataset) === Boolean(options.lfwPairs)) command.error('facegate eval: give exactly one of --dataset DIR or --lfw-pairs FILE');
      if (options.lfwPairs && !options.images) command.error('facegate eval: --lfw-pairs needs --images DIR');
      const config = loadConfig(program.opts<GlobalOptions>());
      const stdout = deps.stdout ?? process.stdout;
      const stderr = deps.stderr ?? process.stderr;
      const startMs = Date.now();

      const cache = options.cache ? await EmbeddingCache.open(options.cacheDir, evalCacheKey(config, deps.describeEmbedding ? deps.describeEmbedding(config) : embeddingModelIdFor(config.vision))) : undefined;
      if (cache && cache.skippedLines > 0) stderr.write(`facegate eval: ignored ${cache.skippedLines} damaged or stale cache entries in ${cache.path}\n`);

      let report: EvaluationReport;
      let comparison: ClassifierComparison | undefined;
      let source: string;
      const progress = progressReporter(stderr, 'embedding');
      const embed = async (paths: string[]) => {
        try {
          return await embedImages(paths, { openPool: () => openPool(config), store: cache, onProgress: (p) => progress.update(p) });
        } finally {
          progress.stop();
        }
      };
      if (options.dataset) {
        source = `dataset ${options.dataset}`;
        const images = await listDataset(options.dataset);
        if (images.length === 0) command.error(`facegate eval: no images found in identity folders under ${options.dataset}`);
        const embedded = await embed(images.map((i) => i.path));
        report = evaluateDataset(images, embedded, { searchThreshold: calibratedThresholds(config).search });
        if (options.classifier === 'svm') {
          const { search, verify } = calibratedThresholds(config);
          comparison = runToEnd(compareOnDataset(images, embedded.outcomes, { searchThreshold: search, verifyThreshold: verify }));
        }
      } else {
        source = `LFW pairs ${options.lfwPairs} on ${options.images}`;
        const pairs = parseLfwPairs(await readFile(options.lfwPairs!, 'utf8'));
        const embedded = await embed(lfwImageFiles(pairs, options.images!));
        report = evaluateLfw(pairs, options.images!, embedded);
      }

      stdout.write(formatReport(report, config, source));
      if (comparison) stdout.write(formatClassifierComparison(comparison, calibratedThresholds(config).search));
      if (options.json) {
        const elapsedS = Number(((Date.now() - startMs) / 1000).toFixed(1));
        const json = toJsonReport(report, {
          engine: config.vision.engine,
          source: options.dataset ? { dataset: options.dataset } : { lfw_pairs: options.lfwPairs, images: options.images },
          config_thresholds: calibratedThresholds(config),
          cache: cache ? cache.path : null,
          elapsed_s: elapsedS,
          ...(comparison ? { classifier_comparison: comparison } : {}),
        });
        await writeJsonAtomic(options.json, json);
        stderr.write(`facegate eval: wrote ${options.json}\n`);
      }
    });
}
