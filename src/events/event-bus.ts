import {
  parsePayload,
  type AnyFacegateEvent,
  type EmitInput,
  type FacegateEvent,
  type FacegateEventName,
  ALL_CAMERAS,
} from './event-map.ts';

/** Which events a subscriber wants; absent or empty lists mean "all". Events for camera "*" match every camera filter. */
export interface EventFilter {
  cameras?: readonly string[];
  types?: readonly FacegateEventName[];
}

export type EventListener = (event: AnyFacegateEvent) => void;

export interface EventBusOptions {
  /** The last id already used (the ring's latest after a restart); the next event gets lastId + 1. */
  lastId?: number;
  /** Clock, epoch ms (tests). */
  now?: () => number;
  /** Called when a listener throws; default: printed to stderr. The other listeners still run. */
  onListenerError?: (err: unknown, event: AnyFacegateEvent) => void;
  /**
   * Hands out event ids instead of counting from lastId: several nodes on one database take ids
   * from blocks of a database sequence (src/cluster), so two nodes never give out the same one.
   */
  allocateId?: () => number;
}

export interface SubscribeOptions {
  /**
   * Also receive events relayed from other nodes (several nodes, issue 9): what clients are
   * shown (WebSockets, the system state). Default false: listeners that act on an event (write
   * it, deliver a webhook, record attendance) see only this node's own, so each happens once.
   */
  withRelayed?: boolean;
}

/** True when the event passes the filter. */
export function matchesFilter(event: { type: string; camera_id: string }, filter: EventFilter | undefined): boolean {
  if (!filter) return true;
  if (filter.types && filter.types.length > 0 && !filter.types.includes(event.type as FacegateEventName)) return false;
  if (filter.cameras && filter.cameras.length > 0 && event.camera_id !== ALL_CAMERAS && !filter.cameras.includes(event.camera_id)) {
    return false;
  }
  return true;
}

interface Subscription {
  listener: EventListener;
  filter: EventFilter | undefined;
  withRelayed: boolean;
}

/**
 * The typed, synchronous event bus. emit checks the payload against the event map, stamps the
 * envelope (id in emit order, time) and hands it to each matching listener in a try/catch, so a
 * throwing listener cannot break the emitter or the other listeners. Listeners must return at
 * once: slow consumers (WebSocket clients, webhooks, MQTT, the ring's writer) queue for themselves.
 */
export class EventBus {
  private nextId: number;
  private lastDispatched: number;
  private readonly allocateId: (() => number) | undefined;
  private readonly now: () => number;
  private readonly onListenerError: (err: unknown, event: AnyFacegateEvent) => void;
  private subscriptions: Subscription[] = [];

  constructor(options: EventBusOptions = {}) {
    this.nextId = Math.max(0, Math.floor(options.lastId ?? 0)) + 1;
    this.lastDispatched = this.nextId - 1;
    this.allocateId = options.allocateId;
    this.now = options.now ?? Date.now;
    this.onListenerError =
      options.onListenerError ?? ((err, event) => console.error(`facegate: an event listener failed on ${event.type}: ${(err as Error)?.message ?? String(err)}`));
  }

  /** The id of the newest event emitted or relayed (0 before any): the cursor a client resumes polling from. */
  get lastId(): number {
    return this.lastDispatched;
  }

  get listenerCount(): number {
    return this.subscriptions.length;
  }

  /**
   * Emits one event to every matching subscriber and returns its envelope. Throws (a ZodError)
   * only when the payload does not fit the event map — a programming error, never a runtime one.
   */
  emit<K extends FacegateEventName>(type: K, input: EmitInput<K>): FacegateEvent<K> {
    const { camera_id: cameraId, track_id: trackId, ...payload } = input;
    const data = parsePayload(type, payload);
    const id = this.allocateId ? this.allocateId() : this.nextId++;
    const event: FacegateEvent<K> = { id, type, camera_id: cameraId, track_id: trackId ?? null, timestamp: this.now(), data };
    this.dispatch(event as unknown as AnyFacegateEvent, false);
    return event;
  }

  /**
   * Dispatches an event another node emitted (already validated, stored and delivered there) to
   * the listeners that asked for relayed events.
   */
  relay(event: AnyFacegateEvent): void {
    this.dispatch(event, true);
  }

  /** Subscribes a listener (optionally filtered); returns the function that unsubscribes it. */
  subscribe(listener: EventListener, filter?: EventFilter, options: SubscribeOptions = {}): () => void {
    const subscription: Subscription = { listener, filter, withRelayed: options.withRelayed ?? false };
    // Copy on write: a listener that (un)subscribes during dispatch does not disturb the loop.
    this.subscriptions = [...this.subscriptions, subscription];
    return () => {
      this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
    };
  }

  private dispatch(event: AnyFacegateEvent, relayed: boolean): void {
    this.lastDispatched = event.id;
    for (const { listener, filter, withRelayed } of this.subscriptions) {
      if (relayed && !withRelayed) continue;
      if (!matchesFilter(event, filter)) continue;
      try {
        const result: unknown = listener(event);
        // An async listener's rejection must not become an unhandled rejection (which ends the process).
        if (result instanceof Promise) result.catch((err: unknown) => this.reportListenerError(err, event));
      } catch (err) {
        this.reportListenerError(err, event);
      }
    }
  }

  private reportListenerError(err: unknown, event: AnyFacegateEvent): void {
    try {
      this.onListenerError(err, event);
    } catch {
      // The error reporter itself failed: nothing more can be done without risking the emitter.
    }
  }
}
