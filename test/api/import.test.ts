import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectPath } from '../../src/config/paths.ts';
import { cropFace, loadFaceFixtures, type FaceFixtures } from './face-fixtures.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';

/*
 * Bulk import and the SVM classifier through the real server with the real face models. Photos are
 * served by a local HTTP server on 127.0.0.1, so the app runs with urlFetch.allowPrivateNetworks
 * (the refusal of private addresses is tested in test/sources/url-image.test.ts).
 */

const B_IN_1 = { x: 824, y: 430, side: 219 };
const STRANGER_IN_3 = { x: 551, y: 330, side: 276 };
const A_IN_3 = { x: 1035, y: 194, side: 308 };

describe('bulk import and the SVM classifier (real server, real models)', () => {
  let dataDir: string;
  let t: TestApp;
  let admin: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  let adminKey: string;
  let photoServer: Server;
  let photos: string;
  const sockets = new Set<Socket>();
  let f: FaceFixtures;
  const extra: Record<string, Buffer> = {};

  beforeAll(async () => {
    f = await loadFaceFixtures();
    extra.b3 = await cropFace(1, B_IN_1, 2.4, { scale: 0.6 });
    extra.s2 = await cropFace(3, STRANGER_IN_3, 2.2, { scale: 0.7, brightness: 1.1 });
    extra.s3 = await cropFace(3, STRANGER_IN_3, 1.5, { brightness: 0.9 });
    extra.a4 = await cropFace(3, A_IN_3, 2.0, { scale: 0.6 });
    const files: Record<string, Buffer> = { ...f, ...extra } as unknown as Record<string, Buffer>;
    photoServer = createServer((req, res) => {
      const name = (req.url ?? '').replace(/^\//, '').replace(/\.jpg$/, '');
      if (name === 'page') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html></html>');
      } else if (files[name]) {
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        res.end(files[name]);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found');
      }
    });
    photoServer.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => photoServer.listen(0, '127.0.0.1', resolve));
    photos = `http://127.0.0.1:${(photoServer.address() as AddressInfo).port}`;

    dataDir = mkdtempSync(join(tmpdir(), 'facegate-import-api-'));
    t = await startTestApp(dataDir, { urlFetch: { allowPrivateNetworks: true } });
    adminKey = t.printedKey!;
    admin = client(t.base, adminKey);
    operator = client(t.base, await createKey(admin, 'operator'));
  });
  afterAll(async () => {
    await t?.app.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => photoServer.close(resolve));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const url = (name: string): string => `${photos}/${name}.jpg`;
  let aliceId: string;

  it('is for admins only', async () => {
    const body = { people: [{ name: 'X', photoUrl: url('a1') }] };
    expect((await client(t.base, 'fg_nope')('POST', '/api/v1/people/import', body)).status).toBe(401);
    const res = await operator('POST', '/api/v1/people/import', body);
    expect(res.status).toBe(403);
    expect(res.type).toContain('application/problem+json');
  });

  it('refuses invalid bodies with a 400 problem before doing anything', async () => {
    const bad: unknown[] = [
      { people: [{ name: 'X', photoUrl: url('a1'), extra: 1 }] },
      { people: [{ photoUrl: url('a1') }] },
      { people: [] },
      { people: [{ name: 'X' }], classStudents: [{ rollNo: '1', url: url('a1') }] },
      { classStudents: [{ rollNo: '1' }] },
      { people: Array.from({ length: 1001 }, (_, i) => ({ name: `P${i}` })) },
      { people: [{ name: 'X' }], onExisting: 'merge' },
    ];
    for (const body of bad) {
      const res = await admin('POST', '/api/v1/people/import', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.json.code).toBe('validation_failed');
    }
    expect((await admin('GET', '/api/v1/people')).json.total).toBe(0);
  });

  it('answers every row: added with its faces, failed with reasons and nobody left behind, skipped as a duplicate face', async () => {
    const res = await admin('POST', '/api/v1/people/import', {
      people: [
        { externalId: 'E1', name: 'Alice', department: 'R&D', photoUrls: [url('a1'), url('a2')] },
        { externalId: 'E2', name: 'Bob', photoUrl: url('b1'), photoUrls: [url('group'), `${photos}/page`] },
        { externalId: 'E3', name: 'Nobody', photoUrls: [url('noFace'), url('missing')] },
        { externalId: 'E4', name: 'Alice again', photoUrl: url('a3') },
        { externalId: 'E5', name: 'By FTP', photoUrl: 'ftp://example.com/a.jpg' },
      ],
    });
    expect(res.status).toBe(200);
    const body: Json = res.json;
    expect(body.summary).toEqual({ rows: 5, added: 2, updated: 0, skipped: 1, failed: 2, templatesAdded: 3 });
    expect(body.message).toBe('Data received. Added: 2 new person(s). Skipped: 1 duplicate(s). Failed: 2.');
    const [alice, bob, nobody, again, ftp] = body.rows;
    aliceId = alice.personId;
    expect(alice).toMatchObject({ index: 0, status: 'added', externalId: 'E1', templatesAdded: 2, reason: null });
    expect(bob).toMatchObject({ status: 'added', templatesAdded: 1 });
    expect(bob.photos.map((p: Json) => p.reason ?? p.status)).toEqual(['added', 'several_faces', 'unsupported_media_type']);
    expect(nobody).toMatchObject({ status: 'failed', reason: 'no_usable_face', personId: null });
    expect(nobody.photos.map((p: Json) => p.reason)).toEqual(['no_face', 'url_fetch_failed']);
    expect(again).toMatchObject({ status: 'skipped', reason: 'duplicate_face', personId: aliceId });
    expect(again.photos[0]).toMatchObject({ status: 'refused', reason: 'duplicate', duplicateOf: aliceId });
    expect(ftp).toMatchObject({ status: 'failed', reason: 'no_usable_face' });
    expect(ftp.photos[0].reason).toBe('url_not_allowed');

    const person = await admin('GET', `/api/v1/people/${aliceId}`);
    expect(person.json).toMatchObject({ name: 'Alice', externalId: 'E1', department: 'R&D' });
    const list = await admin('GET', '/api/v1/people');
    expect(list.json.items.map((p: Json) => p.externalId).sort()).toEqual(['E1', 'E2']);
    const faces = await admin('GET', `/api/v1/people/${aliceId}/faces`);
    expect(faces.json.items.map((x: Json) => x.source)).toEqual(['import', 'import']);
  });

  it('accepts the roll-number registration body as is, and skips a roll number seen before', async () => {
    const body = { classStudents: [{ rollNo: '13030824141', url: url('stranger') }] };
    const first = await admin('POST', '/api/v1/people/import', body);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ status: 'success', message: 'Data received. Added: 1 new student(s). Skipped: 0 duplicate(s). Failed: 0.' });
    const student = await admin('GET', `/api/v1/people/${first.json.rows[0].personId}`);
    expect(student.json).toMatchObject({ externalId: '13030824141', name: '13030824141', type: 'student' });
    const again = await admin('POST', '/api/v1/people/import', body);
    expect(again.json.message).toBe('Data received. Added: 0 new student(s). Skipped: 1 duplicate(s). Failed: 0.');
    expect(again.json.rows[0]).toMatchObject({ status: 'skipped', reason: 'external_id_exists', personId: first.json.rows[0].personId });
  });

  it('trains the SVM only when two people have enough faces, and answers with its cross-validation', async () => {
    const tooFew = await admin('POST', '/api/v1/system/train-model');
    expect(tooFew.status, JSON.stringify(tooFew.json)).toBe(409);
    expect(tooFew.json).toMatchObject({ code: 'not_enough_people', minTemplatesPerPerson: 3 });

    // More faces for existing people: onExisting add_faces (and a3 is Alice's own face, so allowed).
    const more = await admin('POST', '/api/v1/people/import', {
      onExisting: 'add_faces',
      people: [
        { externalId: 'E1', photoUrl: url('a3') },
        { externalId: 'E2', photoUrls: [url('b2'), url('b3')] },
      ],
    });
    expect(more.json.rows.map((r: Json) => [r.status, r.templatesAdded])).toEqual([
      ['updated', 1],
      ['updated', 2],
    ]);
    const students = await admin('POST', '/api/v1/people/import', { onExisting: 'add_faces', classStudents: [{ rollNo: '13030824141', url: url('s2') }, { rollNo: '13030824141', url: url('s3') }] });
    expect(students.json.summary).toMatchObject({ updated: 2, templatesAdded: 2 });

    expect((await operator('POST', '/api/v1/system/train-model', {})).status).toBe(403);
    const trained = await admin('POST', '/api/v1/system/train-model', { force_retrain: true });
    expect(trained.status).toBe(200);
    const report = trained.json.report;
    expect(trained.json).toMatchObject({ retrained: true, classifier: 'cosine' });
    expect(report).toMatchObject({ people: 3, templates: 9, peopleLeftToCosine: 0, minTemplatesPerPerson: 3, folds: 3 });
    expect(report.grid.length).toBeGreaterThanOrEqual(4);
    expect(report.chosen.accuracy).toBeGreaterThan(0.6);
    expect(typeof report.acceptDecision).toBe('number');

    const status = await operator('GET', '/api/v1/system/model');
    expect(status.json).toMatchObject({ classifier: 'cosine', trained: true, stale: false, report: { trainedAt: report.trainedAt } });
    const unchanged = await admin('POST', '/api/v1/system/train-model');
    expect(unchanged.json).toMatchObject({ retrained: false, report: { trainedAt: report.trainedAt } });
  });

  it('recognises with the SVM after a restart with identity.classifier = "svm"', async () => {
    await t.app.close();
    t = await startTestApp(dataDir, { urlFetch: { allowPrivateNetworks: true }, identity: { classifier: 'svm' } });
    admin = client(t.base, adminKey);
    expect(t.logs.join('\n')).not.toMatch(/no SVM is trained/);
    const res = await admin('POST', '/api/v1/recognize', { image: extra.a4!.toString('base64') });
    expect(res.status).toBe(200);
    expect(res.json.scorer).toBe('svm');
    expect(res.json.faces).toHaveLength(1);
    expect(res.json.faces[0]).toMatchObject({ decision: 'match', person: { id: aliceId, name: 'Alice' } });
    const bob = await admin('POST', '/api/v1/recognize', { image: f.b1.toString('base64') });
    expect(bob.json.faces[0].person?.name).toBe('Bob');
  });

  it('imports a folder from the command line into the running server’s gallery', async () => {
    // A person nobody enrolled yet (a frontal face of another demo photo), cropped twice.
    const face = { x: 770, y: 117, side: 208 };
    const folder = join(dataDir, 'to-import');
    mkdirSync(join(folder, 'E9'), { recursive: true });
    writeFileSync(join(folder, 'E9', '1.jpg'), await cropFace(5, face, 1.5));
    writeFileSync(join(folder, 'E9', '2.jpg'), await cropFace(5, face, 1.6, { scale: 0.8 }));
    const probe = await cropFace(5, face, 1.7);

    const before = await admin('POST', '/api/v1/recognize', { image: probe.toString('base64') });
    expect(before.json.faces[0]?.decision).toBe('unknown');

    const { code, stdout } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [projectPath('bin/facegate.mjs'), 'import', folder, '--type', 'employee'],
        { env: { ...process.env, FACEGATE_DATA_DIR: dataDir, FACEGATE_VISION__WORKERS: '1', FACEGATE_CONFIG: '' }, timeout: 120_000 },
        (error, out, err) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out, stderr: err }),
      );
    });
    expect(stdout).toContain('1 rows — 1 added, 0 updated, 0 skipped, 0 failed; 2 faces added');
    expect(code).toBe(0);

    // The server learns of another process's writes from the gallery change log.
    await t.app.gallery.syncWithStore();
    const after = await admin('POST', '/api/v1/recognize', { image: probe.toString('base64') });
    expect(after.json.faces[0]).toMatchObject({ decision: 'match', person: { externalId: 'E9' } });
    const model = await admin('GET', '/api/v1/system/model');
    expect(model.json).toMatchObject({ classifier: 'svm', trained: true, stale: true });
  });
});
