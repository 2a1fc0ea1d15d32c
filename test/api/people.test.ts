import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/app.ts';
import { loadFaceFixtures, type FaceFixtures } from './face-fixtures.ts';
import { client, createKey, imageForm, startTestApp, type Json, type TestApp } from './test-app.ts';

/*
 * The people API end to end on a real server with the real face models: the README's flow, every
 * refusal, duplicates, deletes, and the gallery index across restarts (saved, missing, out of step).
 */

const b64 = (bytes: Buffer): string => bytes.toString('base64');

describe('people and faces API (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-people-'));
  let t: TestApp;
  let fx: FaceFixtures;
  let adminKey: string;
  let operatorKey: string;
  let call: ReturnType<typeof client>;
  let asOperator: ReturnType<typeof client>;
  let personA: Json;
  let personB: Json;
  let imageServer: Server;
  let imageServerUrl: string;

  const restart = async (): Promise<void> => {
    await t.app.close();
    t = await startTestApp(dataDir, { urlFetch: { allowPrivateNetworks: true } });
    call = client(t.base, adminKey);
    asOperator = client(t.base, operatorKey);
  };
  const recognize = async (photo: Buffer): Promise<Json> => {
    const res = await call('POST', '/api/v1/recognize', imageForm([photo]));
    expect(res.status).toBe(200);
    return res.json;
  };
  const galleryStatus = async (): Promise<Json> => (await call('GET', '/api/v1/gallery/status')).json;

  beforeAll(async () => {
    fx = await loadFaceFixtures();
    // Loopback is refused by default (SSRF); this test serves its own photo on it.
    t = await startTestApp(dataDir, { urlFetch: { allowPrivateNetworks: true } });
    adminKey = t.printedKey!;
    call = client(t.base, adminKey);
    operatorKey = await createKey(call, 'operator');
    asOperator = client(t.base, operatorKey);
    imageServer = createServer((req, res) => {
      if (req.url === '/b2.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fx.b2);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
    imageServerUrl = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    await t?.app.close();
    imageServer?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the README flow: create a person, add two photos, recognise a third; a stranger is unknown', async () => {
    const created = await call('POST', '/api/v1/people', { name: 'Anna Andersen', externalId: 'E-001', department: 'Sales' });
    expect(created.status).toBe(201);
    personA = created.json;
    expect(personA.id).toMatch(/^[0-9a-f-]{36}$/);

    const added = await call('POST', `/api/v1/people/${personA.id}/faces`, imageForm([fx.a1, fx.a2]));
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ added: 2, refused: 0 });
    for (const r of added.json.results) {
      expect(r.status).toBe('added');
      expect(r.face).toMatchObject({ personId: personA.id, source: 'upload', hasThumbnail: true });
      expect(['frontal', 'left', 'right', 'up', 'down']).toContain(r.face.pose.label);
    }
    expect(t.app.gallery.size).toBe(2);

    const third = await recognize(fx.a3);
    expect(third.faces).toHaveLength(1);
    expect(third.faces[0]).toMatchObject({ decision: 'match', reason: null, person: { id: personA.id, name: 'Anna Andersen', externalId: 'E-001' } });
    expect(third.faces[0].similarity).toBeGreaterThan(0.6);
    expect(third.faces[0].margin).toBeGreaterThan(0.05);

    const stranger = await recognize(fx.stranger);
    expect(stranger.faces).toHaveLength(1);
    expect(stranger.faces[0]).toMatchObject({ decision: 'unknown', reason: 'below_threshold', person: null });
    expect(stranger.faces[0].similarity).toBeLessThan(0.5);

    const log = await call('GET', '/api/v1/recognition/log?limit=2');
    expect(log.json.items.map((e: Json) => [e.decision, e.personId, e.reason])).toEqual([
      ['unknown', null, 'below_threshold'],
      ['match', personA.id, null],
    ]);
  });

  it('refuses, per image, a photo with no face, a group photo, and bytes that are no image', async () => {
    const res = await call('POST', `/api/v1/people/${personA.id}/faces`, {
      images: [b64(fx.noFace), b64(fx.group), b64(Buffer.from('this is not an image'))],
    });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ added: 0, refused: 3 });
    expect(res.json.results.map((r: Json) => r.reason)).toEqual(['no_face', 'several_faces', 'invalid_image']);
    expect(res.json.results[1].faceCount).toBeGreaterThanOrEqual(3);
    // A face too small to use is refused for its quality.
    const tiny = await sharp(fx.a3).resize(60).jpeg().toBuffer();
    const small = await call('POST', `/api/v1/people/${personA.id}/faces`, { image: `data:image/jpeg;base64,${b64(tiny)}` });
    expect(small.json.results[0]).toMatchObject({ status: 'refused', reason: 'low_quality' });
    expect(t.app.gallery.size).toBe(2);
  });

  it('refuses another person’s face as a duplicate, naming them; only an admin may override', async () => {
    personB = (await call('POST', '/api/v1/people', { name: 'Bea Berg' })).json;
    const fromUrl = await asOperator('POST', `/api/v1/people/${personB.id}/faces`, { url: `${imageServerUrl}/b2.jpg` });
    expect(fromUrl.status).toBe(201);
    expect(fromUrl.json.results[0].face.source).toBe('url');

    const dup = await asOperator('POST', `/api/v1/people/${personA.id}/faces`, imageForm([fx.b1]));
    expect(dup.status).toBe(200);
    expect(dup.json.results[0]).toMatchObject({ status: 'refused', reason: 'duplicate', duplicateOf: personB.id });
    expect(dup.json.results[0].similarity).toBeGreaterThan(0.9);

    const notAllowed = await asOperator('POST', `/api/v1/people/${personA.id}/faces?allowDuplicate=true`, imageForm([fx.b1]));
    expect(notAllowed.status).toBe(403);

    const overridden = await call('POST', `/api/v1/people/${personA.id}/faces?allowDuplicate=true`, imageForm([fx.b1]));
    expect(overridden.status).toBe(201);
    expect(overridden.json.results[0].overriddenDuplicateOf.personId).toBe(personB.id);
    // The override left A with B's face: B is now ambiguous. Deleting that face restores B.
    expect((await recognize(fx.b1)).faces[0]).toMatchObject({ decision: 'unknown', reason: 'ambiguous' });
    const faceId = overridden.json.results[0].face.id;
    expect((await asOperator('DELETE', `/api/v1/people/${personA.id}/faces/${faceId}`)).status).toBe(403);
    expect((await call('DELETE', `/api/v1/people/${personA.id}/faces/${faceId}`)).status).toBe(204);
    expect((await call('GET', `/api/v1/people/${personA.id}/faces/${faceId}`)).status).toBe(404);
    expect((await recognize(fx.b1)).faces[0]).toMatchObject({ decision: 'match', person: { id: personB.id } });
  });

  it('lists with search and pagination, patches, and serves faces and their thumbnails', async () => {
    await call('POST', '/api/v1/people', { name: 'Carl Carlsen', email: 'carl@example.com', metadata: { badge: 7 } });
    const page = await asOperator('GET', '/api/v1/people?limit=2&offset=0');
    expect(page.json).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(page.json.items.map((p: Json) => p.name)).toEqual(['Anna Andersen', 'Bea Berg']);
    expect((await asOperator('GET', '/api/v1/people?limit=2&offset=2')).json.items.map((p: Json) => p.name)).toEqual(['Carl Carlsen']);
    const found = await asOperator('GET', '/api/v1/people?search=carl%40example');
    expect(found.json.items.map((p: Json) => p.name)).toEqual(['Carl Carlsen']);

    const patched = await call('PATCH', `/api/v1/people/${personA.id}`, { department: null, type: 'employee' });
    expect(patched.json).toMatchObject({ department: null, type: 'employee', name: 'Anna Andersen' });
    expect((await asOperator('PATCH', `/api/v1/people/${personA.id}`, { type: 'x' })).status).toBe(403);
    const clash = await call('POST', '/api/v1/people', { name: 'Other', externalId: 'E-001' });
    expect(clash.status).toBe(409);
    expect(clash.json.code).toBe('duplicate_external_id');

    const one = await asOperator('GET', `/api/v1/people/${personA.id}`);
    expect(one.json.faceCount).toBe(2);
    const faces = await asOperator('GET', `/api/v1/people/${personA.id}/faces`);
    expect(faces.json.items).toHaveLength(2);
    expect(JSON.stringify(faces.json)).not.toContain('embedding');
    const thumb = await fetch(`${t.base}${faces.json.items[0].thumbnailUrl}`, { headers: { authorization: `Bearer ${operatorKey}` } });
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 112, 112]);
    expect((await asOperator('GET', `/api/v1/people/${personB.id}/faces/${faces.json.items[0].id}`)).status).toBe(404);
  });

  it('answers bad input with 4xx problem+json, never 500', async () => {
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/api/v1/people', { name: 'X', shoeSize: 44 }, 400, 'validation_failed'],
      ['POST', '/api/v1/people', '{"name": ', 400, ''],
      ['PATCH', `/api/v1/people/${personA.id}`, {}, 400, 'validation_failed'],
      // Metadata nested past what JSON.stringify can write when it is stored (was a 500).
      ['POST', '/api/v1/people', `{"name": "Deep", "metadata": {"a": ${'['.repeat(20_000)}${']'.repeat(20_000)}}}`, 400, 'validation_failed'],
      ['PATCH', `/api/v1/people/${personA.id}`, `{"metadata": ${'{"a": '.repeat(33)}1${'}'.repeat(33)}}`, 400, 'validation_failed'],
      ['GET', '/api/v1/people/not-a-uuid', undefined, 404, 'person_not_found'],
      ['GET', '/api/v1/people/00000000-0000-4000-8000-000000000000/faces', undefined, 404, 'person_not_found'],
      ['POST', `/api/v1/people/${personA.id}/faces`, { image: '%%% not base64 %%%' }, 400, 'invalid_base64'],
      ['POST', `/api/v1/people/${personA.id}/faces`, { image: b64(fx.a1), url: 'http://example.com/x.jpg' }, 400, 'validation_failed'],
      ['POST', `/api/v1/people/${personA.id}/faces`, { images: [] }, 400, 'validation_failed'],
      ['POST', `/api/v1/people/${personA.id}/faces`, { url: 'file:///etc/passwd' }, 400, 'validation_failed'],
      ['POST', `/api/v1/people/${personA.id}/faces`, imageForm([], 'image', { note: 'no file' }), 400, 'validation_failed'],
      ['POST', `/api/v1/people/${personA.id}/faces`, new FormData(), 400, ''],
      ['POST', `/api/v1/people/${personA.id}/faces`, imageForm([fx.a1], 'photo'), 400, 'validation_failed'],
      ['POST', `/api/v1/people/${personA.id}/faces?allowDuplicate=maybe`, { image: b64(fx.a1) }, 400, 'validation_failed'],
      ['DELETE', `/api/v1/people/${personA.id}/faces/nope`, undefined, 404, 'face_not_found'],
      // A DELETE takes no body: a field is refused, not ignored while the person is erased.
      ['DELETE', `/api/v1/people/${personA.id}`, { keepFaces: true }, 400, 'validation_failed'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const res = await call(method, path, body as never);
      expect([method, path, res.status]).toEqual([method, path, status]);
      expect(res.type).toContain('application/problem+json');
      if (code) expect(res.json.code).toBe(code);
    }
    expect((await call('PATCH', `/api/v1/people/${personA.id}`, `{"metadata": ${'{"a": '.repeat(32)}1${'}'.repeat(32)}}`)).status).toBe(200);
    // A URL the server may not fetch is a refusal of that image, not a failed request.
    await t.app.close();
    t = await startTestApp(dataDir);
    call = client(t.base, adminKey);
    asOperator = client(t.base, operatorKey);
    const blocked = await call('POST', `/api/v1/people/${personA.id}/faces`, { url: `${imageServerUrl}/b2.jpg` });
    expect(blocked.status).toBe(200);
    expect(blocked.json.results[0]).toMatchObject({ status: 'refused', reason: 'url_not_allowed' });
  });

  it('keeps the index across a restart: loaded from disk, and recognition still works', async () => {
    await restart();
    const status = await galleryStatus();
    expect(status).toMatchObject({ startedFrom: 'saved', size: 3, kind: 'exact', hnswExpansionSearch: null, lastCheck: { inStep: true } });
    expect((await recognize(fx.a3)).faces[0].person.id).toBe(personA.id);
  });

  it('measures the index’s recall on the gallery for an admin (exact search: all of it), and checks the body', async () => {
    const check = await call('POST', '/api/v1/gallery/recall-check', { samples: 10 });
    expect(check.status).toBe(200);
    expect(check.json).toMatchObject({ kind: 'exact', size: 3, samples: 10, recallAt1: 1, samePersonAt1: 1, hnswExpansionSearch: null });
    expect((await call('POST', '/api/v1/gallery/recall-check')).json.samples).toBe(500); // no body: the default
    const refused = await call('POST', '/api/v1/gallery/recall-check', { samples: 0 });
    expect(refused.status).toBe(400);
    expect(refused.type).toContain('application/problem+json');
    expect((await asOperator('POST', '/api/v1/gallery/recall-check', {})).status).toBe(403);
  });

  it('rebuilds the index at start when its files are gone', async () => {
    await t.app.close();
    await rm(join(dataDir, 'gallery'), { recursive: true, force: true });
    await restart();
    const status = await galleryStatus();
    expect(status).toMatchObject({ startedFrom: 'rebuilt', rebuildReason: 'no saved index', size: 3, lastCheck: { inStep: true } });
    expect((await recognize(fx.a3)).faces[0].person.id).toBe(personA.id);
  });

  it('rebuilds the index at start when a template was added behind its back', async () => {
    await t.app.close();
    // Another process writes to the store while the server is down: a twin with Anna's face.
    const store = await openStore(t.config);
    const twin = await store.people.create({ name: 'Twin' });
    const [annaTemplate] = await store.templates.listByPerson(personA.id);
    await store.templates.add({ personId: twin.id, modelId: annaTemplate!.modelId, embedding: annaTemplate!.embedding, source: 'import' });
    await store.close();
    await restart();
    const status = await galleryStatus();
    expect(status).toMatchObject({ startedFrom: 'rebuilt', size: 4, lastCheck: { inStep: true } });
    expect(status.rebuildReason).toMatch(/3 templates.*4/);
    // The twin is in the rebuilt index: Anna's photo is now a tie.
    expect((await recognize(fx.a3)).faces[0]).toMatchObject({ decision: 'unknown', reason: 'ambiguous' });
    expect((await call('DELETE', `/api/v1/people/${twin.id}`)).status).toBe(204);
    expect((await recognize(fx.a3)).faces[0].person.id).toBe(personA.id);
  });

  it('deleting a person erases them from the store, the index and recognition', async () => {
    const before = t.app.gallery.size;
    expect((await recognize(fx.b1)).faces[0].person.id).toBe(personB.id);
    expect((await call('DELETE', `/api/v1/people/${personB.id}`)).status).toBe(204);
    expect((await call('GET', `/api/v1/people/${personB.id}`)).status).toBe(404);
    expect((await call('DELETE', `/api/v1/people/${personB.id}`)).status).toBe(404);
    expect(await t.app.store.templates.listByPerson(personB.id)).toEqual([]);
    expect(t.app.gallery.size).toBe(before - 1);
    expect((await recognize(fx.b1)).faces[0]).toMatchObject({ decision: 'unknown', reason: 'below_threshold' });
    // Log entries stay, without the person.
    const log = await call('GET', `/api/v1/recognition/log?personId=${personB.id}`);
    expect(log.json.items).toEqual([]);
    // And B's face can now be enrolled by someone else without a duplicate refusal.
    const again = await call('POST', `/api/v1/people/${personA.id}/faces`, imageForm([fx.b2]));
    expect(again.json.results[0].status).toBe('added');
  });
});
