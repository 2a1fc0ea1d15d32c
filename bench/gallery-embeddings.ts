/*
 * The real fr_feature embeddings of /work/shared/datasets (faces/ and pose/ photos) that the
 * gallery benchmarks build their synthetic people from: computed once with the ONNX engine
 * (≈75 s) and cached in .cache/gallery-bench-embeddings.bin.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../src/config/paths.ts';
import { DIMS, type RealEmbeddings } from './gallery-people.ts';

const DATASETS = '/work/shared/datasets';
const CACHE_FILE = projectPath('.cache/gallery-bench-embeddings.bin');
const CACHE_MAGIC = 0x46474246; // 'FGBF': vectors + identity labels

function listImages(): { file: string; identity: string }[] {
  const files: { file: string; identity: string }[] = [];
  for (const part of ['faces', 'pose']) {
    const root = join(DATASETS, part);
    if (!existsSync(root)) continue;
    for (const person of readdirSync(root, { withFileTypes: true })) {
      if (!person.isDirectory()) continue;
      for (const file of readdirSync(join(root, person.name)).sort()) {
        if (/\.(jpe?g|png)$/i.test(file)) files.push({ file: join(root, person.name, file), identity: `${part}/${person.name}` });
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
  if (bytes.byteLength !== start + count * 4 + count * DIMS * 4) return undefined;
  const identities = new Uint32Array(count);
  new Uint8Array(identities.buffer).set(bytes.subarray(start, start + count * 4));
  const vectors = new Float32Array(count * DIMS);
  new Uint8Array(vectors.buffer).set(bytes.subarray(start + count * 4));
  return { modelId, count, vectors, identities };
}

function writeCache(e: RealEmbeddings): void {
  mkdirSync(projectPath('.cache'), { recursive: true });
  const id = Buffer.from(e.modelId, 'utf8');
  const header = Buffer.alloc(16);
  header.writeUInt32LE(CACHE_MAGIC, 0);
  header.writeUInt32LE(DIMS, 4);
  header.writeUInt32LE(e.count, 8);
  header.writeUInt32LE(id.length, 12);
  const labels = Buffer.from(e.identities.buffer, 0, e.count * 4);
  writeFileSync(CACHE_FILE, Buffer.concat([header, id, labels, Buffer.from(e.vectors.buffer, 0, e.count * DIMS * 4)]));
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
  const identities = new Uint32Array(files.length);
  const identityNumbers = new Map<string, number>();
  let count = 0;
  let missed = 0;
  const started = performance.now();
  for (const [i, { file, identity }] of files.entries()) {
    const image = await decodeImageFile(file);
    const faces = await engine.detect(image, { maxFaces: 1 });
    if (faces.length === 0) {
      missed++;
      continue;
    }
    const { vector } = await engine.embed(image, faces[0]!);
    vectors.set(vector, count * DIMS);
    if (!identityNumbers.has(identity)) identityNumbers.set(identity, identityNumbers.size);
    identities[count] = identityNumbers.get(identity)!;
    count++;
    if ((i + 1) % 200 === 0) {
      const rate = (i + 1) / ((performance.now() - started) / 1000);
      console.error(`embedded ${i + 1}/${files.length} (${missed} without a face), ${rate.toFixed(1)} images/s`);
    }
  }
  await engine.dispose();
  console.error(`embedded ${count} of ${files.length} images (${missed} without a face)`);
  return { modelId: engine.embeddingModelId, count, vectors: vectors.slice(0, count * DIMS), identities: identities.slice(0, count) };
}

export async function realEmbeddings(): Promise<RealEmbeddings> {
  const cached = readCache();
  if (cached) return cached;
  const computed = await computeRealEmbeddings();
  writeCache(computed);
  return computed;
}

