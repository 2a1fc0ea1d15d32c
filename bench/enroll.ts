/**
 * `npm run bench:enroll`: enrollment on Pointing'04 (../shared/datasets/pose), against
 * single-photo enrollment in the same run.
 *
 * 1. Scan cost: a 100-frame circular scan session (person 01, series 1 photos in a sweep) through
 *    EnrollmentService as POST /frames drives it — detection per frame, best frames per bin
 *    embedded at complete, one-commit save — against embedding every frame (the naive way).
 * 2. Guided enrollment: persons 01–07 are enrolled from series 1 through the guided flow with the
 *    default angles and tolerances (the photos fed as frames in a sweep towards each target:
 *    front, then yaw 15/30/45 each way, then pitch ±15/30), against enrolling each from its one
 *    frontal series-1 photo. Probes: their series-2 photos (genuine; frontal, and |yaw| ≤ 45° with
 *    |pitch| ≤ 15°) and every photo of persons 08–10 (impostors, never enrolled) at the same poses.
 *    Recognition through RecognitionService.recognize at the calibrated search threshold.
 * 3. Active liveness: for each person, the parallax (homography residual of the 68 landmarks,
 *    src/domain/enrollment-liveness.ts) of real head turns (frontal + yaw ±30 + pitch ±15 photos)
 *    against the frontal photo warped flat in perspective as if the printed photo were turned by
 *    the same angles; plus the estimated pose of the warped photos.
 *
 * Options: --workers N (default 2), --scan-runs N (scan sessions measured, the median reported;
 * default 3), --only-scan (part 1 alone).
 */
import { mkdtempSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { createServices } from '../src/app.ts';
import { parseConfig } from '../src/config/config.ts';
import { projectPath } from '../src/config/paths.ts';
import { assessParallax } from '../src/domain/enrollment-liveness.ts';
import type { Point } from '../src/domain/types.ts';
import { EnrollmentService } from '../src/services/enrollment.service.ts';
import { augmentImage } from '../src/vision/augment.ts';
import { calibratedThresholds } from '../src/vision/engine-factory.ts';
import { option, printTable, writeResults } from './report.ts';

const DATASETS = process.env.FACEGATE_DATASETS ?? projectPath('../shared/datasets');
const POSE_DIR = join(DATASETS, 'pose');
const ENROLLED = ['person01', 'person02', 'person03', 'person04', 'person05', 'person06', 'person07'];
const IMPOSTORS = ['person08', 'person09', 'person10'];

interface Photo {
  person: string;
  file: string;
  series: number;
  /** Facegate's convention: > 0 = the subject's own left (Pointing'04's sign is the opposite). */
  yawDeg: number;
  pitchDeg: number;
}

async function loadPhotos(): Promise<Photo[]> {
  const text = await readFile(join(POSE_DIR, 'labels.csv'), 'utf8');
  return text
    .trim()
    .split('\n')
    .slice(1)
    .map((line) => {
      const [person, file, yaw, pitch] = line.split(',');
      return { person: person!, file: file!, series: Number(file![8]), yawDeg: -Number(yaw), pitchDeg: Number(pitch) };
    });
}

const bytesOf = (p: Photo): Promise<Buffer> => readFile(join(POSE_DIR, p.person, p.file));

function find(photos: Photo[], person: string, series: number, yawDeg: number, pitchDeg: number): Photo {
  const p = photos.find((x) => x.person === person && x.series === series && x.yawDeg === yawDeg && x.pitchDeg === pitchDeg);
  if (!p) throw new Error(`no photo of ${person} series ${series} at yaw ${yawDeg} pitch ${pitchDeg}`);
  return p;
}

const YAW_GRID = [-60, -45, -30, -15, 0, 15, 30, 45, 60];
const PITCH_GRID = [-30, -15, 0, 15, 30];
const nearest = (grid: number[], v: number): number => grid.reduce((best, g) => (Math.abs(g - v) < Math.abs(best - v) ? g : best));

/**
 * A person following the guidance: for each angle they start at the photo labelled nearest the
 * target and, while the frame is not captured, move one 15° step against the pose error the
 * server reports (the UI's arrow), at most maxFramesPerAngle frames per angle.
 */
async function followGuidance(
  service: EnrollmentService,
  sessionId: string,
  photos: Photo[],
  person: string,
  angles: readonly { name: string; yawDeg: number; pitchDeg: number; toleranceDeg: number }[],
  maxFramesPerAngle = 12,
): Promise<Awaited<ReturnType<EnrollmentService['get']>>> {
  let view = service.get(sessionId);
  while (view.status === 'capturing' && view.guidance) {
    const angleName = view.guidance.angle_name;
    const angle = angles.find((a) => a.name === angleName)!;
    let yaw = nearest(YAW_GRID, angle.yawDeg);
    let pitch = nearest(PITCH_GRID, angle.pitchDeg);
    let frames = 0;
    while (view.status === 'capturing' && view.guidance?.angle_name === angleName && frames < maxFramesPerAngle) {
      const out = await service.addFrame(sessionId, await bytesOf(find(photos, person, 1, yaw, pitch)));
      frames++;
      view = out.session;
      if (out.frame.accepted || !out.frame.pose) continue;
      const errYaw = out.frame.pose.yaw - angle.yawDeg;
      const errPitch = out.frame.pose.pitch - angle.pitchDeg;
      if (Math.abs(errYaw) > angle.toleranceDeg) yaw = Math.max(-60, Math.min(60, yaw - 15 * Math.sign(errYaw)));
      if (Math.abs(errPitch) > angle.toleranceDeg) {
        const i = PITCH_GRID.indexOf(pitch) - Math.sign(errPitch);
        pitch = PITCH_GRID[Math.max(0, Math.min(PITCH_GRID.length - 1, i))]!;
      }
    }
    if (view.status === 'capturing' && view.guidance?.angle_name === angleName) break;
  }
  return view;
}

/** The image seen when a flat print of it is turned by yawDeg about its vertical axis (or pitchDeg about its horizontal one), in perspective. */
async function warpFlat(jpeg: Buffer, yawDeg: number, pitchDeg: number): Promise<Buffer> {
  const { data, info } = await sharp(jpeg).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  const out = Buffer.alloc(width * height * 3);
  const f = width * 1.2;
  const cx = width / 2;
  const cy = height / 2;
  const ty = (yawDeg * Math.PI) / 180;
  const tp = (pitchDeg * Math.PI) / 180;
  for (let v = 0; v < height; v++) {
    for (let u = 0; u < width; u++) {
      const uu = u - cx;
      const vv = v - cy;
      // Inverse of: a plane point (x, y) turned by yaw about the vertical axis and pitch about the horizontal, seen at distance f.
      let x = uu;
      let y = vv;
      if (ty !== 0) {
        x = (uu * f) / (f * Math.cos(ty) - uu * Math.sin(ty));
        y = (vv * (f + x * Math.sin(ty))) / f;
      } else if (tp !== 0) {
        y = (vv * f) / (f * Math.cos(tp) - vv * Math.sin(tp));
        x = (uu * (f + y * Math.sin(tp))) / f;
      }
      const sx = x + cx;
      const sy = y + cy;
      const o = (v * width + u) * 3;
      if (sx < 0 || sy < 0 || sx >= width - 1 || sy >= height - 1) {
        out[o] = out[o + 1] = out[o + 2] = 40;
        continue;
      }
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const ax = sx - x0;
      const ay = sy - y0;
      for (let c = 0; c < 3; c++) {
        const p = (yy: number, xx: number) => data[(yy * width + xx) * 3 + c]!;
        out[o + c] = Math.round(p(y0, x0) * (1 - ax) * (1 - ay) + p(y0, x0 + 1) * ax * (1 - ay) + p(y0 + 1, x0) * (1 - ax) * ay + p(y0 + 1, x0 + 1) * ax * ay);
      }
    }
  }
  return sharp(out, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

const SCAN_RUNS = option('scan-runs', 3);
const ONLY_SCAN = process.argv.includes('--only-scan');

const pct = (n: number, d: number): number => (d === 0 ? Number.NaN : Math.round((1000 * n) / d) / 10);

async function main(): Promise<void> {
  const workers = option('workers', 2);
  const photos = await loadPhotos();
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-bench-enroll-'));
  const config = parseConfig({ dataDir, server: { logLevel: 'silent' }, vision: { workers }, gallery: { saveEveryMs: 3_600_000 }, privacy: { storeImages: false } });
  const services = await createServices(config);
  const thresholds = calibratedThresholds(config);
  const enrollments = (overrides: Partial<typeof config.enrollment> = {}) =>
    new EnrollmentService({
      vision: services.vision,
      people: services.people,
      config: { ...config.enrollment, holdMs: 0, ...overrides },
      verifyThreshold: thresholds.verify,
      livenessThreshold: config.vision.livenessThreshold,
      minFaceSizePx: config.vision.quality.minFaceSizePx,
      storeThumbnails: false,
      augment: augmentImage,
    });
  const clearGallery = async () => {
    for (;;) {
      const page = await services.people.list({ limit: 1000 });
      if (page.items.length === 0) break;
      for (const p of page.items) await services.people.delete(p.id);
    }
  };
  const results: Record<string, unknown> = { workers, searchThreshold: thresholds.search, verifyThreshold: thresholds.verify };
  try {
    // Warm the workers up.
    await Promise.all(Array.from({ length: workers * 2 }, async () => services.vision.analyze(await bytesOf(photos[45]!), { embed: 'largest', liveness: true })));

    // ---- 1. scan cost ----
    const scanPhotos = photos.filter((p) => p.person === 'person01' && p.series === 1 && Math.abs(p.pitchDeg) <= 60);
    const frames = await Promise.all(Array.from({ length: 100 }, (_, i) => bytesOf(scanPhotos[i % scanPhotos.length]!)));
    // Several sessions, since one run on a shared machine can land on a busy moment; the median is reported.
    const scanRuns: { computeMs: number; detectPhaseMs: number; cpuMs: number; wallMs: number; done: Awaited<ReturnType<EnrollmentService['complete']>> }[] = [];
    for (let run = 0; run < SCAN_RUNS; run++) {
      const scanService = enrollments();
      const cpuBefore = process.cpuUsage();
      const scanStarted = performance.now();
      const scan = await scanService.start({ mode: 'scan', person: { name: `Scan 01 run ${run + 1}` } });
      for (const frame of frames) await scanService.addFrame(scan.id, frame);
      const detectPhaseMs = scanService.get(scan.id).computeMs;
      const done = await scanService.complete(scan.id);
      const wallMs = Math.round(performance.now() - scanStarted);
      const cpu = process.cpuUsage(cpuBefore);
      await scanService.close();
      scanRuns.push({ computeMs: done.computeMs, detectPhaseMs, cpuMs: Math.round((cpu.user + cpu.system) / 1000), wallMs, done });
      await clearGallery();
    }
    const scanMedian = [...scanRuns].sort((a, b) => a.computeMs - b.computeMs)[Math.floor(scanRuns.length / 2)]!;
    const scanDone = scanMedian.done;
    const naiveCpuBefore = process.cpuUsage();
    const naiveStarted = performance.now();
    for (const frame of frames) await services.vision.analyze(frame, { embed: 'largest', liveness: true });
    const naiveMs = performance.now() - naiveStarted;
    const naiveCpu = process.cpuUsage(naiveCpuBefore);
    const naiveCpuMs = Math.round((naiveCpu.user + naiveCpu.system) / 1000);
    const embedded = scanDone.coverage?.bins.reduce((n, b) => n + b.kept, 0) ?? 0;
    results.scan = {
      frames: 100,
      runs: scanRuns.map(({ done: _done, ...r }) => r),
      status: scanDone.status,
      failure: scanDone.failure,
      computeMs: scanMedian.computeMs,
      detectPhaseMs: scanMedian.detectPhaseMs,
      cpuMs: scanMedian.cpuMs,
      wallMs: scanMedian.wallMs,
      framesEmbedded: embedded,
      templates: scanDone.templates.length,
      coveredBins: scanDone.coverage?.coveredBins,
      totalBins: scanDone.coverage?.totalBins,
      naiveEmbedEveryFrameMs: Math.round(naiveMs),
      naiveCpuMs,
      targetComputeMsAtMost2000: scanMedian.computeMs <= 2000,
    };
    printTable(
      `100-frame circular scan (person01 series 1), sequential as a REST client sends them; ${SCAN_RUNS} sessions, the median one (by compute) first`,
      ['path', 'server compute ms', 'of which 100 detections', 'process CPU ms (all threads)', 'wall ms', 'frames embedded', 'templates', 'bins covered', 'status'],
      [
        ...[scanMedian, ...scanRuns.filter((r) => r !== scanMedian)].map((r, i) => [
          i === 0 ? 'scan (detect all, embed best per bin), median' : 'scan, other session',
          r.computeMs,
          r.detectPhaseMs,
          r.cpuMs,
          r.wallMs,
          r.done.coverage?.bins.reduce((n, b) => n + b.kept, 0) ?? 0,
          r.done.templates.length,
          `${r.done.coverage?.coveredBins}/${r.done.coverage?.totalBins}`,
          r.done.status,
        ]),
        ['naive (embed + liveness every frame)', Math.round(naiveMs), '—', naiveCpuMs, Math.round(naiveMs), 100, '—', '—', '—'],
      ],
    );
    console.log(`target: server compute ≤ 2000 ms for 100 frames — ${scanMedian.computeMs <= 2000 ? 'met' : 'NOT met'} (median ${scanMedian.computeMs} ms)`);
    if (ONLY_SCAN) {
      console.log(`\nresults: ${writeResults('enroll', results)}`);
      return;
    }
    await clearGallery();

    // ---- 2. guided vs single frontal photo ----
    const probeSet = (persons: string[], series: number[]) => photos.filter((p) => persons.includes(p.person) && series.includes(p.series) && Math.abs(p.yawDeg) <= 45 && Math.abs(p.pitchDeg) <= 15);
    const genuine = probeSet(ENROLLED, [2]);
    const impostor = probeSet(IMPOSTORS, [1, 2]);
    /**
     * Who the probe is. gated: POST /recognize's path (quality and passive-liveness gates in force);
     * matching only: the largest face embedded and decided at the search threshold, gates off —
     * what the enrolled templates themselves decide.
     */
    const identify = async (bytes: Buffer, gated: boolean): Promise<{ personId: string | null; why: string }> => {
      if (gated) {
        const r = await services.recognition.recognize(bytes, { findSmallFaces: false });
        const face = r.faces.reduce<(typeof r.faces)[number] | undefined>((best, f) => (!best || f.box.width > best.box.width ? f : best), undefined);
        return { personId: face?.person?.id ?? null, why: !face ? 'no_face' : (face.reason ?? 'match') };
      }
      const r = await services.vision.analyze(bytes, { embed: 'largest', liveness: false });
      const face = r.faces.find((f) => f.embedding);
      if (!face?.embedding) return { personId: null, why: 'no_face' };
      const d = await services.recognition.decideEmbedding({ embedding: face.embedding, qualityPass: true });
      return { personId: d.person?.id ?? null, why: d.decision.decision === 'match' ? 'match' : d.decision.reason };
    };
    const evaluate = async (label: string, idOf: Map<string, string>, gated = true) => {
      const rows = { frontal: { n: 0, ok: 0 }, yaw45: { n: 0, ok: 0 }, impostor: { n: 0, fa: 0 } };
      const perPerson = new Map<string, { frontal: number; frontalN: number; yaw45: number; yaw45N: number }>();
      /** Why genuine probes were missed: the face's unknown reason, no_face, or wrong_person. */
      const misses: Record<string, number> = {};
      for (const p of genuine) {
        const who = await identify(await bytesOf(p), gated);
        const ok = who.personId !== null && who.personId === idOf.get(p.person);
        if (!ok && idOf.has(p.person)) {
          const why = who.personId !== null ? 'wrong_person' : who.why;
          misses[why] = (misses[why] ?? 0) + 1;
        }
        const mine = perPerson.get(p.person) ?? { frontal: 0, frontalN: 0, yaw45: 0, yaw45N: 0 };
        perPerson.set(p.person, mine);
        mine.yaw45N++;
        if (ok) mine.yaw45++;
        if (p.yawDeg === 0 && p.pitchDeg === 0) {
          rows.frontal.n++;
          mine.frontalN++;
          if (ok) {
            rows.frontal.ok++;
            mine.frontal++;
          }
        }
        rows.yaw45.n++;
        if (ok) rows.yaw45.ok++;
      }
      for (const p of impostor) {
        const who = await identify(await bytesOf(p), gated);
        rows.impostor.n++;
        if (who.personId !== null) rows.impostor.fa++;
      }
      /** Rates over the given people's probes only (to compare arms on the people both enrolled). */
      const over = (people: string[]) => {
        const sum = (k: 'frontal' | 'frontalN' | 'yaw45' | 'yaw45N') => people.reduce((n, x) => n + (perPerson.get(x)?.[k] ?? 0), 0);
        return { frontal: pct(sum('frontal'), sum('frontalN')), yaw45: pct(sum('yaw45'), sum('yaw45N')) };
      };
      return { label, frontal: pct(rows.frontal.ok, rows.frontal.n), yaw45: pct(rows.yaw45.ok, rows.yaw45.n), impostorFalseAccept: pct(rows.impostor.fa, rows.impostor.n), counts: rows, misses, over };
    };

    type Outcome = { person: string; status: string; reason: string | null; templates: number; angleReached: string | null; computeMs: number };
    const runGuided = async (overrides: Partial<typeof config.enrollment>): Promise<{ ids: Map<string, string>; outcomes: Outcome[] }> => {
      const ids = new Map<string, string>();
      const outcomes: Outcome[] = [];
      const service = enrollments(overrides);
      for (const person of ENROLLED) {
        const session = await service.start({ mode: 'guided', person: { name: person } });
        let view = await followGuidance(service, session.id, photos, person, config.enrollment.angles);
        const angleReached = view.guidance?.angle_name ?? null;
        if (view.status === 'complete' && view.personId) ids.set(person, view.personId);
        else if (view.status === 'capturing') view = await service.cancel(session.id);
        outcomes.push({ person, status: view.status, reason: view.failure?.reason ?? null, templates: view.templates.length, angleReached, computeMs: view.computeMs });
      }
      await service.close();
      return { ids, outcomes };
    };
    // With the passive liveness model in force (vision.livenessThreshold): it scores some of these old photos as spoofs.
    const withPassive = await runGuided({});
    await clearGallery();
    const { ids: guidedIds, outcomes: guidedOutcomes } = await runGuided({ minLiveness: 0 });
    printTable(
      'Guided enrollment from series 1 (default angles, tolerances and parallax check; the simulated person follows the pose-error arrow)',
      ['person', 'passive liveness on', 'stuck at', 'passive liveness off', 'reason', 'templates', 'ms'],
      guidedOutcomes.map((o, i) => [o.person, withPassive.outcomes[i]!.status, withPassive.outcomes[i]!.angleReached ?? '', o.status, o.reason ?? '', o.templates, o.computeMs]),
    );
    const guidedEval = await evaluate('guided (5 angles)', guidedIds);
    const guidedMatch = await evaluate('guided (5 angles)', guidedIds, false);
    await clearGallery();
    // Augmentation (seed 002): each chosen frame also mirrored, brightened, darkened and blurred.
    const augmentedRun = await runGuided({ minLiveness: 0, augmentation: ['flip', 'brighter', 'darker', 'blur'] });
    const augmentedMatch = await evaluate('guided + augmentation', augmentedRun.ids, false);
    await clearGallery();

    const singleIds = new Map<string, string>();
    for (const person of ENROLLED) {
      const created = await services.people.create({ name: person });
      const [added] = await services.people.addFaces(created.id, [{ bytes: await bytesOf(find(photos, person, 1, 0, 0)) }], { source: 'upload' });
      if (added?.status === 'added') singleIds.set(person, created.id);
    }
    const singleEval = await evaluate('single frontal photo', singleIds);
    const singleMatch = await evaluate('single frontal photo', singleIds, false);
    await clearGallery();
    const common = [...guidedIds.keys()];
    const guidedCommon = guidedEval.over(common);
    const singleCommon = singleEval.over(common);
    const guidedMatchCommon = guidedMatch.over(common);
    const singleMatchCommon = singleMatch.over(common);
    const augmentedMatchCommon = augmentedMatch.over(common);
    results.recognitionOnGuidedEnrolled = {
      people: common,
      gated: { guided: guidedCommon, single: singleCommon },
      matchingOnly: { guided: guidedMatchCommon, single: singleMatchCommon, augmented: augmentedMatchCommon, augmentedImpostorFalseAccept: augmentedMatch.impostorFalseAccept, guidedImpostorFalseAccept: guidedMatch.impostorFalseAccept, singleImpostorFalseAccept: singleMatch.impostorFalseAccept },
      misses: { gatedGuided: guidedEval.misses, gatedSingle: singleEval.misses, matchingGuided: guidedMatch.misses, matchingSingle: singleMatch.misses },
    };
    printTable(
      `Matching only (quality and passive-liveness gates off), over the ${common.length} people the guided flow enrolled`,
      ['enrollment', 'frontal probes %', '|yaw|≤45° probes %', 'impostor false accepts %', 'missed because'],
      [
        ['guided (5 angles × 2 templates)', guidedMatchCommon.frontal, guidedMatchCommon.yaw45, guidedMatch.impostorFalseAccept, JSON.stringify(guidedMatch.misses)],
        ['single frontal photo', singleMatchCommon.frontal, singleMatchCommon.yaw45, singleMatch.impostorFalseAccept, JSON.stringify(singleMatch.misses)],
        ['guided + augmentation (flip, ±30 % brightness, blur)', augmentedMatchCommon.frontal, augmentedMatchCommon.yaw45, augmentedMatch.impostorFalseAccept, JSON.stringify(augmentedMatch.misses)],
      ],
    );
    console.log(`augmented enrollment: ${augmentedRun.outcomes.map((o) => `${o.person} ${o.status} ${o.templates} templates`).join('; ')}`);
    console.log(`\nmissed genuine probes of enrolled people — guided: ${JSON.stringify(guidedEval.misses)}; single: ${JSON.stringify(singleEval.misses)}`);
    printTable(
      `Through POST /recognize (gates on), over the ${common.length} people the guided flow enrolled (${common.join(', ')})`,
      ['enrollment', 'frontal probes %', '|yaw|≤45° probes %'],
      [
        ['guided (5 angles × 2 templates)', guidedCommon.frontal, guidedCommon.yaw45],
        ['single frontal photo', singleCommon.frontal, singleCommon.yaw45],
      ],
    );
    results.recognition = { guidedWithPassiveLiveness: withPassive.outcomes, guidedOutcomes, guided: guidedEval, single: singleEval, probes: { genuine: genuine.length, impostor: impostor.length } };
    printTable(
      `Recognition of series-2 photos of ${ENROLLED.length} enrolled people, and of ${IMPOSTORS.length} never-enrolled people (search threshold ${thresholds.search})`,
      ['enrollment', 'people enrolled', 'frontal probes %', '|yaw|≤45° probes %', 'impostor false accepts %'],
      [
        [`${guidedEval.label}, passive liveness off`, guidedIds.size, guidedEval.frontal, guidedEval.yaw45, guidedEval.impostorFalseAccept],
        [singleEval.label, singleIds.size, singleEval.frontal, singleEval.yaw45, singleEval.impostorFalseAccept],
      ],
    );

    // ---- 3. planar spoofs ----
    const views = [
      [0, 0],
      [30, 0],
      [-30, 0],
      [0, 15],
      [0, -15],
    ] as const;
    const liveness: { person: string; realParallax: number | null; flatParallax: number | null; flatYawEstimates: number[]; realYawEstimates: number[] }[] = [];
    for (const person of [...ENROLLED, ...IMPOSTORS]) {
      const frontalBytes = await bytesOf(find(photos, person, 1, 0, 0));
      type View = { yawDeg: number; pitchDeg: number; landmarks5: Point[]; landmarks?: Point[]; labelYaw: number };
      const real: View[] = [];
      const flat: View[] = [];
      for (const [yaw, pitch] of views) {
        const realBytes = yaw === 0 && pitch === 0 ? frontalBytes : await bytesOf(find(photos, person, 1, yaw, pitch));
        const flatBytes = yaw === 0 && pitch === 0 ? frontalBytes : await warpFlat(frontalBytes, yaw, pitch);
        const [r, f] = await Promise.all([services.vision.analyze(realBytes, { embed: 'none', liveness: false }), services.vision.analyze(flatBytes, { embed: 'none', liveness: false })]);
        const largest = (faces: typeof r.faces) => faces.reduce<(typeof faces)[number] | undefined>((b, x) => (!b || x.box.width > b.box.width ? x : b), undefined);
        const rf = largest(r.faces);
        const ff = largest(f.faces);
        if (rf) real.push({ yawDeg: rf.pose.yawDeg, pitchDeg: rf.pose.pitchDeg, landmarks5: rf.landmarks5, ...(rf.landmarks ? { landmarks: rf.landmarks } : {}), labelYaw: yaw });
        if (ff) flat.push({ yawDeg: ff.pose.yawDeg, pitchDeg: ff.pose.pitchDeg, landmarks5: ff.landmarks5, ...(ff.landmarks ? { landmarks: ff.landmarks } : {}), labelYaw: yaw });
      }
      // Measure against the labelled turn, not the estimate: a flat photo barely moves the estimate (that is part of the point).
      const labelled = (vs: typeof real) => vs.map((v, i) => ({ ...v, yawDeg: views[i]?.[0] ?? 0, pitchDeg: views[i]?.[1] ?? 0 }));
      liveness.push({
        person,
        realParallax: real.length === views.length ? assessParallax(labelled(real)).parallax : null,
        flatParallax: flat.length === views.length ? assessParallax(labelled(flat)).parallax : null,
        realYawEstimates: real.filter((v) => v.labelYaw !== 0).map((v) => Math.round(v.yawDeg)),
        flatYawEstimates: flat.filter((v) => v.labelYaw !== 0).map((v) => Math.round(v.yawDeg)),
      });
    }
    const realValues = liveness.map((l) => l.realParallax).filter((v): v is number => v !== null);
    const flatValues = liveness.map((l) => l.flatParallax).filter((v): v is number => v !== null);
    // The threshold that best separates the two (balanced accuracy), for the README.
    const candidates = [...realValues, ...flatValues].sort((a, b) => a - b);
    let best = { threshold: 0, balanced: 0, realAccepted: 0, flatRejected: 0 };
    for (let i = 0; i < candidates.length - 1; i++) {
      const threshold = (candidates[i]! + candidates[i + 1]!) / 2;
      const realAccepted = realValues.filter((v) => v >= threshold).length / realValues.length;
      const flatRejected = flatValues.filter((v) => v < threshold).length / flatValues.length;
      if ((realAccepted + flatRejected) / 2 > best.balanced) best = { threshold, balanced: (realAccepted + flatRejected) / 2, realAccepted, flatRejected };
    }
    results.planar = { perPerson: liveness, best };
    printTable(
      'Active liveness: parallax of real head turns vs the frontal photo warped flat (yaw ±30°, pitch ±15°)',
      ['person', 'real parallax', 'flat parallax', 'real yaw estimates', 'flat yaw estimates'],
      liveness.map((l) => [l.person, l.realParallax ?? Number.NaN, l.flatParallax ?? Number.NaN, l.realYawEstimates.join(' '), l.flatYawEstimates.join(' ')]),
    );
    console.log(
      `\nbest parallax threshold ${best.threshold.toFixed(4)}: real accepted ${pct(best.realAccepted * 100, 100)} %, flat rejected ${pct(best.flatRejected * 100, 100)} %`,
    );
    console.log(`\nresults: ${writeResults('enroll', results)}`);
  } finally {
    await services.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
