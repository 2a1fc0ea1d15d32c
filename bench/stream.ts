/**
 * `npm run bench:stream`: the camera pipeline under a live stream, against a naive per-frame
 * pipeline in the same run.
 * - The real server in this process (2 vision workers, temp data folder, no processing rate limit),
 *   one enrolled person, and a 640×480 one-face stream at 30 fps for 60 s through WebSocket
 *   /api/v1/stream: the person steps in (4 s), leaves (2.5 s), a stranger steps in (3 s), leaves
 *   (2.5 s), again and again. Measured: processed fps, latency frame sent → result received
 *   (p50/p99), time to identity per step-in (first frame with the face → first result naming
 *   them), dropped frames, RSS every second (start/end/max, slope after warm-up).
 * - Capacity: the same frames sent as fast as the pipeline takes them (3 frames outstanding,
 *   so it never waits and never drops) — what "processed fps" means without the 30 fps input cap.
 * - Naive: the same frames through pool.analyze(embed 'all', liveness) on every frame plus the
 *   identity decision, 2 frames at a time (both workers busy), as fast as it goes.
 * Frames: Pointing'04 photos of one person (and another as the stranger) when
 * /work/shared/datasets is there, else the face-api demo photos.
 *
 * Options: --seconds N (stream length, default 60), --capacity-seconds N (default 15),
 * --naive-frames N (default: every streamed frame), --workers N (default 2), --in-flight N (realtime.framesInFlight;
 * default 0: one frame of a camera per worker).
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import WebSocket from 'ws';
import { createApp } from '../src/app.ts';
import { parseConfig } from '../src/config/config.ts';
import { projectPath } from '../src/config/paths.ts';
import { CosineGalleryScorer, identityPolicyFor, RecognitionService } from '../src/services/recognition.service.ts';
import { calibratedThresholds, embeddingModelIdFor } from '../src/vision/engine-factory.ts';
import { cropFace } from '../test/api/face-fixtures.ts';
import { DEMO_FACES, emptyFrame, FRAME_HEIGHT, FRAME_WIDTH, photoFrame } from '../test/api/frame-fixtures.ts';
import { mb, median, option, printTable, quantile, sleep, slope, writeResults } from './report.ts';

// ---- options ----

const SECONDS = option('seconds', 60);
const CAPACITY_SECONDS = option('capacity-seconds', 15);
const WORKERS = option('workers', 2);
const FRAMES_IN_FLIGHT = option('in-flight', 0);
const INPUT_FPS = 30;
const NAIVE_FRAMES = option('naive-frames', Math.round(SECONDS * INPUT_FPS));
const WARM_UP_S = Math.min(10, SECONDS / 4);
const ROUNDS = 3;
const DATASETS = process.env.FACEGATE_DATASETS ?? projectPath('../shared/datasets');

// ---- frames ----

type Who = 'person' | 'stranger' | null;

interface Media {
  source: string;
  /** Photos to enrol the person from. */
  enroll: Buffer[];
  /** Frames of the person / the stranger, made on demand (pose index, shift in px). */
  personFrame(pose: number, dx: number, dy: number): Promise<Buffer>;
  strangerFrame(pose: number, dx: number, dy: number): Promise<Buffer>;
  poses: { person: number; stranger: number };
  empty: Buffer;
}

const SHIFT_MARGIN_PX = 10;

/** A 384×288 Pointing'04 photo as a 640×480 frame, shifted by (dx, dy) (|d| ≤ SHIFT_MARGIN_PX). */
async function upscaledFrame(photo: Buffer, dx: number, dy: number): Promise<Buffer> {
  const m = SHIFT_MARGIN_PX;
  return sharp(photo)
    .resize(FRAME_WIDTH + 2 * m, FRAME_HEIGHT + 2 * m, { fit: 'fill' })
    .extract({ left: m + Math.round(dx), top: m + Math.round(dy), width: FRAME_WIDTH, height: FRAME_HEIGHT })
    .jpeg({ quality: 85 })
    .toBuffer();
}

async function pointingMedia(): Promise<Media | undefined> {
  const poseDir = join(DATASETS, 'pose');
  if (!existsSync(poseDir)) return undefined;
  // Series 1 enrols, series 2 (another take) streams; near-frontal views only (|yaw|, |pitch| ≤ 15°).
  const near = ['+0+0', '+0+15', '+15+0', '+0-15', '-15+0', '+15+15', '-15-15', '+15-15', '-15+15'];
  const photos = async (person: string, series: number, tags: string[]) => {
    const files = readdirSync(join(poseDir, person));
    const out: Buffer[] = [];
    for (const tag of tags) {
      const file = files.find((f) => f.startsWith(`${person}${series}`) && f.endsWith(`${tag}.jpg`));
      if (file) out.push(await readFile(join(poseDir, person, file)));
    }
    return out;
  };
  const person = 'person03';
  const stranger = 'person07';
  const enroll = await photos(person, 1, ['+0+0', '+0+15', '+0-15']);
  const personViews = await photos(person, 2, near);
  const strangerViews = await photos(stranger, 2, near);
  if (enroll.length === 0 || personViews.length === 0 || strangerViews.length === 0) return undefined;
  return {
    source: `Pointing'04 ${person} (enrolled from series 1, streamed from series 2), stranger ${stranger}`,
    enroll,
    personFrame: (pose, dx, dy) => upscaledFrame(personViews[pose % personViews.length]!, dx, dy),
    strangerFrame: (pose, dx, dy) => upscaledFrame(strangerViews[pose % strangerViews.length]!, dx, dy),
    poses: { person: personViews.length, stranger: strangerViews.length },
    empty: await emptyFrame(),
  };
}

async function demoMedia(): Promise<Media> {
  return {
    source: 'face-api demo photos: Anna (enrolled from sample3, streamed from sample1), stranger from sample3',
    enroll: [await cropFace(3, DEMO_FACES.annaIn3, 1.6)],
    personFrame: (_pose, dx, dy) => photoFrame(DEMO_FACES.annaIn1, { dx, dy }),
    strangerFrame: (_pose, dx, dy) => photoFrame(DEMO_FACES.strangerIn3, { dx, dy }),
    poses: { person: 1, stranger: 1 },
    empty: await emptyFrame(),
  };
}

interface StreamFrame {
  bytes: Buffer;
  who: Who;
  /** Index of the segment (a step-in or an empty stretch). */
  segment: number;
}

/** Person 4 s, nobody 2.5 s, stranger 3 s, nobody 2.5 s, repeated; the face sways and turns a little. */
async function buildTimeline(media: Media, frameCount: number): Promise<StreamFrame[]> {
  const pattern: { who: Who; seconds: number }[] = [
    { who: 'person', seconds: 4 },
    { who: null, seconds: 2.5 },
    { who: 'stranger', seconds: 3 },
    { who: null, seconds: 2.5 },
  ];
  const cache = new Map<string, Promise<Buffer>>();
  const frames: StreamFrame[] = [];
  let segment = 0;
  let p = 0;
  while (frames.length < frameCount) {
    const { who, seconds } = pattern[p % pattern.length]!;
    const n = Math.min(Math.round(seconds * INPUT_FPS), frameCount - frames.length);
    for (let i = 0; i < n; i++) {
      if (who === null) {
        frames.push({ bytes: media.empty, who, segment });
        continue;
      }
      // A sway of a few pixels (period 2 s), a new head pose every 8 frames.
      const phase = (i / (2 * INPUT_FPS)) * 2 * Math.PI;
      const dx = Math.round(6 * Math.sin(phase));
      const dy = Math.round(3 * Math.cos(phase));
      const pose = Math.floor(i / 8) % (who === 'person' ? media.poses.person : media.poses.stranger);
      const key = `${who}:${pose}:${dx}:${dy}`;
      if (!cache.has(key)) cache.set(key, who === 'person' ? media.personFrame(pose, dx, dy) : media.strangerFrame(pose, dx, dy));
      frames.push({ bytes: await cache.get(key)!, who, segment });
    }
    segment++;
    p++;
  }
  return frames;
}

// ---- helpers ----

interface RssSample {
  tS: number;
  rssMb: number;
  phase: string;
}

/** Least-squares slope of y over x. */
function majority(values: (string | null)[]): string | null {
  const counts = new Map<string | null, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | null = null;
  let bestCount = -1;
  for (const [v, c] of counts) {
    if (c > bestCount) {
      best = v;
      bestCount = c;
    }
  }
  return best;
}

interface Result {
  frameId: number;
  receivedAtMs: number;
  personIds: (string | null)[];
}

function openSocket(url: string, key: string, onResult: (r: Result) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    ws.on('message', (data) => {
      const message = JSON.parse(data.toString()) as { type: string; frame_id?: number; faces?: { person_id: string | null }[]; data?: { message: string } };
      if (message.type === 'recognition_result' && typeof message.frame_id === 'number') {
        onResult({ frameId: message.frame_id, receivedAtMs: performance.now(), personIds: (message.faces ?? []).map((f) => f.person_id) });
      } else if (message.type === 'error') {
        console.error(`stream error: ${message.data?.message}`);
      }
    });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function sendFrame(ws: WebSocket, frame: StreamFrame, frameId: number): void {
  ws.send(JSON.stringify({ type: 'frame', data: frame.bytes.toString('base64'), frame_id: frameId, timestamp: Date.now() }));
}

// ---- run ----

async function main(): Promise<void> {
  const media = (await pointingMedia()) ?? (await demoMedia());
  const frameCount = Math.round(SECONDS * INPUT_FPS);
  const timeline = await buildTimeline(media, frameCount);
  console.log(`frames: ${media.source}; ${timeline.length} frames of ${FRAME_WIDTH}×${FRAME_HEIGHT}, ${new Set(timeline.map((f) => f.bytes)).size} distinct`);

  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-bench-stream-'));
  const config = parseConfig({
    dataDir,
    server: { logLevel: 'silent' },
    vision: { workers: WORKERS },
    gallery: { saveEveryMs: 3_600_000 },
    // No processing rate limit: the pipeline takes every frame it can.
    realtime: { defaultMaxFps: 0, framesInFlight: FRAMES_IN_FLIGHT },
    sources: { stream: { maxMessagesPerSecond: 1000 } },
  });
  const logs: string[] = [];
  const app = await createApp(config, (m) => logs.push(m));
  const rss: RssSample[] = [];
  const t0 = performance.now();
  let phase = 'setup';
  const sampler = setInterval(() => rss.push({ tS: (performance.now() - t0) / 1000, rssMb: mb(process.memoryUsage().rss), phase }), 1000);
  try {
    const base = await app.server.listen({ port: 0, host: '127.0.0.1' });
    const key = /fg_[A-Za-z0-9_-]+/.exec(logs.join('\n'))![0];
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return (await res.json()) as Record<string, unknown>;
    };
    const person = await call('POST', '/api/v1/people', { name: 'Bench Person' });
    const added = await call('POST', `/api/v1/people/${String(person.id)}/faces`, { images: media.enroll.map((b) => b.toString('base64')) });
    if (added.added !== media.enroll.length) throw new Error(`enrolment failed: ${JSON.stringify(added)}`);
    const personId = String(person.id);
    const wsBase = base.replace(/^http/, 'ws');
    // Warm the workers up (first inference of each model is slow).
    for (const bytes of [timeline.find((f) => f.who === 'person')!.bytes, media.empty]) {
      await Promise.all(Array.from({ length: WORKERS }, () => app.vision.analyze(bytes, { embed: 'all', liveness: true })));
    }

    // -- 1. the live stream: 30 fps for SECONDS --
    phase = 'stream';
    const streamStartS = (performance.now() - t0) / 1000;
    const sentAt = new Float64Array(timeline.length);
    const results: Result[] = [];
    const ws = await openSocket(`${wsBase}/api/v1/stream?camera=bench`, key, (r) => results.push(r));
    const streamCpu = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < timeline.length; i++) {
      await sleep(start + (i * 1000) / INPUT_FPS - performance.now());
      sentAt[i] = performance.now();
      sendFrame(ws, timeline[i]!, i);
    }
    const streamEnd = performance.now();
    await sleep(1500);
    const streamCpuUsed = process.cpuUsage(streamCpu);
    const streamCpuMs = (streamCpuUsed.user + streamCpuUsed.system) / 1000;
    ws.close();
    const streamEndS = (performance.now() - t0) / 1000;
    const pipelineStats = app.pipeline.stats('bench')[0]!;

    const latencies = results.map((r) => r.receivedAtMs - sentAt[r.frameId]!);
    const streamSeconds = (streamEnd - start) / 1000;
    // Time to identity, per step-in of the enrolled person.
    const segments = new Map<number, { who: Who; first: number; last: number }>();
    timeline.forEach((f, i) => {
      const s = segments.get(f.segment);
      if (s) s.last = i;
      else segments.set(f.segment, { who: f.who, first: i, last: i });
    });
    const byFrame = new Map(results.map((r) => [r.frameId, r]));
    const stepIns: { segment: number; timeToIdentityMs: number | null; named: string | null }[] = [];
    const ourIdentity = new Map<number, string | null>();
    for (const [segment, s] of segments) {
      if (s.who === null) continue;
      const named: (string | null)[] = [];
      let firstNamedAt: number | null = null;
      for (let i = s.first; i <= s.last; i++) {
        const r = byFrame.get(i);
        if (!r) continue;
        const id = r.personIds.find((p) => p !== null) ?? null;
        named.push(id);
        if (firstNamedAt === null && id === personId) firstNamedAt = r.receivedAtMs;
      }
      ourIdentity.set(segment, majority(named));
      if (s.who === 'person') stepIns.push({ segment, timeToIdentityMs: firstNamedAt === null ? null : firstNamedAt - sentAt[s.first]!, named: majority(named) });
    }
    const ttis = stepIns.map((s) => s.timeToIdentityMs).filter((v): v is number => v !== null);

    // -- 2 and 3, interleaved in rounds so that load from elsewhere on the machine hits both alike --
    // Capacity: the pipeline fed as fast as it takes frames (3 outstanding: 2 analysed, 1 waiting).
    // Naive: detect + embed + liveness + decide on every frame, WORKERS frames at a time.
    const { modelId } = embeddingModelIdFor(config.vision);
    const thresholds = calibratedThresholds(config);
    const recognition = new RecognitionService({
      store: app.store,
      vision: app.vision,
      scorer: new CosineGalleryScorer(app.gallery, config.identity.searchK),
      modelId,
      policy: identityPolicyFor(config, thresholds.search),
      verifyThreshold: thresholds.verify,
    });
    const naiveFrames = timeline.slice(0, NAIVE_FRAMES);
    const naiveNamed: (string | null)[] = new Array<string | null>(naiveFrames.length).fill(null);
    let capacityResults = 0;
    // Results come in frame order and the newest frame always gets one, so a frame older than the
    // latest answered is either answered or dropped (two frames arriving in one tick: newest wins).
    let lastAnswered = -1;
    let wake: (() => void) | undefined;
    const capWs = await openSocket(`${wsBase}/api/v1/stream?camera=bench-capacity`, key, (r) => {
      capacityResults++;
      lastAnswered = r.frameId;
      wake?.();
    });
    let capSent = 0;
    const outstanding = () => capSent - 1 - lastAnswered;
    let capMs = 0;
    let capCpuMs = 0;
    let naiveNext = 0;
    let naiveMs = 0;
    let naiveCpuMs = 0;
    const cpuMsSince = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1000;
    };
    for (let round = 0; round < ROUNDS; round++) {
      phase = 'capacity';
      let cpu = process.cpuUsage();
      let begin = performance.now();
      const until = begin + (CAPACITY_SECONDS * 1000) / ROUNDS;
      while (performance.now() < until) {
        while (outstanding() >= 3) await new Promise<void>((r) => (wake = r));
        sendFrame(capWs, timeline[capSent % timeline.length]!, capSent);
        capSent++;
      }
      while (outstanding() > 0) await new Promise<void>((r) => (wake = r));
      capMs += performance.now() - begin;
      capCpuMs += cpuMsSince(cpu);

      phase = 'naive';
      cpu = process.cpuUsage();
      begin = performance.now();
      const stop = Math.round(((round + 1) * naiveFrames.length) / ROUNDS);
      await Promise.all(
        Array.from({ length: WORKERS }, async () => {
          while (naiveNext < stop) {
            const i = naiveNext++;
            const analysis = await app.vision.analyze(naiveFrames[i]!.bytes, { embed: 'all', liveness: true });
            for (const face of analysis.faces) {
              if (!face.embedding) continue;
              const d = await recognition.decideEmbedding({ embedding: face.embedding, qualityPass: face.quality.pass, ...(face.liveness === undefined ? {} : { liveness: face.liveness }) });
              if (d.decision.decision === 'match') naiveNamed[i] = d.decision.personId;
            }
          }
        }),
      );
      naiveMs += performance.now() - begin;
      naiveCpuMs += cpuMsSince(cpu);
    }
    capWs.close();
    const capacityStats = app.pipeline.stats('bench-capacity')[0]!;
    const capSeconds = capMs / 1000;
    const capacityFps = capacityResults / capSeconds;
    const naiveSeconds = naiveMs / 1000;
    const naiveFps = naiveFrames.length / naiveSeconds;
    phase = 'done';

    // Identities per face segment: the majority name of each pipeline's results.
    const segmentRows: { segment: number; who: Who; ours: string | null; naive: string | null }[] = [];
    for (const [segment, s] of segments) {
      if (s.who === null || s.first >= naiveFrames.length) continue;
      segmentRows.push({ segment, who: s.who, ours: ourIdentity.get(segment) ?? null, naive: majority(naiveNamed.slice(s.first, Math.min(s.last + 1, naiveFrames.length))) });
    }
    const expected = (who: Who) => (who === 'person' ? personId : null);
    const sameIdentities = segmentRows.every((r) => r.ours === r.naive);
    const correct = { ours: segmentRows.filter((r) => r.ours === expected(r.who)).length, naive: segmentRows.filter((r) => r.naive === expected(r.who)).length };

    const streamRss = rss.filter((s) => s.tS >= streamStartS && s.tS <= streamEndS);
    const afterWarmUp = streamRss.filter((s) => s.tS >= streamStartS + WARM_UP_S);
    const rssSlopeMbPerMin = slope(afterWarmUp.map((s): [number, number] => [s.tS / 60, s.rssMb]));
    const allRss = rss.map((s) => s.rssMb);
    const streamFps = results.length / streamSeconds;

    const summary = {
      frames: media.source,
      workers: WORKERS,
      inputFps: INPUT_FPS,
      seconds: Math.round(streamSeconds * 10) / 10,
      stream: {
        framesSent: timeline.length,
        results: results.length,
        processedFps: Math.round(streamFps * 10) / 10,
        droppedFrames: timeline.length - results.length,
        pipelineDropped: pipelineStats.framesDropped,
        latencyMs: { p50: Math.round(median(latencies)), p99: Math.round(quantile(latencies, 0.99)), max: Math.round(Math.max(...latencies)) },
        serverLatencyMs: pipelineStats.latency,
        embeddings: pipelineStats.embeddings,
        cpuMsPerFrame: Math.round((streamCpuMs / Math.max(1, results.length)) * 10) / 10,
        timeToIdentityMs: { p50: Math.round(median(ttis)), max: Math.round(Math.max(...ttis)), stepIns: stepIns.length, named: ttis.length, all: ttis.map(Math.round) },
      },
      capacity: {
        seconds: Math.round(capSeconds * 10) / 10,
        frames: capacityResults,
        processedFps: Math.round(capacityFps * 10) / 10,
        cpuMsPerFrame: Math.round((capCpuMs / Math.max(1, capacityResults)) * 10) / 10,
        embeddings: capacityStats.embeddings,
        dropped: capacityStats.framesDropped,
      },
      naive: {
        frames: naiveFrames.length,
        seconds: Math.round(naiveSeconds * 10) / 10,
        processedFps: Math.round(naiveFps * 10) / 10,
        cpuMsPerFrame: Math.round((naiveCpuMs / naiveFrames.length) * 10) / 10,
      },
      speedup: {
        capacityOverNaive: Math.round((capacityFps / naiveFps) * 100) / 100,
        streamOverNaive: Math.round((streamFps / naiveFps) * 100) / 100,
        naiveCpuOverOurs: Math.round((naiveCpuMs / naiveFrames.length / (capCpuMs / Math.max(1, capacityResults))) * 100) / 100,
      },
      identities: { sameIdentities, segments: segmentRows.length, correct, rows: segmentRows.map((r) => ({ ...r, ours: r.ours === personId ? 'person' : r.ours, naive: r.naive === personId ? 'person' : r.naive })) },
      rssMb: {
        start: streamRss[0]?.rssMb ?? null,
        end: streamRss.at(-1)?.rssMb ?? null,
        max: Math.max(...allRss),
        maxDuringStream: Math.max(...streamRss.map((s) => s.rssMb)),
        slopeAfterWarmUpMbPerMin: Math.round(rssSlopeMbPerMin * 100) / 100,
        samples: rss,
      },
      targets: {
        speedupAtLeast5x: capacityFps / naiveFps >= 5,
        sameIdentities,
        timeToIdentityP50AtMost300ms: median(ttis) <= 300,
        rssAtMost600Mb: Math.max(...allRss) <= 600,
        // Flat = not growing: a slope under 5 MB/min after warm-up (RSS settling down is fine).
        rssFlat: rssSlopeMbPerMin <= 5,
      },
    };

    printTable(`Stream: ${timeline.length} frames at ${INPUT_FPS} fps, ${WORKERS} workers (${media.source})`, ['measure', 'value'], [
      ['processed fps (30 fps input, no rate limit)', summary.stream.processedFps],
      ['results / frames sent', `${results.length} / ${timeline.length}`],
      ['dropped frames', summary.stream.droppedFrames],
      ['latency p50 / p99, ms (sent → result received)', `${summary.stream.latencyMs.p50} / ${summary.stream.latencyMs.p99}`],
      ['time to identity p50 / max, ms', `${summary.stream.timeToIdentityMs.p50} / ${summary.stream.timeToIdentityMs.max} (${ttis.length}/${stepIns.length} step-ins named)`],
      ['embeddings', summary.stream.embeddings],
      ['CPU-ms per processed frame (all threads)', summary.stream.cpuMsPerFrame],
      ['capacity: processed fps, no input cap', `${summary.capacity.processedFps} (${summary.capacity.cpuMsPerFrame} CPU-ms/frame)`],
      ['naive: processed fps (embed + liveness every frame)', `${summary.naive.processedFps} (${summary.naive.cpuMsPerFrame} CPU-ms/frame)`],
      ['capacity ÷ naive fps; naive ÷ ours CPU per frame', `${summary.speedup.capacityOverNaive}; ${summary.speedup.naiveCpuOverOurs}`],
      ['identities: same per face segment', `${sameIdentities} (correct: ours ${correct.ours}/${segmentRows.length}, naive ${correct.naive}/${segmentRows.length})`],
      ['RSS start / end / max, MB', `${summary.rssMb.start} / ${summary.rssMb.end} / ${summary.rssMb.max}`],
      ['RSS slope after warm-up, MB/min', summary.rssMb.slopeAfterWarmUpMbPerMin],
    ]);
    printTable('Targets', ['target', 'met'], Object.entries(summary.targets).map(([k, v]) => [k, v ? 'yes' : 'NO']));
    const file = writeResults('stream', summary);
    console.log(`\nwritten: ${file}`);
  } finally {
    clearInterval(sampler);
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
