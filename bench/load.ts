/**
 * `npm run bench:load`: one server (`facegate serve` as a child process, on loopback, 2 vision
 * workers, a temp data folder) under
 * - 50 concurrent WebSocket streams (/api/v1/stream, push cameras) at 5 fps each, 640×480 JPEG
 *   frames of one face (half an enrolled person, half a stranger). Frames the pipeline cannot take
 *   are dropped by design (latest frame wins), so recognition runs at a lower rate under load;
 * - REST clients that enroll (create a person + upload a face) and query (people list, person,
 *   gallery status, recognize) in a loop.
 * Reports frames sent / answered / dropped by the server, REST p50/p99 latency per kind, errors
 * (5xx, network errors, unexpected socket closes: target 0), and the server's RSS every second
 * (start, after warm-up, end, max, slope after warm-up: target flat).
 *
 * Options: --seconds N (default 600, i.e. 10 minutes), --streams N (50), --fps N (5),
 * --rest-clients N (4), --workers N (2). Exit code 1 when there were errors (CI runs 60 s).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { cropFace } from '../test/api/face-fixtures.ts';
import { DEMO_FACES, swayingFaceFrames } from '../test/api/frame-fixtures.ts';
import { printedKey, startChildServer } from '../test/trust/child-server.ts';
import { mb, option, printTable, quantile, sleep, slope, writeResults } from './report.ts';

const SECONDS = option('seconds', 600);
const STREAMS = option('streams', 50);
const FPS = option('fps', 5);
const REST_CLIENTS = option('rest-clients', 4);
const WORKERS = option('workers', 2);
const WARM_UP_S = Math.min(30, SECONDS / 4);

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-load-'));
  // Many cameras on one server: one frame in flight per camera (the rest wait in the latest-frame
  // slot, where a newer frame replaces them) and a vision queue that holds every camera's frame
  // plus the REST calls, so the cameras cannot crowd interactive calls out with 503s.
  const server = await startChildServer(dataDir, {
    FACEGATE_VISION__WORKERS: String(WORKERS),
    FACEGATE_VISION__MAX_QUEUE: String(Math.max(64, STREAMS * 2 + REST_CLIENTS * 4)),
    FACEGATE_REALTIME__FRAMES_IN_FLIGHT: '1',
    FACEGATE_SERVER__LOG_LEVEL: 'error',
  });
  const key = printedKey(server.output());
  const errors: string[] = [];
  const error = (what: string): void => {
    if (errors.length < 1000) errors.push(what);
  };
  const rest = async (kind: string, method: string, path: string, body?: unknown, asKey = key): Promise<{ status: number; json: unknown }> => {
    const t0 = performance.now();
    try {
      const res = await fetch(`${server.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${asKey}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await res.text();
      const list = latencies.get(kind) ?? [];
      list.push(performance.now() - t0);
      latencies.set(kind, list);
      if (res.status >= 500 || res.status === 429) error(`${kind}: HTTP ${res.status} ${text.slice(0, 120)}`);
      return { status: res.status, json: text ? JSON.parse(text) : null };
    } catch (err) {
      error(`${kind}: ${(err as Error).message}`);
      return { status: -1, json: null };
    }
  };
  const latencies = new Map<string, number[]>();

  try {
    console.log(`bench:load: server ${server.base} (pid ${server.proc.pid}), ${STREAMS} streams × ${FPS} fps, ${REST_CLIENTS} REST clients, ${SECONDS} s`);
    const anna = await cropFace(DEMO_FACES.annaIn1.sample, DEMO_FACES.annaIn1, 1.8);
    const stranger = await cropFace(DEMO_FACES.strangerIn3.sample, DEMO_FACES.strangerIn3, 1.8);
    const annaFrames = await swayingFaceFrames(anna, 20);
    const strangerFrames = await swayingFaceFrames(stranger, 20);
    const person = (await rest('setup', 'POST', '/api/v1/people', { name: 'Anna' })).json as { id: string };
    await rest('setup', 'POST', `/api/v1/people/${person.id}/faces`, { image: anna.toString('base64') });

    const t0 = performance.now();
    const endAt = t0 + SECONDS * 1000;
    const rss: Array<[number, number]> = [];
    const sampler = setInterval(() => rss.push([(performance.now() - t0) / 1000, rssOf(server.proc.pid!)]), 1000);
    rss.push([0, rssOf(server.proc.pid!)]);

    // ---- WebSocket streams ----
    let framesSent = 0;
    let results = 0;
    const streams = Array.from({ length: STREAMS }, async (_, s) => {
      const frames = s % 2 === 0 ? annaFrames : strangerFrames;
      const ws = new WebSocket(`${server.base.replace('http', 'ws')}/api/v1/stream?camera=load-${s}&key=${key}`);
      let open = true;
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as { type: string; data?: { code?: string } };
        if (message.type === 'recognition_result') results++;
        else if (message.type === 'error') error(`stream ${s}: ${message.data?.code}`);
      });
      ws.on('close', (code) => {
        if (open) error(`stream ${s}: closed by the server (${code})`);
        open = false;
      });
      ws.on('error', (err) => error(`stream ${s}: ${err.message}`));
      await new Promise((resolve) => ws.once('open', resolve));
      await sleep((s / STREAMS) * (1000 / FPS)); // spread the streams over one frame interval
      for (let i = 0; performance.now() < endAt && open; i++) {
        const due = performance.now() + 1000 / FPS;
        ws.send(frames[i % frames.length]!);
        framesSent++;
        await sleep(due - performance.now());
      }
      open = false;
      ws.close();
    });

    // ---- REST clients: each with its own key, each about four calls a second (within the default rate limits) ----
    let enrolled = 0;
    const clientKeys: string[] = [];
    for (let c = 0; c < REST_CLIENTS; c++) clientKeys.push(((await rest('setup', 'POST', '/api/v1/keys', { name: `load client ${c}`, scopes: ['admin'] })).json as { key: string }).key);
    const clients = Array.from({ length: REST_CLIENTS }, async (_, c) => {
      const call = (kind: string, method: string, path: string, body?: unknown) => rest(kind, method, path, body, clientKeys[c]);
      for (let i = 0; performance.now() < endAt; i++) {
        switch (i % 5) {
          case 0: {
            const p = (await call('enroll: create person', 'POST', '/api/v1/people', { name: `Load ${c}-${i}`, externalId: `load-${c}-${i}` })).json as { id?: string };
            if (p?.id) {
              const r = await call('enroll: upload face', 'POST', `/api/v1/people/${p.id}/faces?allowDuplicate=true`, { image: stranger.toString('base64') });
              if (r.status === 201) enrolled++;
            }
            break;
          }
          case 1:
            await call('list people', 'GET', '/api/v1/people?limit=20');
            break;
          case 2:
            await call('get person', 'GET', `/api/v1/people/${person.id}`);
            break;
          case 3:
            await call('gallery status', 'GET', '/api/v1/gallery/status');
            break;
          default:
            await call('recognize', 'POST', '/api/v1/recognize', { image: annaFrames[i % annaFrames.length]!.toString('base64') });
        }
        await sleep(250);
      }
    });

    // Push cameras are transient (gone when their socket closes): read their counters just before the end.
    type CameraList = { items: Array<{ id: string; stats: { framesIn: number; framesDropped: number; framesProcessed: number } }> };
    const cameraStats = sleep(SECONDS * 1000 - 1500).then(async () => (await rest('setup', 'GET', '/api/v1/cameras')).json as CameraList);
    await Promise.all([...streams, ...clients]);
    await sleep(1000);
    clearInterval(sampler);
    const load = (await cameraStats).items.filter((c) => c.id.startsWith('load-'));
    const serverStats = load.reduce((s, c) => ({ in: s.in + c.stats.framesIn, dropped: s.dropped + c.stats.framesDropped, processed: s.processed + c.stats.framesProcessed }), { in: 0, dropped: 0, processed: 0 });

    const afterWarmUp = rss.filter(([t]) => t >= WARM_UP_S);
    const rssSlopeMbPerMin = (slope(afterWarmUp.map(([t, b]) => [t, b / 1024 / 1024])) || 0) * 60;
    const summary = {
      config: { seconds: SECONDS, streams: STREAMS, fps: FPS, restClients: REST_CLIENTS, workers: WORKERS },
      frames: { sent: framesSent, receivedByServer: serverStats.in, processed: serverStats.processed, droppedByServer: serverStats.dropped, resultsReceived: results },
      rest: Object.fromEntries([...latencies].filter(([k]) => k !== 'setup').map(([k, v]) => [k, { count: v.length, p50Ms: quantile(v, 0.5), p99Ms: quantile(v, 0.99) }])),
      restAll: (() => {
        const all = [...latencies].filter(([k]) => k !== 'setup').flatMap(([, v]) => v);
        return { count: all.length, p50Ms: quantile(all, 0.5), p99Ms: quantile(all, 0.99) };
      })(),
      enrolled,
      errors: { count: errors.length, first: errors.slice(0, 20) },
      rssMb: {
        start: mb(rss[0]![1]),
        afterWarmUp: mb(afterWarmUp[0]?.[1] ?? 0),
        end: mb(rss[rss.length - 1]![1]),
        max: mb(Math.max(...rss.map(([, b]) => b))),
        slopeAfterWarmUpMbPerMin: Math.round(rssSlopeMbPerMin * 100) / 100,
        everyTenSeconds: rss.filter((_, i) => i % 10 === 0).map(([t, b]) => [Math.round(t), mb(b)]),
      },
    };

    printTable(`bench:load — ${STREAMS} streams × ${FPS} fps + ${REST_CLIENTS} REST clients for ${SECONDS} s (${WORKERS} workers)`, ['measure', 'value'], [
      ['frames sent', summary.frames.sent],
      ['frames received by the server', summary.frames.receivedByServer],
      ['frames processed', summary.frames.processed],
      ['frames dropped (latest wins)', summary.frames.droppedByServer],
      ['recognition results received', summary.frames.resultsReceived],
      ['REST calls', summary.restAll.count],
      ['REST p50 ms', summary.restAll.p50Ms],
      ['REST p99 ms', summary.restAll.p99Ms],
      ['people enrolled', enrolled],
      ['errors', errors.length],
      ['RSS start MB', summary.rssMb.start],
      ['RSS after warm-up MB', summary.rssMb.afterWarmUp],
      ['RSS end MB', summary.rssMb.end],
      ['RSS max MB', summary.rssMb.max],
      ['RSS slope after warm-up MB/min', summary.rssMb.slopeAfterWarmUpMbPerMin],
    ]);
    printTable('REST latency per call', ['call', 'count', 'p50 ms', 'p99 ms'], Object.entries(summary.rest).map(([k, v]) => [k, v.count, v.p50Ms, v.p99Ms]));
    if (errors.length > 0) console.log(`\nfirst errors:\n  ${errors.slice(0, 20).join('\n  ')}`);
    console.log(`\nwrote ${writeResults('load', summary)}`);
    if (errors.length > 0) process.exitCode = 1;
  } finally {
    server.proc.kill('SIGTERM');
    await server.exited;
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
