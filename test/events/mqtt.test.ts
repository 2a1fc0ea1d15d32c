import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { connect as netConnect } from 'node:net';
import { connectAsync, type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.ts';
import { EventBus } from '../../src/events/event-bus.ts';
import type { AnyFacegateEvent } from '../../src/events/event-map.ts';
import { eventTopic, MqttPublisher, topicSegment } from '../../src/events/mqtt.ts';

/*
 * Against the Mosquitto broker development and CI machines run on 127.0.0.1:1883. Without one the
 * broker tests are skipped with a warning, except under CI, where that is a failure. Every run uses
 * its own topic prefix, so parallel runs and other clients do not interfere.
 */
const BROKER_URL = process.env.FACEGATE_TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

async function brokerProblem(): Promise<string | null> {
  const { hostname, port } = new URL(BROKER_URL);
  return new Promise((resolve) => {
    const socket = netConnect({ host: hostname, port: Number(port || 1883), timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no MQTT broker answers at ${BROKER_URL} (timeout)`);
    });
    socket.once('error', (err) => resolve(`no MQTT broker answers at ${BROKER_URL} (${err.message})`));
  });
}

const problem = await brokerProblem();
if (problem) {
  if (process.env.CI) throw new Error(`${problem}; CI requires it (.ci/run starts mosquitto)`);
  console.warn(`\n!!! ${problem}: skipping the MQTT broker tests. Start one: mosquitto -d -c /etc/mosquitto/mosquitto.conf\n`);
}

function mqttConfig(over: Record<string, unknown>) {
  return parseConfig({ events: { mqtt: { url: BROKER_URL, ...over } } }).events.mqtt as ReturnType<typeof parseConfig>['events']['mqtt'] & { url: string };
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MQTT topics', () => {
  it('are <prefix>/<camera>/<event>, with wildcards and separators in camera ids made harmless', () => {
    expect(eventTopic('facegate', { camera_id: 'front door', type: 'person_recognized' })).toBe('facegate/front door/person_recognized');
    expect(eventTopic('home/fg', { camera_id: '*', type: 'system_ready' })).toBe('home/fg/_all/system_ready');
    expect(topicSegment('a/b+c#d')).toBe('a_b_c_d');
    expect(() => parseConfig({ events: { mqtt: { url: 'http://broker' } } })).toThrow(/mqtt:\/\//);
  });
});

describe('MQTT publisher, broker unreachable', () => {
  it('never blocks emit and keeps a bounded queue, dropping the oldest', async () => {
    const logs: string[] = [];
    const publisher = new MqttPublisher({ ...mqttConfig({ maxQueue: 5 }), url: 'mqtt://127.0.0.1:1' }, { reconnectPeriodMs: 50, log: (m) => logs.push(m) });
    const bus = new EventBus();
    publisher.attach(bus);
    try {
      const start = performance.now();
      for (let i = 0; i < 100; i++) bus.emit('person_left_area', { camera_id: 'c', track_id: String(i) });
      expect(performance.now() - start).toBeLessThan(200);
      expect(publisher.stats()).toMatchObject({ connected: false, queued: 5, dropped: 95, published: 0 });
      await until(() => logs.length > 0);
      await new Promise((r) => setTimeout(r, 300));
      // Reconnection attempts are reported once, not once per retry.
      expect(logs).toHaveLength(1);
      expect(logs[0]).toMatch(/MQTT: broker mqtt:\/\/127\.0\.0\.1:1 unreachable/);
    } finally {
      await publisher.close();
    }
  });
});

describe.skipIf(problem !== null)('MQTT publisher against the broker', () => {
  const prefix = `facegate-test-${randomBytes(4).toString('hex')}`;
  let sub: MqttClient;
  const received: Array<{ topic: string; event: AnyFacegateEvent }> = [];

  beforeAll(async () => {
    sub = await connectAsync(BROKER_URL, { clientId: `${prefix}-sub` });
    await sub.subscribeAsync(`${prefix}/#`, { qos: 1 });
    sub.on('message', (topic, payload) => received.push({ topic, event: JSON.parse(payload.toString()) as AnyFacegateEvent }));
  });
  afterAll(async () => {
    await sub?.endAsync();
  });

  it('publishes the chosen events as the envelope under <prefix>/<camera>/<event>', async () => {
    const publisher = new MqttPublisher(mqttConfig({ topicPrefix: prefix, events: ['person_recognized', 'system_ready'], qos: 1 }), { log: () => undefined });
    const bus = new EventBus();
    publisher.attach(bus);
    try {
      // Emitted before the connection is up: queued, then sent on connect, in order.
      const a = bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: 'S1', confidence: 0.8 });
      bus.emit('person_left_area', { camera_id: 'door', track_id: 't1' }); // not chosen
      await until(() => publisher.connected);
      const b = bus.emit('system_ready', { camera_id: '*' });
      await until(() => received.length >= 2);
      await new Promise((r) => setTimeout(r, 100));
      expect(received).toEqual([
        { topic: `${prefix}/door/person_recognized`, event: a },
        { topic: `${prefix}/_all/system_ready`, event: b },
      ]);
      expect(publisher.stats()).toMatchObject({ connected: true, published: 2, queued: 0, dropped: 0 });
    } finally {
      await publisher.close();
    }
  });
});

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const mosquittoMissing = spawnSync('mosquitto', ['-h']).error !== undefined;
if (mosquittoMissing && process.env.CI) throw new Error('the mosquitto binary is missing; CI requires it (apt package mosquitto)');

describe.skipIf(mosquittoMissing)('MQTT publisher across a broker restart', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });

  /** A private broker on its own port (mosquitto 2 without a config listens on localhost only). */
  async function startBroker(port: number): Promise<ChildProcess> {
    const child = spawn('mosquitto', ['-p', String(port)], { stdio: 'ignore' });
    children.push(child);
    await until(() => child.exitCode === null && child.pid !== undefined);
    return child;
  }

  it('reconnects by itself and sends what was emitted meanwhile', async () => {
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    let broker = await startBroker(port);
    const prefix = `facegate-restart-${randomBytes(4).toString('hex')}`;
    const publisher = new MqttPublisher({ ...mqttConfig({ topicPrefix: prefix, qos: 1 }), url }, { reconnectPeriodMs: 1000, log: () => undefined });
    const bus = new EventBus();
    publisher.attach(bus);
    try {
      await until(() => publisher.connected);
      broker.kill('SIGTERM');
      await new Promise((r) => broker.once('exit', r));
      await until(() => !publisher.connected);
      const meanwhile = bus.emit('person_left_area', { camera_id: 'door', track_id: 'gone' });
      expect(publisher.stats()).toMatchObject({ connected: false, queued: 1 });

      broker = await startBroker(port);
      // Subscribe before the publisher is back (it retries every second), so the queued message is seen.
      let sub: MqttClient | undefined;
      for (let i = 0; i < 50 && !sub; i++) {
        sub = await connectAsync(url, { reconnectPeriod: 0 }).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return undefined;
        });
      }
      const got: AnyFacegateEvent[] = [];
      sub!.on('message', (_t, payload) => got.push(JSON.parse(payload.toString()) as AnyFacegateEvent));
      await sub!.subscribeAsync(`${prefix}/#`, { qos: 1 });
      await until(() => got.length >= 1, 10_000);
      expect(got).toHaveLength(1);
      expect(got[0]).toEqual(meanwhile);
      expect(publisher.stats()).toMatchObject({ connected: true, queued: 0, dropped: 0 });
      await sub!.endAsync();
    } finally {
      await publisher.close();
    }
  });
});
