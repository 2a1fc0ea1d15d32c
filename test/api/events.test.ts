import { mkdtempSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { AnyFacegateEvent } from '../../src/events/event-map.ts';
import type { RegistrationDecision } from '../../src/events/decisions.ts';
import { client, createKey, startTestApp, type Json, type TestApp } from './test-app.ts';

/*
 * The real-time event API on a real server: the WebSocket at /api/v1/events (auth, filters,
 * `connected` first, decisions, malformed messages), polling from the persisted ring, decisions
 * over HTTP and the reset. Events are emitted on the app's own bus, as the camera pipeline does.
 */

/** A WebSocket client that collects messages and lets the test wait for the next ones. */
class Peer {
  readonly messages: Json[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, headers: Record<string, string> = {}): Promise<Peer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const peer = new Peer(ws);
      ws.once('open', () => resolve(peer));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Waits until `count` messages have arrived in total. */
  async received(count: number, timeoutMs = 5000): Promise<Json[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < count) {
      if (this.closed) throw new Error(`socket closed after ${this.messages.length} messages`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out with ${this.messages.length}/${count} messages: ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return this.messages.slice(0, count);
  }

  send(data: unknown): void {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  }

  close(): void {
    this.ws.close();
  }
}

/** Events only (the `connected` greeting and error answers left out). */
const eventsOf = (messages: Json[]): AnyFacegateEvent[] => messages.filter((m) => typeof m.id === 'number' && m.type !== 'connected');

describe('real-time events API', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'facegate-events-api-'));
  let t: TestApp;
  let wsBase: string;
  let deviceKey: string;
  let operatorKey: string;
  let device: ReturnType<typeof client>;
  let operator: ReturnType<typeof client>;
  const peers: Peer[] = [];

  const open = async (path: string, key: string | null = deviceKey, how: 'bearer' | 'x-api-key' | 'query' = 'bearer'): Promise<Peer> => {
    let url = `${wsBase}${path}`;
    const headers: Record<string, string> = {};
    if (key !== null) {
      if (how === 'bearer') headers.authorization = `Bearer ${key}`;
      else if (how === 'x-api-key') headers['x-api-key'] = key;
      else url += `${url.includes('?') ? '&' : '?'}key=${encodeURIComponent(key)}`;
    }
    const peer = await Peer.open(url, headers);
    peers.push(peer);
    return peer;
  };

  const emitUnknown = (camera: string, track: string) =>
    t.app.events.bus.emit('unknown_person_detected', {
      camera_id: camera,
      track_id: track,
      confidence: 0.31,
      reason: 'below_threshold',
      show_registration_dialog: true,
      action_required: true,
    });

  beforeAll(async () => {
    t = await startTestApp(dataDir, { events: { ringSize: 1000 } });
    wsBase = t.base.replace(/^http/, 'ws');
    const admin = client(t.base, t.printedKey!);
    deviceKey = await createKey(admin, 'device');
    operatorKey = await createKey(admin, 'operator');
    device = client(t.base, deviceKey);
    operator = client(t.base, operatorKey);
  });

  afterAll(async () => {
    for (const p of peers) p.ws.terminate();
    await t?.app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses a WebSocket without a valid key, and accepts the key as header or ?key=', async () => {
    await expect(open('/api/v1/events', null)).rejects.toThrow('HTTP 401');
    await expect(open('/api/v1/events', 'fg_not-a-real-key')).rejects.toThrow('HTTP 401');
    await expect(open('/api/v1/events', 'fg_not-a-real-key', 'query')).rejects.toThrow('HTTP 401');
    // ?key= counts on WebSocket upgrades only, not on plain HTTP.
    expect((await fetch(`${t.base}/api/v1/events?key=${deviceKey}`)).status).toBe(401);
    // A bad filter is refused before the upgrade.
    await expect(open('/api/v1/events?types=person_recognised')).rejects.toThrow('HTTP 400');

    for (const how of ['bearer', 'x-api-key', 'query'] as const) {
      const peer = await open('/api/v1/events', deviceKey, how);
      const [hello] = await peer.received(1);
      expect(hello.type).toBe('connected');
      peer.close();
    }
  });

  it('greets with `connected` and the current state, then sends each client the events its filters pass, in order', async () => {
    const all = await open('/api/v1/events');
    const door = await open('/api/v1/events?camera=door');
    const leaving = await open('/api/v1/events?types=person_left_area,system_ready&camera=door,hall');
    const [hello] = await all.received(1);
    const [doorHello] = await door.received(1);
    await leaving.received(1);
    const cursor = t.app.events.bus.lastId;
    expect(hello).toMatchObject({ type: 'connected', id: cursor, camera_id: '*', track_id: null, data: { system_ready: true, cursor, current_event: null } });
    expect(doorHello).toMatchObject({ camera_id: 'door', data: { cameras: [{ camera_id: 'door', person_in_detection_area: false }] } });

    const bus = t.app.events.bus;
    const emitted = [
      bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: 'S-1', confidence: 0.82, margin: 0.3, message: 'Welcome back, Ada' }),
      bus.emit('person_recognized', { camera_id: 'yard', track_id: 't2', person_id: 'p2', name: 'Bo', external_id: null, confidence: 0.7 }),
      bus.emit('person_left_area', { camera_id: 'yard', track_id: 't2', person_id: 'p2' }),
      bus.emit('person_left_area', { camera_id: 'door', track_id: 't1', person_id: 'p1' }),
      bus.emit('system_ready', { camera_id: '*' }),
    ];

    expect(eventsOf(await all.received(1 + 5))).toEqual(emitted);
    expect(eventsOf(await door.received(1 + 3))).toEqual([emitted[0], emitted[3], emitted[4]]);
    expect(eventsOf(await leaving.received(1 + 2))).toEqual([emitted[3], emitted[4]]);
    await new Promise((r) => setTimeout(r, 100));
    expect(door.messages).toHaveLength(4);
    expect(leaving.messages).toHaveLength(3);

    // Polling from the cursor returns the same events, in the same order, and filters the same way.
    const page = await device('GET', `/api/v1/events?after=${cursor}`);
    expect(page.status).toBe(200);
    expect(page.json).toEqual({ events: emitted, cursor: emitted[4]!.id, has_more: false, gap: false });
    const doorPage = await device('GET', `/api/v1/events?after=${cursor}&camera=door`);
    expect(doorPage.json.events).toEqual([emitted[0], emitted[3], emitted[4]]);
    const paged = await device('GET', `/api/v1/events?after=${cursor}&limit=2&types=person_recognized,person_left_area`);
    expect(paged.json).toMatchObject({ cursor: emitted[1]!.id, has_more: true });
    const rest = await device('GET', `/api/v1/events?after=${paged.json.cursor}&limit=2&types=person_recognized,person_left_area`);
    expect(rest.json).toMatchObject({ events: [emitted[2], emitted[3]], has_more: false });
    const nothing = await device('GET', `/api/v1/events?after=${emitted[4]!.id}`);
    expect(nothing.json).toEqual({ events: [], cursor: emitted[4]!.id, has_more: false, gap: false });

    expect((await device('GET', '/api/v1/events?after=-1')).status).toBe(400);
    expect((await device('GET', '/api/v1/events?types=nope')).json).toMatchObject({ status: 400, code: 'validation_failed' });
    expect((await fetch(`${t.base}/api/v1/events`)).status).toBe(401);
    for (const p of [all, door, leaving]) p.close();
  });

  it('takes a registration decision over the WebSocket, scoped to the waiting camera and track', async () => {
    const handled: RegistrationDecision[] = [];
    const unplug = t.app.events.decisions.register({ onDecision: (d) => void handled.push(d) });
    try {
      const kiosk = await open('/api/v1/events?camera=door');
      const watcher = await open('/api/v1/events');
      await kiosk.received(1);
      await watcher.received(1);
      const asked = emitUnknown('door', 't7');
      await kiosk.received(2);

      // A new client sees the wait in its greeting.
      const late = await open('/api/v1/events?camera=door');
      const [lateHello] = await late.received(1);
      expect(lateHello.data).toMatchObject({ current_event: 'unknown_person_detected', cameras: [{ waiting_for_user_response: true, waiting_track_id: 't7' }] });

      // The seed's message, as is: the socket's camera and the waiting track are implied.
      kiosk.send({ type: 'registration_decision', data: { register: true } });
      const [, , approved] = await kiosk.received(3);
      expect(approved).toMatchObject({ type: 'registration_approved', camera_id: 'door', track_id: 't7' });
      expect(approved.id).toBe(asked.id + 1);
      expect(eventsOf(await watcher.received(3)).map((e) => e.type)).toEqual(['unknown_person_detected', 'registration_approved']);
      expect(handled).toEqual([{ cameraId: 'door', trackId: 't7', register: true }]);
      expect(t.app.events.state.get('door')).toMatchObject({ waiting_for_user_response: false, registration_in_progress: true, registration_track_id: 't7' });

      // Nobody waits any more: an error answer, the socket stays open.
      kiosk.send({ type: 'registration_decision', data: { register: false, camera_id: 'door' } });
      const [, , , notWaiting] = await kiosk.received(4);
      expect(notWaiting).toEqual({ type: 'error', data: { code: 'not_waiting', message: 'camera door is not waiting for a registration decision' } });

      // A decision about another track than the one asked about is refused.
      emitUnknown('door', 't8');
      await kiosk.received(5);
      kiosk.send({ type: 'registration_decision', data: { register: true, track_id: 't1' } });
      const [, , , , , wrongTrack] = await kiosk.received(6);
      expect(wrongTrack).toMatchObject({ type: 'error', data: { code: 'not_waiting' } });
      kiosk.send({ type: 'registration_decision', data: { register: false, track_id: 't8' } });
      const [, , , , , , cancelled] = await kiosk.received(7);
      expect(cancelled).toMatchObject({ type: 'registration_cancelled', camera_id: 'door', track_id: 't8' });
      expect(handled.at(-1)).toEqual({ cameraId: 'door', trackId: 't8', register: false });
      expect(kiosk.closed).toBe(false);

      // A socket watching two cameras answers for the one of them that waits, never for another camera.
      const twoCameras = await open('/api/v1/events?camera=door,hall&types=registration_approved');
      await twoCameras.received(1);
      emitUnknown('elsewhere', 't9');
      twoCameras.send({ type: 'registration_decision', data: { register: true } });
      const [, none] = await twoCameras.received(2);
      expect(none).toMatchObject({ type: 'error', data: { code: 'not_waiting' } });
      emitUnknown('hall', 't10');
      twoCameras.send({ type: 'registration_decision', data: { register: true } });
      const [, , hallApproved] = await twoCameras.received(3);
      expect(hallApproved).toMatchObject({ type: 'registration_approved', camera_id: 'hall', track_id: 't10' });
      expect(t.app.events.state.waitingTrack('elsewhere')).toBe('t9');
      t.app.events.bus.emit('system_ready', { camera_id: '*' });
    } finally {
      unplug();
    }
  });

  it('answers malformed messages with an error message and keeps the socket open', async () => {
    const peer = await open('/api/v1/events?camera=lobby');
    await peer.received(1);
    const bad: Array<[unknown, string]> = [
      ['this is not json', 'invalid_json'],
      ['[1,2]', 'invalid_message'],
      [{ data: {} }, 'invalid_message'],
      [{ type: 'hello' }, 'unknown_type'],
      [{ type: 'registration_decision' }, 'validation_failed'],
      [{ type: 'registration_decision', data: { register: 'yes' } }, 'validation_failed'],
      [{ type: 'registration_decision', data: { register: true, extra: 1 } }, 'validation_failed'],
      [Buffer.from([0xff, 0xd8, 0xff]), 'invalid_message'],
    ];
    for (const [message] of bad) peer.send(message);
    const answers = (await peer.received(1 + bad.length)).slice(1);
    expect(answers.map((a) => a.type)).toEqual(bad.map(() => 'error'));
    expect(answers.map((a) => a.data.code)).toEqual(bad.map(([, code]) => code));
    expect(answers[5].data.message).toMatch(/register/);
    // Still open and still listening.
    const event = t.app.events.bus.emit('system_ready', { camera_id: 'lobby' });
    const [last] = (await peer.received(2 + bad.length)).slice(-1);
    expect(last).toEqual(event);
    expect(peer.closed).toBe(false);
  });

  it('closes a client that stops reading (1013) instead of buffering for it without bound; the others get everything', async () => {
    const slow = await open('/api/v1/events?camera=flood');
    const fast = await open('/api/v1/events?camera=flood');
    await slow.received(1);
    await fast.received(1);
    const rawSocket = (slow.ws as unknown as { _socket: Socket })._socket;
    rawSocket.pause();
    const big = 'x'.repeat(256 * 1024);
    let slowestEmitMs = 0;
    for (let i = 0; i < 64; i++) {
      const start = performance.now();
      t.app.events.bus.emit('registration_failed', { camera_id: 'flood', reason: 'test', message: big });
      slowestEmitMs = Math.max(slowestEmitMs, performance.now() - start);
      // Time for a reading client to read (a burst beyond the limit within one tick would close it too).
      await new Promise((r) => setTimeout(r, 10));
    }
    // Emit never waits for a socket, however far behind it is.
    expect(slowestEmitMs).toBeLessThan(100);
    expect(eventsOf(await fast.received(1 + 64, 20_000))).toHaveLength(64);
    const closed = new Promise<number>((resolve) => slow.ws.once('close', (code) => resolve(code)));
    rawSocket.resume();
    expect(await closed).toBe(1013);
    expect(eventsOf(slow.messages).length).toBeLessThan(64);
  });

  it('takes decisions over HTTP with the same rules (409 when nobody waits)', async () => {
    const handled: RegistrationDecision[] = [];
    const unplug = t.app.events.decisions.register({ onDecision: (d) => void handled.push(d) });
    try {
      const nobody = await device('POST', '/api/v1/decisions', { camera_id: 'hall', register: true });
      expect(nobody.status).toBe(409);
      expect(nobody.type).toContain('application/problem+json');
      expect(nobody.json).toMatchObject({ code: 'not_waiting', camera_id: 'hall' });

      emitUnknown('hall', 't2');
      const wrong = await device('POST', '/api/v1/decisions', { camera_id: 'hall', track_id: 't9', register: true });
      expect(wrong.status).toBe(409);
      expect(wrong.json).toMatchObject({ code: 'not_waiting', waiting_track_id: 't2' });
      expect((await device('POST', '/api/v1/decisions', { camera_id: 'hall', register: 'no' })).status).toBe(400);
      expect((await device('POST', '/api/v1/decisions', { camera_id: 'hall', register: true, foo: 1 })).status).toBe(400);

      const before = t.app.events.bus.lastId;
      const ok = await device('POST', '/api/v1/decisions', { camera_id: 'hall', register: false });
      expect(ok.status).toBe(200);
      expect(ok.json).toEqual({ camera_id: 'hall', track_id: 't2', register: false, event: 'registration_cancelled' });
      expect(handled).toEqual([{ cameraId: 'hall', trackId: 't2', register: false }]);
      const polled = await device('GET', `/api/v1/events?after=${before}`);
      expect(polled.json.events).toMatchObject([{ type: 'registration_cancelled', camera_id: 'hall', track_id: 't2' }]);

      // The seed's bare `{register}` works when exactly one camera waits.
      emitUnknown('gate', 't3');
      const bare = await device('POST', '/api/v1/decisions', { register: true });
      expect(bare.json).toMatchObject({ camera_id: 'gate', track_id: 't3', event: 'registration_approved' });
    } finally {
      unplug();
    }
  });

  it('resets one camera or all to system_ready (operator only)', async () => {
    const peer = await open('/api/v1/events?types=system_ready');
    await peer.received(1);
    emitUnknown('hall', 't4');
    emitUnknown('porch', 't5');
    expect((await device('POST', '/api/v1/system/reset', { camera_id: 'hall' })).status).toBe(403);

    const one = await operator('POST', '/api/v1/system/reset', { camera_id: 'hall' });
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ camera_id: 'hall' });
    const [, ready] = await peer.received(2);
    expect(ready).toMatchObject({ type: 'system_ready', camera_id: 'hall', id: one.json.event_id, data: { message: 'System ready - waiting for next person' } });
    expect(t.app.events.state.get('hall')).toMatchObject({ current_event: 'system_ready', waiting_for_user_response: false, person_in_detection_area: false });
    expect(t.app.events.state.get('porch').waiting_for_user_response).toBe(true);

    const all = await operator('POST', '/api/v1/system/reset');
    expect(all.json).toMatchObject({ camera_id: '*' });
    const [, , allReady] = await peer.received(3);
    expect(allReady).toMatchObject({ type: 'system_ready', camera_id: '*' });
    expect(t.app.events.state.get('porch').waiting_for_user_response).toBe(false);
    expect((await operator('POST', '/api/v1/system/reset', { camera_id: '' })).status).toBe(400);
  });

  it('publishes the protocol generated from the event map, identical to docs/events.md', async () => {
    const schema = await device('GET', '/api/v1/events/schema');
    expect(schema.status).toBe(200);
    expect(Object.keys(schema.json.events)).toEqual(
      expect.arrayContaining(['connected', 'person_recognized', 'unknown_person_detected', 'registration_angle_instruction', 'attendance_checked_in']),
    );
    expect(schema.json.events.unknown_person_detected.payload.required).toEqual(
      expect.arrayContaining(['message', 'confidence', 'reason', 'show_registration_dialog', 'action_required']),
    );
    expect(schema.json.clientMessages.registration_decision.data.required).toEqual(['register']);
    const markdown = await device('GET', '/api/v1/events/schema?format=markdown');
    expect(markdown.type).toContain('text/markdown');
    expect(markdown.json).toBe(readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8'));
  });

  it('keeps the ring across a restart: polling resumes and ids go on', async () => {
    const last = t.app.events.bus.emit('registration_failed', { camera_id: 'door', track_id: 't7', reason: 'left_area' });
    await t.app.close();
    t = await startTestApp(dataDir, { events: { ringSize: 1000 } });
    const call = client(t.base, deviceKey);
    const page = await call('GET', `/api/v1/events?after=${last.id - 1}`);
    expect(page.json.events).toEqual([last]);
    expect(t.app.events.bus.lastId).toBe(last.id);
    wsBase = t.base.replace(/^http/, 'ws');
    const peer = await open('/api/v1/events');
    const [hello] = await peer.received(1);
    expect(hello.data.cursor).toBe(last.id);
    expect(t.app.events.bus.emit('system_ready', { camera_id: 'door' }).id).toBe(last.id + 1);
  });
});
