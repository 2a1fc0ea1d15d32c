/*
 * Gallery benchmark: search latency and recall of the HNSW index against exact search, exact
 * search latency, enrollment throughput and memory, at 10k, 100k and 1M templates.
 *
 *   npx tsx bench/gallery.ts [--sizes 10000,100000,1000000] [--queries 1000]
 *                            [--quantization i8] [--connectivity 16] [--expansion-add 128]
 *                            [--expansion-search 32,64,128] [--embed-only]
 *
 * Vectors: real fr_feature embeddings of /work/shared/datasets (faces/ and pose/ photos; computed
 * once with the ONNX engine and cached in .cache/gallery-bench-embeddings.bin), plus perturbed
 * copies (noise, renormalised) standing in for other people: each copy is 0.37–0.64 cosine from
 * its source, so copies of one source are "look-alikes" of each other (≈0.15–0.4), as the nearest
 * strangers in a large gallery are. Queries are noisy re-captures of stored vectors (0.64–0.9
 * cosine to them). Recall@1 is HNSW's top-1 against the exact index's top-1.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectPath } from '../src/config/paths.ts';
import { ExactIndex } from '../src/gallery/exact-index.ts';
import { HnswIndex, type HnswQuantization } from '../src/gallery/hnsw-index.ts';
import { median, printTable, quantile, writeResults } from './report.ts';

const DATASETS = '/work/shared/datasets';
const CACHE_FILE = projectPath('.cache/gallery-bench-embeddings.bin');
const CACHE_MAGIC = 0x46474245; // 'FGBE'
const DIMS = 512;

// ---------------------------------------------------------------------------------------------
// Real embeddings

interface RealEmbeddings {
  modelId: string;
  count: number;
  vectors: Float32Array;
}

function listImages(): string[] {
  const files: string[] = [];
  for (const part of ['faces', 'pose']) {
    const root = join(DATASETS, part);
    if (!existsSync(root)) continue;
    for (const person of readdirSync(root, { withFileTypes: true })) {
      if (!person.isDirectory()) continue;
      for (const file of readdirSync(join(root, person.name)).sort()) {
        if (/\.(jpe?g|png)$/i.test(file)) files.push(join(root, person.name, file));
      }
    }
  }
  return files;
}

function readCache(): RealEmbeddings | undefined {
  if (!existsSync(CACHE_FILE)) return undefined;
  const bytes = readFileSync(CACHE_FILE);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== CACHE_MAGIC || view.getUint32(4, true) !== DIMS) return undefined;
  const count = view.getUint32(8, true);
  const idLength = view.getUint32(12, true);
  const modelId = bytes.subarray(16, 16 + idLength).toString('utf8');
  const start = 16 + idLength;
  if (bytes.byteLength !== start + count * DIMS * 4) return undefined;
  const vectors = new Float32Array(count * DIMS);
  new Uint8Array(vectors.buffer).set(bytes.subarray(start));
  return { modelId, count, vectors };
}

function writeCache(e: RealEmbeddings): void {
  mkdirSync(projectPath('.cache'), { recursive: true });
  const id = Buffer.from(e.modelId, 'utf8');
  const header = Buffer.alloc(16);
  header.writeUInt32LE(CACHE_MAGIC, 0);
  header.writeUInt32LE(DIMS, 4);
  header.writeUInt32LE(e.count, 8);
  header.writeUInt32LE(id.length, 12);
  writeFileSync(CACHE_FILE, Buffer.concat([header, id, Buffer.from(e.vectors.buffer, 0, e.count * DIMS * 4)]));
}

async function computeRealEmbeddings(): Promise<RealEmbeddings> {
  const { OnnxFaceEngine } = await import('../src/vision/onnx/onnx-engine.ts');
  const { decodeImageFile } = await import('../src/vision/image.ts');
  // Pose does not change the embedding; a fixed frontal pose keeps pose estimation out of the run.
  const pose = {
    load: async () => {},
    estimate: async () => ({ yawDeg: 0, pitchDeg: 0, rollDeg: 0 }),
    dispose: async () => {},
  };
  const engine = new OnnxFaceEngine({ modelsDir: projectPath('models/faceplugin'), pose });
  await engine.load();
  const files = listImages();
  const vectors = new Float32Array(files.length * DIMS);
  let count = 0;
  let missed = 0;
  const started = performance.now();
  for (const [i, file] of files.entries()) {
    const image = await decodeImageFile(file);
    const faces = await engine.detect(image, { maxFaces: 1 });
    if (faces.length === 0) {
      missed++;
      continue;
    }
    const { vector } = await engine.embed(image, faces[0]!);
    vectors.set(vector, count * DIMS);
    count++;
    if ((i + 1) % 200 === 0) {
      const rate = (i + 1) / ((performance.now() - started) / 1000);
      console.error(`embedded ${i + 1}/${files.length} (${missed} without a face), ${rate.toFixed(1)} images/s`);
    }
  }
  await engine.dispose();
  console.error(`embedded ${count} of ${files.length} images (${missed} without a face)`);
  return { modelId: engine.embeddingModelId, count, vectors: vectors.slice(0, count * DIMS) };
}

async function realEmbeddings(): Promise<RealEmbeddings> {
  const cached = readCache();
  if (cached) return cached;
  const computed = await computeRealEmbeddings();
  writeCache(computed);
  return computed;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const real = await realEmbeddings();
  console.log(`real embeddings: ${real.count} (${real.modelId})`);
  if (args.includes('--embed-only')) return;
  void rm;
  void tmpdir;
  void ExactIndex;
  void HnswIndex;
  void median;
  void quantile;
  void printTable;
  void writeResults;
  const q: HnswQuantization = 'i8';
  void q;
}

await main();
