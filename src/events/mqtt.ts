import { connect, type MqttClient } from 'mqtt';
import type { EventsConfig } from '../config/config.ts';
import type { EventBus } from './event-bus.ts';
import { ALL_CAMERAS, type AnyFacegateEvent, type FacegateEventName } from './event-map.ts';
import { checkEventNames } from './webhooks.ts';

export type MqttConfig = EventsConfig['mqtt'];

export interface MqttPublisherOptions {
  /** Delay between reconnection attempts, in ms. */
  reconnectPeriodMs?: number;
  /** Connection state changes and errors (logged once per change, not per retry). */
  log?: (message: string) => void;
}

export interface MqttStats {
  connected: boolean;
  published: number;
  queued: number;
  /** Messages dropped, oldest first, because the broker was unreachable too long. */
  dropped: number;
  lastError: string | null;
}

/** Topic segment for the camera "*" (events about every camera). */
export const ALL_CAMERAS_TOPIC = '_all';

/** A camera id as one topic level: MQTT wildcards and level separators become "_". */
export function topicSegment(value: string): string {
  return value === ALL_CAMERAS ? ALL_CAMERAS_TOPIC : value.replace(/[/+#]/g, '_').replaceAll(String.fromCharCode(0), '_') || '_';
}

/** `<prefix>/<camera>/<event>` */
export function eventTopic(prefix: string, event: Pick<AnyFacegateEvent, 'camera_id' | 'type'>): string {
  return `${prefix}/${topicSegment(event.camera_id)}/${event.type}`;
}

/**
 * Publishes chosen events to an MQTT broker as `<topicPrefix>/<camera>/<event>` with the event
 * envelope as JSON payload. mqtt.js reconnects by itself; while the broker is away, messages wait
 * in a bounded queue of ours (the oldest dropped and counted) and go out on reconnection. The bus
 * listener only publishes or queues, so the broker never slows emit.
 */
export class MqttPublisher {
  private readonly client: MqttClient;
  private readonly types: '*' | FacegateEventName[];
  private readonly queue: Array<{ topic: string; payload: string }> = [];
  private readonly log: (message: string) => void;
  private unsubscribe: (() => void) | null = null;
  private readonly counters = { published: 0, dropped: 0, lastError: null as string | null };
  private reportedDown = false;

  constructor(
    private readonly config: MqttConfig & { url: string },
    options: MqttPublisherOptions = {},
  ) {
    this.types = checkEventNames(config.events, 'events.mqtt.events');
    this.log = options.log ?? ((m) => console.error(`facegate: ${m}`));
    this.client = connect(config.url, {
      reconnectPeriod: options.reconnectPeriodMs ?? 2000,
      connectTimeout: 10_000,
      // Our own bounded queue holds what waits for the broker; mqtt.js's would grow without bound.
      queueQoSZero: false,
      clientId: `facegate-${Math.random().toString(16).slice(2, 10)}`,
      ...(config.username !== undefined ? { username: config.username } : {}),
      ...(config.password !== undefined ? { password: config.password } : {}),
    });
    this.client.on('connect', () => {
      if (this.reportedDown) this.log(`MQTT: connected to ${this.safeUrl()} again`);
      this.reportedDown = false;
      this.drain();
    });
    // Without an error listener an unreachable broker would throw on the emitter and end the process.
    this.client.on('error', (err) => this.down(err.message));
    this.client.on('offline', () => this.down('offline'));
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Subscribes to the bus; returns the function that unsubscribes. */
  attach(bus: EventBus): () => void {
    this.unsubscribe?.();
    this.unsubscribe = bus.subscribe((e) => this.handle(e), this.types === '*' ? undefined : { types: this.types });
    return this.unsubscribe;
  }

  /** Publishes the event, or queues it while the broker is away; returns at once. */
  handle(event: AnyFacegateEvent): void {
    if (this.types !== '*' && !this.types.includes(event.type)) return;
    const message = { topic: eventTopic(this.config.topicPrefix, event), payload: JSON.stringify(event) };
    if (this.client.connected && this.queue.length === 0) this.publish(message);
    else this.enqueue(message);
  }

  stats(): MqttStats {
    return { connected: this.client.connected, queued: this.queue.length, ...this.counters };
  }

  /** Sends what can be sent within a moment, then disconnects. */
  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await new Promise<void>((resolve) => {
      // Not forced: in-flight QoS 1/2 messages get their acknowledgements; a dead broker is forced after 2 s.
      const timer = setTimeout(() => this.client.end(true, {}, () => resolve()), 2000);
      this.client.end(false, {}, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private publish(message: { topic: string; payload: string }): void {
    this.client.publish(message.topic, message.payload, { qos: this.config.qos }, (err) => {
      if (err) this.counters.lastError = err.message;
    });
    this.counters.published++;
  }

  private enqueue(message: { topic: string; payload: string }): void {
    if (this.queue.length >= this.config.maxQueue) {
      this.queue.shift();
      this.counters.dropped++;
    }
    this.queue.push(message);
  }

  private drain(): void {
    while (this.client.connected && this.queue.length > 0) this.publish(this.queue.shift()!);
  }

  private down(reason: string): void {
    this.counters.lastError = reason;
    if (this.reportedDown) return;
    this.reportedDown = true;
    this.log(`MQTT: broker ${this.safeUrl()} unreachable (${reason}); retrying, events are queued (at most ${this.config.maxQueue})`);
  }

  private safeUrl(): string {
    const u = new URL(this.config.url);
    return `${u.protocol}//${u.host}`;
  }
}
