import type { EventsConfig } from '../config/config.ts';
import { DecisionRegistry } from './decisions.ts';
import { EventBus } from './event-bus.ts';
import { EventRing, type EventRingStats, type EventRingStore } from './event-ring.ts';
import { MqttPublisher, type MqttStats } from './mqtt.ts';
import { SystemState } from './system-state.ts';
import { WebhookDispatcher, type WebhookEndpointStats } from './webhooks.ts';

/** The event machinery of a running server: what app.ts builds once and hands to services and routes. */
export interface EventsRuntime {
  bus: EventBus;
  state: SystemState;
  ring: EventRing;
  decisions: DecisionRegistry;
  webhooks: WebhookDispatcher;
  /** Null when events.mqtt.url is unset. */
  mqtt: MqttPublisher | null;
  stats(): EventsStats;
  /** Writes the ring's queue, stops webhooks and MQTT. Call before the store closes. */
  close(): Promise<void>;
}

export interface EventsStats {
  lastId: number;
  listeners: number;
  ring: EventRingStats;
  webhooks: WebhookEndpointStats[];
  mqtt: MqttStats | null;
}

export interface EventsRuntimeOptions {
  log?: (message: string) => void;
  /** User-Agent of webhook requests. */
  userAgent?: string;
  now?: () => number;
  /** Event ids from a database sequence (several nodes); default: continue from the ring's newest. */
  allocateId?: () => number;
}

/**
 * Wires the bus to its standing listeners, in this order: the system state (so every other
 * listener, and a WebSocket client that connects during dispatch, sees the state the event made),
 * the persisted ring, webhooks, MQTT. Ids continue from the ring's newest after a restart.
 */
export async function startEventsRuntime(config: EventsConfig, repo: EventRingStore, options: EventsRuntimeOptions = {}): Promise<EventsRuntime> {
  const log = options.log ?? ((m: string) => console.error(`facegate: ${m}`));
  const ring = new EventRing(repo, { ringSize: config.ringSize, onError: (err) => log(`event ring: ${(err as Error)?.message ?? String(err)}`) });
  const webhooks = new WebhookDispatcher(config.webhooks, { userAgent: options.userAgent, onFailure: log });
  const mqtt = config.mqtt.url ? new MqttPublisher({ ...config.mqtt, url: config.mqtt.url }, { log }) : null;
  try {
    await ring.prune();
    const bus = new EventBus({ lastId: await ring.latestId(), allocateId: options.allocateId, now: options.now, onListenerError: (err, e) => log(`event listener failed on ${e.type}: ${(err as Error)?.message ?? String(err)}`) });
    const state = new SystemState();
    bus.subscribe((e) => state.apply(e), undefined, { withRelayed: true });
    bus.subscribe((e) => ring.add(e));
    webhooks.attach(bus);
    mqtt?.attach(bus);
    const decisions = new DecisionRegistry(bus, state, (err) => log(`decision handler failed: ${(err as Error)?.message ?? String(err)}`));
    return {
      bus,
      state,
      ring,
      decisions,
      webhooks,
      mqtt,
      stats: () => ({ lastId: bus.lastId, listeners: bus.listenerCount, ring: ring.stats(), webhooks: webhooks.stats(), mqtt: mqtt?.stats() ?? null }),
      async close() {
        webhooks.close();
        await mqtt?.close();
        await ring.close();
      },
    };
  } catch (err) {
    webhooks.close();
    await mqtt?.close();
    throw err;
  }
}
