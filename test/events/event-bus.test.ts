import { describe, expect, it } from 'vitest';
import { EventBus, matchesFilter } from '../../src/events/event-bus.ts';
import type { AnyFacegateEvent } from '../../src/events/event-map.ts';

const recognized = (camera: string, track = 't1') =>
  ({ camera_id: camera, track_id: track, person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.7 }) as const;

describe('EventBus', () => {
  it('stamps envelopes in emit order, fills payload defaults and strips the routing fields from data', () => {
    let now = 1000;
    const bus = new EventBus({ now: () => now++ });
    const seen: AnyFacegateEvent[] = [];
    bus.subscribe((e) => seen.push(e));

    const a = bus.emit('person_recognized', { ...recognized('door'), message: 'Welcome back, Ada' });
    const b = bus.emit('person_left_area', { camera_id: 'door', track_id: 't1', person_id: 'p1' });
    const c = bus.emit('system_ready', { camera_id: '*' });

    expect(seen).toEqual([a, b, c]);
    expect([a.id, b.id, c.id]).toEqual([1, 2, 3]);
    expect(bus.lastId).toBe(3);
    expect(a).toEqual({
      id: 1,
      type: 'person_recognized',
      camera_id: 'door',
      track_id: 't1',
      timestamp: 1000,
      data: { person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.7, message: 'Welcome back, Ada' },
    });
    expect(b.data).toEqual({ message: 'Person left detection area', show_waiting_message: true, person_id: 'p1' });
    expect(c.track_id).toBeNull();
    expect(c.data.message).toBe('System ready - waiting for next person');
  });

  it('continues numbering after lastId (a restart over a persisted ring)', () => {
    const bus = new EventBus({ lastId: 41 });
    expect(bus.lastId).toBe(41);
    expect(bus.emit('system_ready', { camera_id: 'x' }).id).toBe(42);
  });

  it('refuses a payload that does not fit the event map', () => {
    const bus = new EventBus();
    // @ts-expect-error -- progress must be a number: the type system and the runtime check agree
    expect(() => bus.emit('registration_angle_complete', { camera_id: 'c', angle_name: 'left', progress: 'half' })).toThrow();
    expect(bus.lastId).toBe(0);
  });

  it('delivers by camera and type filter; events for every camera reach camera-filtered listeners', () => {
    const bus = new EventBus();
    const door: string[] = [];
    const lefts: string[] = [];
    const doorLefts: string[] = [];
    bus.subscribe((e) => door.push(`${e.type}@${e.camera_id}`), { cameras: ['door'] });
    bus.subscribe((e) => lefts.push(`${e.type}@${e.camera_id}`), { types: ['person_left_area'] });
    bus.subscribe((e) => doorLefts.push(`${e.type}@${e.camera_id}`), { cameras: ['door', 'hall'], types: ['person_left_area', 'system_ready'] });

    bus.emit('person_recognized', recognized('door'));
    bus.emit('person_recognized', recognized('yard'));
    bus.emit('person_left_area', { camera_id: 'yard' });
    bus.emit('person_left_area', { camera_id: 'hall' });
    bus.emit('system_ready', { camera_id: '*' });

    expect(door).toEqual(['person_recognized@door', 'system_ready@*']);
    expect(lefts).toEqual(['person_left_area@yard', 'person_left_area@hall']);
    expect(doorLefts).toEqual(['person_left_area@hall', 'system_ready@*']);
    expect(matchesFilter({ type: 'system_ready', camera_id: 'a' }, { cameras: [], types: [] })).toBe(true);
  });

  it('isolates listeners: a throwing or rejecting listener neither breaks emit nor starves the others', async () => {
    const errors: string[] = [];
    const bus = new EventBus({ onListenerError: (err, e) => errors.push(`${e.id}:${(err as Error).message}`) });
    const got: number[] = [];
    bus.subscribe(() => {
      throw new Error('sync boom');
    });
    bus.subscribe(async () => {
      throw new Error('async boom');
    });
    bus.subscribe((e) => got.push(e.id));

    expect(() => bus.emit('system_ready', { camera_id: 'c' })).not.toThrow();
    bus.emit('system_ready', { camera_id: 'c' });
    await new Promise((r) => setImmediate(r));

    expect(got).toEqual([1, 2]);
    expect(errors.sort()).toEqual(['1:async boom', '1:sync boom', '2:async boom', '2:sync boom']);
  });

  it('survives an error reporter that throws too', () => {
    const bus = new EventBus({
      onListenerError: () => {
        throw new Error('reporter down');
      },
    });
    bus.subscribe(() => {
      throw new Error('boom');
    });
    expect(bus.emit('system_ready', { camera_id: 'c' }).id).toBe(1);
  });

  it('unsubscribes, also from inside a dispatch, without disturbing the other listeners', () => {
    const bus = new EventBus();
    const calls: string[] = [];
    const offA = bus.subscribe(() => {
      calls.push('a');
      offA();
    });
    bus.subscribe(() => calls.push('b'));
    bus.emit('system_ready', { camera_id: 'c' });
    bus.emit('system_ready', { camera_id: 'c' });
    expect(calls).toEqual(['a', 'b', 'b']);
    expect(bus.listenerCount).toBe(1);
  });

  it('keeps emit cheap when nobody is slow: 10,000 events through 3 listeners in well under a second', () => {
    const bus = new EventBus();
    let n = 0;
    for (let i = 0; i < 3; i++) bus.subscribe(() => n++);
    const start = performance.now();
    for (let i = 0; i < 10_000; i++) bus.emit('person_left_area', { camera_id: 'c', track_id: String(i) });
    const ms = performance.now() - start;
    expect(n).toBe(30_000);
    expect(ms).toBeLessThan(1000);
  });
});
