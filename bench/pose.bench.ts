/**
 * Head-pose accuracy on Pointing'04 (the labelled photos in ../shared/datasets/pose), for each
 * pose estimator of the ONNX route, and what each costs in CPU-ms.
 *
 *   npx tsx bench/pose.bench.ts [--dataset ../shared/datasets/pose] [--mode both|box|detector] [--step 1] [--roll-step 4]
 *
 * Two ways to find the face:
 * - box: the dataset's own face box, turned into the engine's box convention (the detector's
 *   square; see datasetBoxToEngineBox), then fr_landmark on it: no detector in the loop;
 * - detector: the real route, fr_detect → fr_landmark; the dataset box only says which detection
 *   is the labelled person, and photos where no detection covers it count as misses.
 * Labels are converted to Facegate's convention (the dataset's yaw is negated). Pointing'04 gives
 * no roll, so roll is checked separately: photos rotated in-plane by a known angle must change
 * the estimated roll by that angle.
 * The baseline is fr_pose fed as the package's own browser code feeds it (BGR, box × 1.5, one pass).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { projectPath } from '../src/config/paths.ts';
import { boxIoU } from '../src/domain/geometry.ts';
import type { Box, HeadPose, Landmarks5, Point, RgbImage } from '../src/domain/types.ts';
import { warpAffine } from '../src/vision/align.ts';
import type { PoseEstimator } from '../src/vision/face-engine.ts';
import { decodeImageFile } from '../src/vision/image.ts';
import { OnnxFaceDetector } from '../src/vision/onnx/detector.ts';
import { landmarks5From68, OnnxLandmarker } from '../src/vision/onnx/landmarks.ts';
import { FrPoseEstimator, LandmarkPoseEstimator, OnnxPoseEstimator } from '../src/vision/onnx/pose.ts';
import { median, printTable, writeResults } from './report.ts';

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string', default: projectPath('../shared/datasets/pose') },
    mode: { type: 'string', default: 'both' },
    /** Use every n-th photo (1 = all 1860). */
    step: { type: 'string', default: '1' },
    /** Roll check on every n-th near-frontal photo; 0 = skip. */
    'roll-step': { type: 'string', default: '4' },
  },
});
const datasetDir = resolve(args.dataset!);
const step = Math.max(1, Number(args.step));
const rollStep = Math.max(0, Number(args['roll-step']));
const modes = args.mode === 'both' ? (['box', 'detector'] as const) : ([args.mode] as ('box' | 'detector')[]);
if (!modes.every((m) => m === 'box' || m === 'detector')) throw new Error(`--mode must be both, box or detector, not ${args.mode}`);
if (!existsSync(join(datasetDir, 'labels.csv'))) {
  console.error(`no Pointing'04 labels at ${datasetDir}/labels.csv; pass --dataset <dir>`);
  process.exit(2);
}

interface Photo {
  person: string;
  file: string;
  series: number;
  /** Facegate convention: positive = the subject's own left (the dataset's sign is the opposite). */
  yawDeg: number;
  pitchDeg: number;
  box: Box;
}

function readPhotos(dir: string): Photo[] {
  const rows = (name: string): string[][] =>
    readFileSync(join(dir, name), 'utf8')
      .trim()
      .split(/\r?\n/)
      .slice(1)
      .map((line) => line.split(','));
  const labels = new Map(rows('labels.csv').map(([person, file, yaw, pitch]) => [`${person}/${file}`, { yaw: Number(yaw), pitch: Number(pitch) }]));
  return rows('face_boxes.csv').map(([person, file, series, cx, cy, w, h]) => {
    const label = labels.get(`${person}/${file}`);
    if (!label) throw new Error(`no label for ${person}/${file}`);
    const [x, y, width, height] = [Number(cx), Number(cy), Number(w), Number(h)];
    return {
      person: person!,
      file: file!,
      series: Number(series),
      yawDeg: label.yaw === 0 ? 0 : -label.yaw,
      pitchDeg: label.pitch,
      box: { x: x - width / 2, y: y - height / 2, width, height },
    };
  });
}

/**
 * The dataset's boxes are tight around the features; the engine's box is the detector's square,
 * which reaches up to the hairline. Measured over this set (median over 1838 detected photos):
 * square side = 1.5 × √(w·h) of the dataset box, centre 4.5 % of the side higher.
 */
function datasetBoxToEngineBox(box: Box): Box {
  const side = 1.5 * Math.sqrt(box.width * box.height);
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2 - 0.045 * side;
  return { x: cx - side / 2, y: cy - side / 2, width: side, height: side };
}

interface Candidate {
  name: string;
  what: string;
  estimator: PoseEstimator;
}

const modelsDir = projectPath('models/faceplugin');
const frPoseModel = join(modelsDir, 'fr_pose.onnx');
const candidates: Candidate[] = [
  { name: 'chosen', what: 'OnnxPoseEstimator: fr_pose yaw/pitch (as fr_pose), roll from the eye line', estimator: new OnnxPoseEstimator(frPoseModel) },
  { name: 'fr_pose', what: 'fr_pose, RGB, box × 1.2, mirrored pass averaged', estimator: new FrPoseEstimator(frPoseModel) },
  { name: 'fr_pose-1pass', what: 'fr_pose, RGB, box × 1.2, one pass', estimator: new FrPoseEstimator(frPoseModel, { flipAverage: false }) },
  {
    name: 'fr_pose-package',
    what: "baseline: fr_pose as the package feeds it (BGR, box × 1.5, one pass)",
    estimator: new FrPoseEstimator(frPoseModel, { channels: 'bgr', cropScale: 1.5, flipAverage: false }),
  },
  { name: 'landmarks68', what: 'weak-perspective fit of the generic face to the 68 points', estimator: new LandmarkPoseEstimator() },
  { name: 'landmarks5', what: 'the same fit on the 5 ArcFace points only', estimator: new LandmarkPoseEstimator({ points: 5 }) },
];

interface Sample {
  photo: Photo;
  pose: HeadPose;
}

interface FaceInput {
  box: Box;
  landmarks5: Landmarks5;
  landmarks: Point[];
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

const detector = new OnnxFaceDetector(join(modelsDir, 'fr_detect.onnx'));
const landmarker = new OnnxLandmarker(join(modelsDir, 'fr_landmark.onnx'));
await detector.load();
await landmarker.load();
for (const c of candidates) await c.estimator.load();

/** The face to estimate: from the dataset box or from the detector (undefined = missed). */
async function findFace(image: RgbImage, photo: Photo, mode: 'box' | 'detector', costs: Map<string, number[]>): Promise<FaceInput | undefined> {
  let box: Box;
  if (mode === 'box') {
    box = datasetBoxToEngineBox(photo.box);
  } else {
    const start = process.cpuUsage();
    const found = await detector.detect(image, { maxFaces: 5 });
    push(costs, 'detect', cpuMs(start));
    const best = found
      .map((f) => ({ f, overlap: boxIoU(f.box, datasetBoxToEngineBox(photo.box)) }))
      .sort((a, b) => b.overlap - a.overlap)[0];
    if (!best || best.overlap < 0.3) return undefined;
    box = best.f.box;
  }
  const start = process.cpuUsage();
  const landmarks = await landmarker.predict(image, box);
  push(costs, 'landmarks', cpuMs(start));
  return { box, landmarks, landmarks5: landmarks5From68(landmarks) };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

const photos = readPhotos(datasetDir).filter((_, i) => i % step === 0);
console.log(`Pointing'04: ${photos.length} photos from ${datasetDir}; modes: ${modes.join(', ')}`);

type ModeResult = {
  photos: number;
  missed: number;
  samples: Map<string, Sample[]>;
  cpuMs: Map<string, number[]>;
};
const results = new Map<string, ModeResult>();
for (const mode of modes) results.set(mode, { photos: photos.length, missed: 0, samples: new Map(), cpuMs: new Map() });

const started = Date.now();
for (const [index, photo] of photos.entries()) {
  const image = await decodeImageFile(join(datasetDir, photo.person, photo.file));
  for (const mode of modes) {
    const result = results.get(mode)!;
    const face = await findFace(image, photo, mode, result.cpuMs);
    if (!face) {
      result.missed++;
      continue;
    }
    for (const c of candidates) {
      const start = process.cpuUsage();
      const pose = await c.estimator.estimate(image, face);
      push(result.cpuMs, c.name, cpuMs(start));
      push(result.samples, c.name, { photo, pose });
    }
  }
  if ((index + 1) % 200 === 0) console.log(`  ${index + 1}/${photos.length} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

// ---- statistics -------------------------------------------------------------------------------

interface ErrorStats {
  n: number;
  yawMedAbsDeg: number;
  pitchMedAbsDeg: number;
  /** Mean signed error: negative = under-estimates towards 0 for positive labels, etc. */
  yawMeanSignedDeg: number;
  pitchMeanSignedDeg: number;
}

function errorStats(samples: Sample[]): ErrorStats {
  const yaw = samples.map((s) => s.pose.yawDeg - s.photo.yawDeg);
  const pitch = samples.map((s) => s.pose.pitchDeg - s.photo.pitchDeg);
  const mean = (v: number[]): number => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN);
  return {
    n: samples.length,
    yawMedAbsDeg: median(yaw.map(Math.abs)),
    pitchMedAbsDeg: median(pitch.map(Math.abs)),
    yawMeanSignedDeg: mean(yaw),
    pitchMeanSignedDeg: mean(pitch),
  };
}

const within45 = (s: Sample): boolean => Math.abs(s.photo.yawDeg) <= 45;
const moderatePitch = (s: Sample): boolean => Math.abs(s.photo.pitchDeg) <= 30;
const YAW_BINS = [-90, -75, -60, -45, -30, -15, 0, 15, 30, 45, 60, 75, 90];

/** How the 45° yaw gate of quality.ts would sort these faces (the gate's job, not the angle's). */
function gateStats(samples: Sample[], maxYawDeg = 45): { frontalRejected: number; turnedAccepted: number } {
  const frontal = samples.filter((s) => Math.abs(s.photo.yawDeg) <= 30);
  const turned = samples.filter((s) => Math.abs(s.photo.yawDeg) >= 60);
  return {
    frontalRejected: frontal.filter((s) => Math.abs(s.pose.yawDeg) > maxYawDeg).length / frontal.length,
    turnedAccepted: turned.filter((s) => Math.abs(s.pose.yawDeg) <= maxYawDeg).length / turned.length,
  };
}

const summary: Record<string, unknown> = {};
for (const [mode, result] of results) {
  const modeSummary: Record<string, unknown> = { photos: result.photos, missed: result.missed, candidates: {} };
  const rows: (string | number)[][] = [];
  for (const c of candidates) {
    const samples = result.samples.get(c.name) ?? [];
    const near = errorStats(samples.filter(within45));
    const nearModerate = errorStats(samples.filter((s) => within45(s) && moderatePitch(s)));
    const all = errorStats(samples);
    const series = [1, 2].map((k) => errorStats(samples.filter((s) => within45(s) && s.photo.series === k)));
    const gate = gateStats(samples);
    const cost = median(result.cpuMs.get(c.name) ?? []);
    rows.push([
      c.name,
      String(near.n),
      near.yawMedAbsDeg,
      near.pitchMedAbsDeg,
      'n/a',
      nearModerate.yawMedAbsDeg,
      nearModerate.pitchMedAbsDeg,
      all.yawMedAbsDeg,
      all.pitchMedAbsDeg,
      `${series[0]!.yawMedAbsDeg.toFixed(1)} / ${series[1]!.yawMedAbsDeg.toFixed(1)}`,
      `${(gate.frontalRejected * 100).toFixed(1)}% / ${(gate.turnedAccepted * 100).toFixed(1)}%`,
      cost,
    ]);
    const perBin = YAW_BINS.map((bin) => ({ yawDeg: bin, ...errorStats(samples.filter((s) => s.photo.yawDeg === bin)) }));
    (modeSummary.candidates as Record<string, unknown>)[c.name] = {
      what: c.what,
      yawWithin45: near,
      yawWithin45PitchWithin30: nearModerate,
      allYaws: all,
      yawWithin45BySeries: { series1: series[0], series2: series[1] },
      gateAt45: gate,
      perYawBin: perBin,
      cpuMsMedian: cost,
    };
  }
  printTable(
    `median |error|, degrees — ${mode === 'box' ? "dataset box (no detector)" : 'detector route (fr_detect → fr_landmark)'}; ` +
      `${result.photos - result.missed}/${result.photos} faces found`,
    ['candidate', 'n≤45', 'yaw ≤45', 'pitch ≤45', 'roll', 'yaw ≤45,|p|≤30', 'pitch ≤45,|p|≤30', 'yaw all', 'pitch all', 'yaw≤45 s1/s2', 'gate45: frontal rej / ≥60 acc', 'CPU-ms'],
    rows,
  );
  const binRows = YAW_BINS.map((bin) => [
    String(bin),
    ...candidates.flatMap((c) => {
      const s = errorStats((result.samples.get(c.name) ?? []).filter((x) => x.photo.yawDeg === bin));
      return [`${s.yawMedAbsDeg.toFixed(1)} (${s.yawMeanSignedDeg >= 0 ? '+' : ''}${s.yawMeanSignedDeg.toFixed(1)})`];
    }),
  ]);
  printTable(`per yaw bin (${mode}): median |yaw error| (mean signed error), all pitches`, ['yaw', ...candidates.map((c) => c.name)], binRows);
  const pitchRows = YAW_BINS.map((bin) => [
    String(bin),
    ...candidates.map((c) => errorStats((result.samples.get(c.name) ?? []).filter((x) => x.photo.yawDeg === bin)).pitchMedAbsDeg),
  ]);
  printTable(`per yaw bin (${mode}): median |pitch error|, all pitches`, ['yaw', ...candidates.map((c) => c.name)], pitchRows);
  // The quality gate's view: how often a clearly acceptable face is refused, and a clearly turned one let through.
  const chosen = result.samples.get('chosen') ?? [];
  const gateRows: (string | number)[][] = [];
  const gates: Record<string, unknown>[] = [];
  for (const maxYawDeg of [35, 40, 45, 50]) {
    const ok = chosen.filter((x) => Math.abs(x.photo.yawDeg) <= 30);
    const turned = chosen.filter((x) => Math.abs(x.photo.yawDeg) >= 60);
    const refused = ok.filter((x) => Math.abs(x.pose.yawDeg) > maxYawDeg).length / ok.length;
    const passed = turned.filter((x) => Math.abs(x.pose.yawDeg) <= maxYawDeg).length / turned.length;
    gateRows.push([`maxYawDeg ${maxYawDeg}`, `${(refused * 100).toFixed(1)}% of |yaw| ≤ 30`, `${(passed * 100).toFixed(1)}% of |yaw| ≥ 60`]);
    gates.push({ maxYawDeg, refusedYawWithin30: refused, acceptedYawFrom60: passed });
  }
  for (const maxPitchDeg of [20, 25, 30, 35]) {
    const upright = chosen.filter((x) => Math.abs(x.photo.yawDeg) <= 45);
    const ok = upright.filter((x) => Math.abs(x.photo.pitchDeg) <= 15);
    const tilted = upright.filter((x) => Math.abs(x.photo.pitchDeg) >= 60);
    const refused = ok.filter((x) => Math.abs(x.pose.pitchDeg) > maxPitchDeg).length / ok.length;
    const passed = tilted.filter((x) => Math.abs(x.pose.pitchDeg) <= maxPitchDeg).length / tilted.length;
    gateRows.push([`maxPitchDeg ${maxPitchDeg}`, `${(refused * 100).toFixed(1)}% of |pitch| ≤ 15`, `${(passed * 100).toFixed(1)}% of |pitch| ≥ 60`]);
    gates.push({ maxPitchDeg, refusedPitchWithin15: refused, acceptedPitchFrom60: passed });
  }
  printTable(`pose gate with the chosen estimator (${mode}); pitch rows use |yaw| ≤ 45 only`, ['limit', 'refused (should pass)', 'accepted (should fail)'], gateRows);
  modeSummary.gatesChosen = gates;
  const stageCosts = Object.fromEntries(['detect', 'landmarks'].filter((k) => result.cpuMs.has(k)).map((k) => [k, median(result.cpuMs.get(k)!)]));
  modeSummary.stageCpuMsMedian = stageCosts;
  console.log(`  context: ${Object.entries(stageCosts).map(([k, v]) => `${k} ${v.toFixed(2)} CPU-ms`).join(', ')} (median per photo)`);
  summary[mode] = modeSummary;
}

// ---- roll: known in-plane rotations -----------------------------------------------------------

/** The image rotated clockwise (as seen) by angleDeg about its centre; corners fill black. */
function rotateImage(image: RgbImage, angleDeg: number): RgbImage {
  const a = (angleDeg * Math.PI) / 180;
  const cx = (image.width - 1) / 2;
  const cy = (image.height - 1) / 2;
  const c = Math.cos(a);
  const s = Math.sin(a);
  // Output pixel p' samples the source at c + Rot(−a)(p' − c); with y down, Rot(a) turns clockwise.
  return warpAffine(image, [c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy], image.width, image.height);
}

function rotatePoint(p: Point, image: RgbImage, angleDeg: number): Point {
  const a = (angleDeg * Math.PI) / 180;
  const cx = (image.width - 1) / 2;
  const cy = (image.height - 1) / 2;
  const dx = p.x - cx;
  const dy = p.y - cy;
  return { x: cx + Math.cos(a) * dx - Math.sin(a) * dy, y: cy + Math.sin(a) * dx + Math.cos(a) * dy };
}

const ROLL_ANGLES = [-30, -15, 15, 30];
if (rollStep > 0) {
  const rollPhotos = photos.filter((p) => Math.abs(p.yawDeg) <= 45 && Math.abs(p.pitchDeg) <= 30).filter((_, i) => i % rollStep === 0);
  const rollErrors = new Map<string, number[]>();
  let missed = 0;
  for (const photo of rollPhotos) {
    const image = await decodeImageFile(join(datasetDir, photo.person, photo.file));
    const base = await findFace(image, photo, 'detector', new Map());
    if (!base) continue;
    const baseRoll = new Map<string, number>();
    for (const c of candidates) baseRoll.set(c.name, (await c.estimator.estimate(image, base)).rollDeg);
    for (const angle of ROLL_ANGLES) {
      const rotated = rotateImage(image, angle);
      const centre = rotatePoint({ x: photo.box.x + photo.box.width / 2, y: photo.box.y + photo.box.height / 2 }, image, angle);
      const rotatedPhoto = { ...photo, box: { ...photo.box, x: centre.x - photo.box.width / 2, y: centre.y - photo.box.height / 2 } };
      const face = await findFace(rotated, rotatedPhoto, 'detector', new Map());
      if (!face) {
        missed++;
        continue;
      }
      for (const c of candidates) {
        const roll = (await c.estimator.estimate(rotated, face)).rollDeg;
        push(rollErrors, c.name, roll - baseRoll.get(c.name)! - angle);
      }
    }
  }
  const rows = candidates.map((c) => {
    const e = rollErrors.get(c.name) ?? [];
    return [c.name, String(e.length), median(e.map(Math.abs)), e.length ? e.reduce((a, b) => a + b, 0) / e.length : Number.NaN];
  });
  printTable(
    `roll: photos (|yaw| ≤ 45, |pitch| ≤ 30, every ${rollStep}th) rotated by ${ROLL_ANGLES.join('/')}°, detector route; ` +
      `error = Δroll − rotation (${missed} rotated faces missed)`,
    ['candidate', 'n', 'median |error|', 'mean error'],
    rows,
  );
  summary.rollCheck = {
    anglesDeg: ROLL_ANGLES,
    photos: rollPhotos.length,
    missed,
    candidates: Object.fromEntries(rows.map(([name, n, med, mean]) => [name, { n, medianAbsErrorDeg: med, meanErrorDeg: mean }])),
  };
}

for (const c of candidates) await c.estimator.dispose();
await detector.dispose();
await landmarker.dispose();

const file = writeResults('pose', {
  benchmark: 'pose',
  date: new Date().toISOString(),
  dataset: datasetDir,
  step,
  labelConvention: "Facegate's: yaw > 0 = the subject's own left (the dataset's yaw negated); pitch > 0 = up",
  candidates: Object.fromEntries(candidates.map((c) => [c.name, c.what])),
  results: summary,
});
console.log(`\nwrote ${file}`);
