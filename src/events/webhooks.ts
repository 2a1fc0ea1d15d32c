import { createHmac, randomUUID } from 'node:crypto';
import { ConfigError, type EventsConfig } from '../config/config.ts';
import type { EventBus } from './event-bus.ts';
import { isEventName, type AnyFacegateEvent, type FacegateEventName } from './event-map.ts';

export type WebhookEndpointConfig = EventsConfig['webhooks'][number];

export interface WebhookOptions {
  /** First retry delay, before jitter, in ms; doubles per attempt. */
  backoffBaseMs?: number;
  /** Longest retry delay, in ms. */
  backoffMaxMs?: number;
  /** 0..1 random source for the jitter (tests). */
  random?: () => number;
  /** Sent as User-Agent. */
  userAgent?: string;
  /** A delivery given up after its last attempt, or dropped from a full queue. */
  onFailure?: (message: string) => void;
}

export interface WebhookEndpointStats {
  url: string;
  queued: number;
  delivered: number;
  /** Events given up after their last attempt (or at once on a non-retryable answer). */
  failed: number;
  /** Events dropped, oldest first, because the queue was full. */
  dropped: number;
  retries: number;
  lastError: string | null;
}

interface Delivery {
  id: string;
  type: FacegateEventName;
  body: string;
  attempt: number;
}

/** HMAC-SHA256 of the raw body, as X-Facegate-Signature carries it: `sha256=<hex>`. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Checks the configured event names (config cannot know the event map). */
export function checkEventNames(names: '*' | readonly string[], where: string): '*' | FacegateEventName[] {
  if (names === '*') return '*';
  const unknown = names.filter((n) => !isEventName(n));
  if (unknown.length > 0) throw new ConfigError(`${where}: unknown event type(s) ${unknown.join(', ')}`);
  return names as FacegateEventName[];
}

/** Network errors, timeouts, 408, 425, 429 and 5xx are worth another try; any other answer is final. */
function retryable(status: number | null): boolean {
  return status === null || status === 408 || status === 425 || status === 429 || status >= 500;
}

/** The URL without credentials or query (which may hold tokens), for logs and status. */
function safeUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

class WebhookEndpoint {
  private readonly queue: Delivery[] = [];
  private busy = false;
  private closed = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private inFlight: AbortController | null = null;
  private idleWaiters: Array<() => void> = [];
  readonly counters = { delivered: 0, failed: 0, dropped: 0, retries: 0, lastError: null as string | null };
  readonly types: '*' | FacegateEventName[];
  readonly label: string;

  constructor(
    private readonly config: WebhookEndpointConfig,
    private readonly options: Required<Omit<WebhookOptions, 'onFailure'>> & Pick<WebhookOptions, 'onFailure'>,
    index: number,
  ) {
    this.types = checkEventNames(config.events, `events.webhooks[${index}].events`);
    this.label = safeUrl(config.url);
  }

  wants(type: FacegateEventName): boolean {
    return this.types === '*' || this.types.includes(type);
  }

  enqueue(type: FacegateEventName, body: string): void {
    if (this.closed) return;
    if (this.queue.length >= this.config.maxQueue) {
      // The head may be on the wire (or between its retries): drop the oldest event behind it.
      this.queue.splice(this.busy && this.queue.length > 1 ? 1 : 0, 1);
      this.counters.dropped++;
      this.options.onFailure?.(`webhook ${this.label}: queue full (${this.config.maxQueue}), dropped the oldest event`);
    }
    this.queue.push({ id: randomUUID(), type, body, attempt: 0 });
    if (!this.busy) void this.run();
  }

  stats(): WebhookEndpointStats {
    return { url: this.label, queued: this.queue.length, ...this.counters };
  }

  /** Resolves when nothing is queued or in flight. */
  idle(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.inFlight?.abort();
    this.queue.length = 0;
    this.busy = false;
    this.settleIdle();
  }

  /** One delivery at a time, in order; a failing head is retried (with backoff) before the next goes. */
  private async run(): Promise<void> {
    this.busy = true;
    while (!this.closed && this.queue.length > 0) {
      const delivery = this.queue[0]!;
      delivery.attempt++;
      const { ok, status, error } = await this.send(delivery);
      if (this.closed) return;
      if (ok) {
        this.counters.delivered++;
        this.removeHead(delivery);
        continue;
      }
      this.counters.lastError = error;
      if (!retryable(status) || delivery.attempt >= this.config.maxAttempts) {
        this.counters.failed++;
        this.removeHead(delivery);
        this.options.onFailure?.(`webhook ${this.label}: gave up on ${delivery.type} delivery ${delivery.id} after ${delivery.attempt} attempt(s): ${error}`);
        continue;
      }
      this.counters.retries++;
      await this.wait(this.backoffMs(delivery.attempt));
    }
    this.busy = false;
    this.settleIdle();
  }

  private removeHead(delivery: Delivery): void {
    if (this.queue[0] === delivery) this.queue.shift();
  }

  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffBaseMs * 2 ** (attempt - 1));
    // "Equal jitter": between half and all of the exponential delay, so retries of many servers spread out.
    return ceiling / 2 + (ceiling / 2) * this.options.random();
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        resolve();
      }, ms);
      // A pending retry must not keep the process alive on shutdown.
      this.retryTimer.unref();
    });
  }

  private async send(delivery: Delivery): Promise<{ ok: boolean; status: number | null; error: string }> {
    const controller = new AbortController();
    this.inFlight = controller;
    const timer = setTimeout(() => controller.abort(new Error(`timed out after ${this.config.timeoutMs} ms`)), this.config.timeoutMs);
    try {
      const res = await fetch(this.config.url, {
        method: 'POST',
        redirect: 'manual',
        signal: controller.signal,
        headers: {
          'content-type': 'application/json',
          'user-agent': this.options.userAgent,
          'x-facegate-event': delivery.type,
          'x-facegate-delivery': delivery.id,
          'x-facegate-signature': webhookSignature(this.config.secret, delivery.body),
        },
        body: delivery.body,
      });
      await res.body?.cancel().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, error: '' };
      return { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      const cause = controller.signal.aborted ? controller.signal.reason : err;
      return { ok: false, status: null, error: (cause as Error)?.message ?? String(cause) };
    } finally {
      clearTimeout(timer);
      this.inFlight = null;
    }
  }

  private settleIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

/**
 * Sends chosen events to the configured URLs as signed JSON POSTs (the event envelope is the
 * body). Each URL has its own bounded queue and a single sender that retries with exponential
 * backoff and jitter; the bus listener only enqueues, so a slow or dead endpoint never slows emit.
 */
export class WebhookDispatcher {
  private readonly endpoints: WebhookEndpoint[];
  private unsubscribe: (() => void) | null = null;

  constructor(configs: readonly WebhookEndpointConfig[], options: WebhookOptions = {}) {
    const resolved = {
      backoffBaseMs: options.backoffBaseMs ?? 1000,
      backoffMaxMs: options.backoffMaxMs ?? 60_000,
      random: options.random ?? Math.random,
      userAgent: options.userAgent ?? 'facegate-webhooks',
      onFailure: options.onFailure,
    };
    this.endpoints = configs.map((c, i) => new WebhookEndpoint(c, resolved, i));
  }

  /** Subscribes to the bus; returns the function that unsubscribes. */
  attach(bus: EventBus): () => void {
    this.unsubscribe?.();
    this.unsubscribe = this.endpoints.length > 0 ? bus.subscribe((e) => this.handle(e)) : () => undefined;
    return this.unsubscribe;
  }

  /** Queues the event for every endpoint that wants it; returns at once. */
  handle(event: AnyFacegateEvent): void {
    let body: string | null = null;
    for (const endpoint of this.endpoints) {
      if (!endpoint.wants(event.type)) continue;
      body ??= JSON.stringify(event);
      endpoint.enqueue(event.type, body);
    }
  }

  stats(): WebhookEndpointStats[] {
    return this.endpoints.map((e) => e.stats());
  }

  /** Resolves when every queue is empty (tests, shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.idle()));
  }

  /** Stops at once: pending deliveries are abandoned. */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
    for (const e of this.endpoints) e.close();
  }
}
