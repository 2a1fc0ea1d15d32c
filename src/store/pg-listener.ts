import pg from 'pg';

/*
 * A dedicated PostgreSQL connection for LISTEN (several nodes, issue 9). Pooled connections
 * cannot listen (a notification arrives on the session that listens, and the pool hands sessions
 * around), so this one is held apart. When it fails — the server restarted, the network broke, a
 * ping went unanswered — it is reopened with a growing delay, and onConnected runs after every
 * (re)connection once LISTEN is in place, so the owner can read what it missed by sequence number:
 * notifications are a hint that something changed, never the only record of it.
 */

export interface PgListenerOptions {
  url: string;
  channels: readonly string[];
  onNotification(channel: string, payload: string): void;
  /** After every (re)connection, once listening: catch up. `reconnected` is false the first time. */
  onConnected(reconnected: boolean): void;
  /** The connection broke (it is being reopened). */
  onDisconnected?(err: Error): void;
  /** First wait before reopening, doubled after each failure up to reconnectMaxMs. */
  reconnectMs: number;
  reconnectMaxMs: number;
  /** A `select 1` this often finds a connection that died silently; in milliseconds. */
  pingEveryMs?: number;
  log?: (message: string) => void;
}

export class PgListener {
  #client: pg.Client | null = null;
  #connected = false;
  #closed = false;
  #everConnected = false;
  #delayMs: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #reconnects = 0;

  constructor(private readonly options: PgListenerOptions) {
    this.#delayMs = options.reconnectMs;
  }

  get connected(): boolean {
    return this.#connected;
  }

  /** Times the connection was reopened after a failure. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Connects and listens; rejects when the first attempt fails (the server then does not start). */
  async start(): Promise<void> {
    await this.#connect();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    clearInterval(this.#pingTimer);
    const client = this.#client;
    this.#client = null;
    this.#connected = false;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url, keepAlive: true, application_name: 'facegate-listen', connectionTimeoutMillis: 5000 });
    let failed = false;
    const fail = (err: Error): void => {
      if (failed || this.#closed) return;
      failed = true;
      if (this.#client === client) this.#client = null;
      const wasConnected = this.#connected;
      this.#connected = false;
      clearInterval(this.#pingTimer);
      client.end().catch(() => undefined);
      if (wasConnected) this.options.onDisconnected?.(err);
      this.#scheduleRetry();
    };
    client.on('error', fail);
    client.on('end', () => fail(new Error('the LISTEN connection ended')));
    client.on('notification', (msg) => {
      if (!failed) this.options.onNotification(msg.channel, msg.payload ?? '');
    });
    try {
      await client.connect();
      for (const channel of this.options.channels) await client.query(`listen ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      failed = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.#closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#connected = true;
    this.#delayMs = this.options.reconnectMs;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    const pingEveryMs = this.options.pingEveryMs ?? 5000;
    this.#pingTimer = setInterval(() => {
      const timeout = setTimeout(() => fail(new Error(`no answer to a ping in ${pingEveryMs} ms`)), pingEveryMs);
      client
        .query('select 1')
        .then(() => clearTimeout(timeout))
        .catch((err: Error) => {
          clearTimeout(timeout);
          fail(err);
        });
    }, pingEveryMs);
    this.#pingTimer.unref();
    this.options.onConnected(reconnected);
  }

  #scheduleRetry(): void {
    if (this.#closed) return;
    clearTimeout(this.#retryTimer);
    const delay = this.#delayMs;
    this.#delayMs = Math.min(this.options.reconnectMaxMs, this.#delayMs * 2);
    this.#retryTimer = setTimeout(() => {
      this.#connect().then(
        () => {
          this.#reconnects++;
          this.options.log?.('cluster: the LISTEN connection is back');
        },
        (err: Error) => {
          this.options.log?.(`cluster: reopening the LISTEN connection failed (${err.message}); next try in ${this.#delayMs} ms`);
          this.#scheduleRetry();
        },
      );
    }, delay);
    this.#retryTimer.unref();
  }
}
