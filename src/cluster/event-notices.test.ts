import { describe, expect, it } from 'vitest';
import { NOTIFY_MAX_BYTES } from '../store/index.ts';
import { eventNotices } from './cluster-node.ts';

describe('eventNotices', () => {
  it('packs events into notifications under the PostgreSQL payload limit, in order; an event too large alone goes by id', () => {
    const small = Array.from({ length: 120 }, (_, i) => ({ id: i + 1, at: 1000 + i, type: 'system_ready', cameraId: `cam-${i}`, trackId: null, data: { message: 'x'.repeat(100) } }));
    const huge = { id: 500, at: 5000, type: 'person_recognized', cameraId: 'door', trackId: 't', data: { blob: 'y'.repeat(9000) } };
    const notices = eventNotices('node-a', [...small.slice(0, 60), huge, ...small.slice(60)]);
    expect(notices.length).toBeGreaterThan(2);
    for (const n of notices) expect(Buffer.byteLength(n)).toBeLessThanOrEqual(NOTIFY_MAX_BYTES);
    const parsed = notices.map((n) => JSON.parse(n) as { n: string; e?: { id: number }[]; ids?: number[] });
    expect(parsed.every((p) => p.n === 'node-a')).toBe(true);
    const order = parsed.flatMap((p) => p.e?.map((e) => e.id) ?? p.ids!);
    expect(order).toEqual([...small.slice(0, 60).map((e) => e.id), 500, ...small.slice(60).map((e) => e.id)]);
    expect(parsed.find((p) => p.ids)?.ids).toEqual([500]);
  });
});
