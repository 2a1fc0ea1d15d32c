import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFaceFixtures, type FaceFixtures } from './face-fixtures.ts';
import { client, createKey, imageForm, startTestApp, type Json, type TestApp } from './test-app.ts';

/* Recognise and verify on a real server with the real face models, as a device (kiosk) calls them. */

const b64 = (bytes: Buffer): string => bytes.toString('base64');

describe('recognition API (real server, real models)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-recognition-'));
  let t: TestApp;
  let fx: FaceFixtures;
  let admin: ReturnType<typeof client>;
  let device: ReturnType<typeof client>;
  let anna: Json;

  beforeAll(async () => {
    fx = await loadFaceFixtures();
    t = await startTestApp(dataDir);
    admin = client(t.base, t.printedKey!);
    device = client(t.base, await createKey(admin, 'device'));
    anna = (await admin('POST', '/api/v1/people', { name: 'Anna', externalId: 'A1' })).json;
    const added = await admin('POST', `/api/v1/people/${anna.id}/faces`, { images: [b64(fx.a1), b64(fx.a2)] });
    expect(added.json.added).toBe(2);
  });
  afterAll(async () => {
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('recognises every face of a group photo, each with box, pose, quality, liveness and a decision', async () => {
    // sample3 shows Anna among others.
    const group = await sharp(join('node_modules/@vladmandic/face-api/demo/sample3.jpg')).jpeg().toBuffer();
    const res = await device('POST', '/api/v1/recognize', imageForm([group], 'image', { cameraId: 'door-1', trackId: 't-7' }));
    expect(res.status).toBe(200);
    expect(res.json.faces.length).toBeGreaterThanOrEqual(3);
    for (const face of res.json.faces) {
      expect(face.box.width).toBeGreaterThan(100);
      expect(typeof face.pose.yawDeg).toBe('number');
      expect(typeof face.quality.pass).toBe('boolean');
      expect(face.liveness).toBeGreaterThanOrEqual(0);
    }
    const matched = res.json.faces.filter((f: Json) => f.decision === 'match');
    expect(matched.map((f: Json) => f.person.id)).toEqual([anna.id]);
    expect(res.json.faces.filter((f: Json) => f.decision === 'unknown').every((f: Json) => f.reason && !f.person)).toBe(true);

    const log = await admin('GET', '/api/v1/recognition/log?cameraId=door-1');
    expect(log.json.items).toHaveLength(res.json.faces.length);
    const entry = log.json.items.find((e: Json) => e.personId === anna.id);
    expect(entry).toMatchObject({ cameraId: 'door-1', trackId: 't-7', decision: 'match', reason: null, modelId: res.json.modelId });
    expect(entry.similarity).toBeGreaterThan(0.5);
    expect(entry.margin).toBeGreaterThan(0);
    expect(entry.quality).toBeGreaterThan(0);
    expect(entry.liveness).toBeGreaterThanOrEqual(0);
    expect((await device('GET', '/api/v1/recognition/log')).status).toBe(403);
  });

  it('says no_face for an image without faces, and low_quality for a face too small to judge', async () => {
    const none = await device('POST', '/api/v1/recognize', { image: b64(fx.noFace) });
    expect(none.json).toMatchObject({ faces: [], reason: 'no_face' });
    // A 55-px photo: the face is found, ≈43 px across (under quality.minFaceSizePx, 48) and blurred.
    const tiny = await sharp(fx.a3).resize(55).jpeg().toBuffer();
    const small = await device('POST', '/api/v1/recognize', { image: b64(tiny), cameraId: 'desk' });
    expect(small.json.faces).toHaveLength(1);
    expect(small.json.faces[0]).toMatchObject({ decision: 'unknown', reason: 'low_quality', person: null, similarity: null });
    expect(small.json.faces[0].quality.reasons.length).toBeGreaterThan(0);
    expect(small.json.faces[0].quality.reasons.join(' ')).toContain('too small');
  });

  it('verifies two images, and an image against a person', async () => {
    const same = await device('POST', '/api/v1/verify', { a: b64(fx.a1), b: b64(fx.a3) });
    expect(same.status).toBe(200);
    expect(same.json).toMatchObject({ same: true, reason: null });
    expect(same.json.similarity).toBeGreaterThan(same.json.threshold);
    const different = await device('POST', '/api/v1/verify', verifyForm(fx.a3, fx.stranger));
    expect(different.json).toMatchObject({ same: false, reason: null });
    expect(different.json.similarity).toBeLessThan(different.json.threshold);

    const withPerson = await device('POST', '/api/v1/verify', { image: b64(fx.a3), personId: anna.id });
    expect(withPerson.json).toMatchObject({ same: true, person: { id: anna.id, name: 'Anna' } });
    expect(withPerson.json.templateId).toMatch(/^[0-9a-f-]{36}$/);
    const strangerVsPerson = await device('POST', '/api/v1/verify', imageForm([fx.stranger], 'image', { personId: anna.id }));
    expect(strangerVsPerson.json.same).toBe(false);

    const noFace = await device('POST', '/api/v1/verify', { a: b64(fx.a1), b: b64(fx.noFace) });
    expect(noFace.json).toMatchObject({ same: null, reason: 'no_face', similarity: null });
    expect(noFace.json.detail).toContain('image b');
    const nobody = (await admin('POST', '/api/v1/people', { name: 'Nobody' })).json;
    const noTemplates = await device('POST', '/api/v1/verify', { image: b64(fx.a1), personId: nobody.id });
    expect(noTemplates.json).toMatchObject({ same: null, reason: 'no_templates' });
    const unknownPerson = await device('POST', '/api/v1/verify', { image: b64(fx.a1), personId: '00000000-0000-4000-8000-000000000000' });
    expect(unknownPerson.status).toBe(404);
  });

  it('answers bad input with 4xx problem+json, never 500', async () => {
    const cases: [string, unknown, number, string][] = [
      ['/api/v1/recognize', { image: 'not*base64!' }, 400, 'invalid_base64'],
      ['/api/v1/recognize', { image: b64(fx.a1), colour: 'red' }, 400, 'validation_failed'],
      ['/api/v1/recognize', { image: b64(Buffer.from('plain text, no image')) }, 400, 'invalid_image'],
      ['/api/v1/recognize', { image: '' }, 400, 'validation_failed'],
      ['/api/v1/recognize', imageForm([], 'image', { cameraId: 'x' }), 400, 'no_image'],
      ['/api/v1/recognize', new FormData(), 400, ''],
      ['/api/v1/recognize', imageForm([fx.a1, fx.a2]), 400, 'validation_failed'],
      ['/api/v1/recognize', imageForm([Buffer.from('GIF89a garbage')]), 400, 'invalid_image'],
      ['/api/v1/recognize', imageForm([fx.a1], 'image', { colour: 'red' }), 400, 'validation_failed'],
      ['/api/v1/verify', { a: b64(fx.a1) }, 400, 'validation_failed'],
      ['/api/v1/verify', { a: b64(fx.a1), b: b64(fx.a3), personId: 'x' }, 400, 'validation_failed'],
      ['/api/v1/verify', imageForm([fx.a1], 'a'), 400, 'validation_failed'],
    ];
    for (const [path, body, status, code] of cases) {
      const res = await device('POST', path, body as never);
      expect([path, res.status, res.json?.code]).toEqual([path, status, code || res.json?.code]);
      expect(res.type).toContain('application/problem+json');
    }
    const huge = await fetch(`${t.base}/api/v1/recognize`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.printedKey}` },
      body: imageForm([Buffer.alloc(t.config.vision.image.maxBytes + 1)]),
    });
    expect(huge.status).toBe(413);
    expect(((await huge.json()) as Json).code).toBe('image_too_large');
  });
});

function verifyForm(a: Buffer, b: Buffer): FormData {
  const form = new FormData();
  form.append('a', new Blob([new Uint8Array(a)], { type: 'image/jpeg' }), 'a.jpg');
  form.append('b', new Blob([new Uint8Array(b)], { type: 'image/jpeg' }), 'b.jpg');
  return form;
}
