import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures, type FaceFixtures } from '../api/face-fixtures.ts';
import { client, createKey, type Json } from '../api/test-app.ts';
import { printedKey, startChildServer, type ChildServer } from './child-server.ts';

/*
 * The server as an operator runs it: `facegate serve` in a child process. Secrets never reach its
 * output; SIGTERM shuts it down cleanly; SIGKILL in the middle of imports and uploads loses no
 * committed change, leaves no half-enrolled person, and the index agrees with the store after restart.
 */

const b64 = (b: Buffer): string => b.toString('base64');
const dirs: string[] = [];
const tempDir = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'facegate-proc-'));
  dirs.push(d);
  return d;
};
const children: ChildServer[] = [];
async function start(dataDir: string, env: Record<string, string> = {}): Promise<ChildServer> {
  const child = await startChildServer(dataDir, env);
  children.push(child);
  return child;
}

let fx: FaceFixtures;
let images: Server;
let imagesBase: string;

beforeAll(async () => {
  fx = await loadFaceFixtures();
  // Photos served over HTTP for URL imports (the server is told to allow loopback URLs).
  images = createServer((req, res) => {
    const name = (req.url ?? '').slice(1).replace(/\.jpg$/, '') as keyof FaceFixtures;
    const body = fx[name];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'image/jpeg' }).end(body);
  });
  await new Promise<void>((resolve) => images.listen(0, '127.0.0.1', resolve));
  imagesBase = `http://127.0.0.1:${(images.address() as { port: number }).port}`;
});
afterAll(async () => {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  images?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('secrets never reach the logs', () => {
  it('keys (header, bearer, WebSocket query, wrong ones), webhook and MQTT secrets, the embedding key: not in the output', async () => {
    const embeddingKey = randomBytes(32).toString('hex');
    const webhookSecret = `whsec-${randomBytes(8).toString('hex')}`;
    const mqttPassword = `mqttpw-${randomBytes(8).toString('hex')}`;
    const server = await start(tempDir(), {
      FACEGATE_SERVER__LOG_LEVEL: 'trace',
      FACEGATE_TRUST__EMBEDDING_KEY: embeddingKey,
      FACEGATE_EVENTS__WEBHOOKS: JSON.stringify([{ url: 'http://127.0.0.1:9/hook', secret: webhookSecret, maxAttempts: 1 }]),
      FACEGATE_EVENTS__MQTT__URL: 'mqtt://127.0.0.1:9',
      FACEGATE_EVENTS__MQTT__USERNAME: 'facegate',
      FACEGATE_EVENTS__MQTT__PASSWORD: mqttPassword,
    });
    const admin = printedKey(server.output());
    const call = client(server.base, admin);
    const device = await createKey(call, 'device');
    const wrong = `fg_${randomBytes(18).toString('base64url')}`;
    await fetch(`${server.base}/api/v1/people`, { headers: { 'x-api-key': device } });
    await fetch(`${server.base}/api/v1/people?key=${device}`);
    await fetch(`${server.base}/api/v1/people`, { headers: { authorization: `Bearer ${wrong}` } });
    await fetch(`${server.base}/api/v1/recognize`, { method: 'POST', headers: { authorization: `Bearer ${device}`, 'content-type': 'application/json' }, body: '{"image":' });
    await call('POST', '/api/v1/recognize', { image: b64(fx.a1) });
    for (const key of [device, wrong]) {
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`${server.base.replace('http', 'ws')}/api/v1/events?key=${key}`);
        ws.once('open', () => ws.close());
        ws.once('close', () => resolve());
        ws.once('error', () => resolve());
      });
    }
    await call('POST', '/api/v1/system/reset', {});
    await new Promise((r) => setTimeout(r, 500));
    server.proc.kill('SIGTERM');
    await server.exited;
    const output = server.output();
    expect(output.length).toBeGreaterThan(1000); // trace logging really ran
    expect(output).toContain('"url":"/api/v1/events?key=***"');
    // The first-start admin key is printed once, on purpose, and never again.
    expect(output.split(admin).length - 1).toBe(1);
    for (const secret of [device, wrong, embeddingKey, webhookSecret, mqttPassword]) expect([secret, output.includes(secret)]).toEqual([secret, false]);
  });
});

describe('graceful shutdown on SIGTERM', () => {
  it('finishes the request in flight, refuses new ones, closes sockets and the database, exits 0', async () => {
    const dataDir = tempDir();
    const server = await start(dataDir);
    const call = client(server.base, printedKey(server.output()));
    const person = (await call('POST', '/api/v1/people', { name: 'In Flight' })).json;
    const ws = new WebSocket(`${server.base.replace('http', 'ws')}/api/v1/events?key=${printedKey(server.output())}`);
    await new Promise((resolve) => ws.once('open', resolve));
    const wsClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

    // Four photos analysed one after another by the one worker: this takes a while.
    const inFlight = call('POST', `/api/v1/people/${person.id}/faces?allowDuplicate=true`, { images: [b64(fx.a1), b64(fx.a2), b64(fx.a3), b64(fx.a1)] });
    await new Promise((r) => setTimeout(r, 150));
    server.proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 50));
    const late = await fetch(`${server.base}/api/v1/system/health`, { headers: { connection: 'close' } }).then((r) => r.status, () => 'refused');
    expect([503, 'refused']).toContain(late);
    const answered = await inFlight;
    expect(answered.status).toBe(201);
    expect(answered.json.added).toBeGreaterThanOrEqual(3);
    expect(await wsClosed).toBeGreaterThan(0);
    // Nothing holds the shutdown up once the work is done (the grace period is 10 s).
    const { code } = await Promise.race([server.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no exit within 5 s')), 5000))]);
    expect(code).toBe(0);
    expect(server.output()).toContain('stopped cleanly');
    await expect(fetch(`${server.base}/api/v1/system/health`)).rejects.toThrow();
    // The database was closed: SQLite removes its WAL when the last connection closes cleanly.
    expect(existsSync(join(dataDir, 'facegate.db-wal')) ? statSync(join(dataDir, 'facegate.db-wal')).size : 0).toBe(0);

    // What the finished request added is there after a restart.
    const again = await start(dataDir);
    const admin2 = client(again.base, printedKey(server.output()));
    expect((await admin2('GET', `/api/v1/people/${person.id}/faces`)).json.items).toHaveLength(answered.json.added);
    again.proc.kill('SIGTERM');
    await again.exited;
  });
});

describe('crash safety: SIGKILL during imports and uploads', () => {
  it('loses no answered change, leaves no person without faces, and the index agrees with the store', async () => {
    const dataDir = tempDir();
    const env = {
      FACEGATE_URL_FETCH__ALLOW_PRIVATE_NETWORKS: 'true',
      FACEGATE_SECURITY__RATE_LIMIT__ENABLED: 'false',
      // Scan enrollment that accepts the flat sample photos (as test/api/enrollment.test.ts sets it up).
      FACEGATE_ENROLLMENT: JSON.stringify({
        holdMs: 0,
        maxPoseStepDeg: 90,
        templatesPerPose: 2,
        minParallax: 0,
        scan: { yawEdgesDeg: [-90, 90], pitchEdgesDeg: [-90, 90], keepPerBin: 3, minCoveredBins: 1 },
      }),
    };
    let server = await start(dataDir, env);
    const key = printedKey(server.output());
    let call = client(server.base, key);
    const anna = (await call('POST', '/api/v1/people', { name: 'Anna', externalId: 'anna' })).json;
    expect((await call('POST', `/api/v1/people/${anna.id}/faces`, { images: [b64(fx.a1)] })).json.added).toBe(1);

    const answeredFaces: string[] = [];
    const answeredPeople: string[] = [];
    const answeredCheckIns: string[] = [];
    const completedEnrollments: string[] = [];
    // People to check in by hand during the bursts (each twice: the second must be refused, 409).
    const attendees: string[] = [];
    for (let i = 0; i < 20; i++) attendees.push((await call('POST', '/api/v1/people', { name: `Attendee ${i}` })).json.id as string);
    for (let round = 0; round < 2; round++) {
      // An import of many rows (new people whose faces are mostly duplicates of Anna: created and
      // refused in one unit of work), face uploads, and person creations, all at once; then SIGKILL.
      const rows = Array.from({ length: 40 }, (_, i) => ({ externalId: `r${round}-${i}`, name: `Row ${i}`, photoUrls: [`${imagesBase}/${i % 3 === 0 ? 'b1' : 'a2'}.jpg`] }));
      const work: Promise<unknown>[] = [call('POST', '/api/v1/people/import', { people: rows, onExisting: 'skip' }).catch(() => undefined)];
      for (let i = 0; i < 6; i++) {
        work.push(
          call('POST', `/api/v1/people/${anna.id}/faces?allowDuplicate=true`, { images: [b64(i % 2 ? fx.a2 : fx.a3)] })
            .then((r) => {
              if (r.status === 201) for (const res of r.json.results as Json[]) if (res.status === 'added') answeredFaces.push(res.face.id as string);
            })
            .catch(() => undefined),
          call('POST', '/api/v1/people', { name: `Burst ${round}-${i}` })
            .then((r) => {
              if (r.status === 201) answeredPeople.push(r.json.id as string);
            })
            .catch(() => undefined),
        );
      }
      // Enrollments: start, two frames, complete (person + templates in one commit).
      for (let e = 0; e < 4; e++) {
        work.push(
          (async () => {
            const started = await call('POST', '/api/v1/enrollments', { employee_code: `enr-${round}-${e}`, full_name: `Enrolled ${round}-${e}`, allowDuplicate: true });
            if (started.status !== 201) return;
            for (const frame of [fx.a1, fx.a2]) await call('POST', `/api/v1/enrollments/${started.json.id}/frames`, { image: b64(frame) });
            const done = await call('POST', `/api/v1/enrollments/${started.json.id}/complete`);
            if (done.status === 200 && done.json.status === 'complete') completedEnrollments.push(done.json.personId as string);
          })().catch(() => undefined),
        );
      }
      // A check-in burst: every attendee not yet in, twice at once.
      for (const personId of attendees) {
        for (let k = 0; k < 2; k++) {
          work.push(
            call('POST', '/api/v1/attendance/mark', { personId })
              .then((r) => {
                if (r.status === 201) answeredCheckIns.push(r.json.id as string);
              })
              .catch(() => undefined),
          );
        }
      }
      // Kill once image work is under way and has answered something (round 0: a face upload,
      // round 1: an enrollment), or after 15 s: the rest is then mid-flight.
      const facesBefore = answeredFaces.length;
      const enrolledBefore = completedEnrollments.length;
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline && (round === 0 ? answeredFaces.length === facesBefore : completedEnrollments.length === enrolledBefore)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 150));
      server.proc.kill('SIGKILL');
      await server.exited;
      await Promise.allSettled(work);

      server = await start(dataDir, env);
      call = client(server.base, key);
      const status = await call('GET', '/api/v1/gallery/status?check=true');
      expect(status.status).toBe(200);
      expect(status.json.lastCheck.inStep).toBe(true);
      const faces = (await call('GET', `/api/v1/people/${anna.id}/faces`)).json.items as Json[];
      const ids = new Set(faces.map((f) => f.id as string));
      for (const id of answeredFaces) expect([id, ids.has(id)]).toEqual([id, true]);
      for (const id of answeredPeople) expect((await call('GET', `/api/v1/people/${id}`)).status).toBe(200);
      // Check-ins: every answered one is there, and nobody is in twice.
      for (const id of answeredCheckIns) expect([id, (await call('GET', `/api/v1/attendance/logs/${id}`)).status]).toEqual([id, 200]);
      const logs = (await call('GET', '/api/v1/attendance/logs?limit=1000')).json.items as Json[];
      const perPerson = new Map<string, number>();
      for (const l of logs) perPerson.set(l.personId as string, (perPerson.get(l.personId as string) ?? 0) + 1);
      expect([...perPerson.values()].filter((n) => n > 1)).toEqual([]);
      for (const id of completedEnrollments) expect([id, (await call('GET', `/api/v1/people/${id}`)).status]).toEqual([id, 200]);
      // No imported or enrolled person without a face: each is person + faces in one commit.
      const people = (await call('GET', '/api/v1/people?limit=1000')).json.items as Json[];
      for (const p of people.filter((x) => typeof x.externalId === 'string' && /^(r|enr-)/.test(x.externalId))) {
        const n = ((await call('GET', `/api/v1/people/${p.id}/faces`)).json.items as Json[]).length;
        expect([p.externalId, n > 0]).toEqual([p.externalId, true]);
      }
    }
    // The bursts really ran (a kill before any answer would prove nothing).
    console.log(`crash test: answered ${answeredPeople.length} people, ${answeredFaces.length} faces, ${answeredCheckIns.length} check-ins, ${completedEnrollments.length} enrollments`);
    expect(answeredPeople.length).toBeGreaterThan(0);
    expect(answeredCheckIns.length).toBeGreaterThan(0);
    expect(answeredFaces.length).toBeGreaterThan(0);
    expect(completedEnrollments.length).toBeGreaterThan(0);
    server.proc.kill('SIGTERM');
    await server.exited;
  });
});
