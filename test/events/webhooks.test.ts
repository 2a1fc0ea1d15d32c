import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../src/config/config.ts';
import { EventBus } from '../../src/events/event-bus.ts';
import { WebhookDispatcher, webhookSignature, type WebhookEndpointConfig } from '../../src/events/webhooks.ts';

interface Received {
  headers: IncomingMessage['headers'];
  raw: string;
}

/** A real HTTP receiver whose answer per request the test decides. */
async function receiver(answer: (n: number, req: IncomingMessage, res: ServerResponse) => void = (_n, _req, res) => res.end('ok')) {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
      answer(received.length, req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=abc`;
  return {
    url,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const endpoint = (url: string, over: Partial<WebhookEndpointConfig> = {}): WebhookEndpointConfig => ({
  url,
  events: '*',
  secret: 'a-long-shared-secret',
  maxAttempts: 5,
  timeoutMs: 5000,
  maxQueue: 100,
  ...over,
});

/** How a receiver should verify: HMAC over the raw bytes, constant-time compare. */
function verifies(secret: string, raw: string, header: string | string[] | undefined): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`);
  const got = Buffer.from(String(header));
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('webhooks', () => {
  it('POSTs the chosen events as the signed envelope, in order', async () => {
    const rx = await receiver();
    cleanups.push(rx.close);
    const bus = new EventBus();
    const hooks = new WebhookDispatcher([endpoint(rx.url, { events: ['person_recognized', 'person_left_area'] })], { userAgent: 'facegate/test' });
    cleanups.push(() => hooks.close());
    hooks.attach(bus);

    const a = bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.8 });
    bus.emit('system_ready', { camera_id: 'door' }); // not chosen
    const b = bus.emit('person_left_area', { camera_id: 'door', track_id: 't1' });
    await hooks.idle();

    expect(rx.received).toHaveLength(2);
    expect(rx.received.map((r) => JSON.parse(r.raw))).toEqual([a, b]);
    const [first] = rx.received;
    expect(first!.headers['content-type']).toBe('application/json');
    expect(first!.headers['user-agent']).toBe('facegate/test');
    expect(first!.headers['x-facegate-event']).toBe('person_recognized');
    expect(first!.headers['x-facegate-delivery']).toMatch(/^[0-9a-f-]{36}$/);
    expect(rx.received[1]!.headers['x-facegate-delivery']).not.toBe(first!.headers['x-facegate-delivery']);
    expect(verifies('a-long-shared-secret', first!.raw, first!.headers['x-facegate-signature'])).toBe(true);
    expect(verifies('another-secret!!', first!.raw, first!.headers['x-facegate-signature'])).toBe(false);
    expect(webhookSignature('k', 'body')).toBe(`sha256=${createHmac('sha256', 'k').update('body').digest('hex')}`);
    expect(hooks.stats()).toEqual([{ url: rx.url.replace('?token=abc', ''), queued: 0, delivered: 2, failed: 0, dropped: 0, retries: 0, lastError: null }]);
  });

  it('retries 500s with backoff, keeping the delivery id, then delivers', async () => {
    const rx = await receiver((n, _req, res) => {
      res.statusCode = n <= 2 ? 500 : 204;
      res.end();
    });
    cleanups.push(rx.close);
    const bus = new EventBus();
    const times: number[] = [];
    const hooks = new WebhookDispatcher([endpoint(rx.url)], { backoffBaseMs: 40, random: () => 1 });
    cleanups.push(() => hooks.close());
    hooks.attach(bus);
    const start = Date.now();
    bus.emit('system_ready', { camera_id: 'door' });
    bus.emit('system_ready', { camera_id: 'hall' });
    await hooks.idle();
    times.push(Date.now() - start);

    // 2 failures of the first event, then both delivered, in order.
    expect(rx.received).toHaveLength(4);
    const ids = rx.received.map((r) => r.headers['x-facegate-delivery']);
    expect(ids[0]).toBe(ids[1]);
    expect(ids[1]).toBe(ids[2]);
    expect(ids[3]).not.toBe(ids[2]);
    expect(rx.received.map((r) => JSON.parse(r.raw).camera_id)).toEqual(['door', 'door', 'door', 'hall']);
    // Backoff 40 ms then 80 ms (jitter pinned to its maximum).
    expect(times[0]).toBeGreaterThanOrEqual(115);
    expect(hooks.stats()[0]).toMatchObject({ delivered: 2, failed: 0, retries: 2, lastError: 'HTTP 500' });
  });

  it('gives up after maxAttempts, and at once on a final answer (4xx), then goes on with the next event', async () => {
    const rx = await receiver((_n, req, res) => {
      res.statusCode = req.headers['x-facegate-event'] === 'registration_failed' ? 400 : 503;
      res.end();
    });
    cleanups.push(rx.close);
    const bus = new EventBus();
    const failures: string[] = [];
    const hooks = new WebhookDispatcher([endpoint(rx.url, { maxAttempts: 3 })], { backoffBaseMs: 5, onFailure: (m) => failures.push(m) });
    cleanups.push(() => hooks.close());
    hooks.attach(bus);
    bus.emit('system_ready', { camera_id: 'c' });
    bus.emit('registration_failed', { camera_id: 'c', reason: 'timeout' });
    await hooks.idle();

    const events = rx.received.map((r) => r.headers['x-facegate-event']);
    expect(events).toEqual(['system_ready', 'system_ready', 'system_ready', 'registration_failed']);
    expect(hooks.stats()[0]).toMatchObject({ delivered: 0, failed: 2, retries: 2, lastError: 'HTTP 400' });
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatch(/gave up on system_ready .* after 3 attempt\(s\): HTTP 503/);
    // The URL's query (a token) is not in the logs.
    expect(failures.join('\n')).not.toContain('token=abc');
  });

  it('retries an endpoint that does not answer in time, and an unreachable one', async () => {
    const rx = await receiver((n, _req, res) => {
      if (n === 1) return; // never answers: the attempt times out
      res.end('ok');
    });
    cleanups.push(rx.close);
    const bus = new EventBus();
    const hooks = new WebhookDispatcher(
      [endpoint(rx.url, { timeoutMs: 100 }), endpoint('http://127.0.0.1:1/unreachable', { maxAttempts: 2 })],
      { backoffBaseMs: 5, onFailure: () => undefined },
    );
    cleanups.push(() => hooks.close());
    hooks.attach(bus);
    bus.emit('system_ready', { camera_id: 'c' });
    await hooks.idle();
    const [slow, dead] = hooks.stats();
    expect(slow).toMatchObject({ delivered: 1, retries: 1 });
    expect(slow!.lastError).toMatch(/timed out after 100 ms/);
    expect(dead).toMatchObject({ delivered: 0, failed: 1, retries: 1 });
  });

  it('a slow endpoint never slows emit; its full queue drops the oldest events and counts them', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const rx = await receiver((_n, _req, res) => void gate.then(() => res.end('ok')));
    cleanups.push(rx.close);
    cleanups.push(() => release());
    const bus = new EventBus();
    const hooks = new WebhookDispatcher([endpoint(rx.url, { maxQueue: 10 })], { onFailure: () => undefined });
    cleanups.push(() => hooks.close());
    hooks.attach(bus);

    const start = performance.now();
    for (let i = 0; i < 200; i++) bus.emit('person_left_area', { camera_id: 'c', track_id: String(i) });
    const emitMs = performance.now() - start;
    expect(emitMs).toBeLessThan(200);
    expect(hooks.stats()[0]).toMatchObject({ queued: 10, dropped: 190 });

    release();
    await hooks.idle();
    // The first was on the wire before the queue filled; behind it the newest 9 survived.
    const tracks = rx.received.map((r) => JSON.parse(r.raw).track_id);
    expect(tracks).toEqual(['0', ...Array.from({ length: 9 }, (_, i) => String(191 + i))]);
    expect(hooks.stats()[0]).toMatchObject({ delivered: 10, dropped: 190, queued: 0 });
  });

  it('checks URLs when the config loads and event names when the dispatcher starts', () => {
    expect(() => parseConfig({ events: { webhooks: [{ url: 'ftp://example.com/x', secret: 'longenough' }] } })).toThrow(ConfigError);
    expect(() => parseConfig({ events: { webhooks: [{ url: 'not a url', secret: 'longenough' }] } })).toThrow(/http:\/\/ or https:\/\//);
    expect(() => parseConfig({ events: { webhooks: [{ url: 'https://example.com/x', secret: 'short' }] } })).toThrow(ConfigError);
    const config = parseConfig({ events: { webhooks: [{ url: 'https://example.com/x', secret: 'longenough', events: ['person_recognised'] }] } });
    expect(config.events.webhooks[0]).toMatchObject({ maxAttempts: 5, timeoutMs: 10_000, maxQueue: 1000 });
    expect(() => new WebhookDispatcher(config.events.webhooks)).toThrow(/events\.webhooks\[0\]\.events: unknown event type\(s\) person_recognised/);
  });
});
