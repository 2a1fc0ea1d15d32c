import WebSocket from 'ws';
import type { Json } from './test-app.ts';

/** A WebSocket test client that collects JSON messages and lets a test wait for the ones it expects. */
export class WsPeer {
  readonly messages: Json[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()));
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static open(url: string, key: string): Promise<WsPeer> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
      const peer = new WsPeer(ws);
      ws.once('open', () => resolve(peer));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  /** Waits until a message (after index `from`) satisfies `match`, and returns it. */
  async waitFor(match: (message: Json) => boolean, timeoutMs = 10_000, from = 0): Promise<Json> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.slice(from).find(match);
      if (found) return found;
      if (this.closed) throw new Error(`socket closed (${this.closeCode}) before the message came`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.messages.map((m) => m.type)).slice(-600)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  send(data: unknown): void {
    this.ws.send(typeof data === 'string' || Buffer.isBuffer(data) ? data : JSON.stringify(data));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }
}

/** Sends frames over a stream socket at `fps`, cycling through `frames` for `count` frames. */
export async function streamFrames(peer: WsPeer, frames: Buffer[], count: number, fps: number, options: { json?: boolean; firstFrameId?: number } = {}): Promise<void> {
  for (let i = 0; i < count; i++) {
    const bytes = frames[i % frames.length]!;
    if (options.json) peer.send({ type: 'frame', data: bytes.toString('base64'), frame_id: (options.firstFrameId ?? 0) + i, timestamp: Date.now() });
    else peer.send(bytes);
    await new Promise((r) => setTimeout(r, 1000 / fps));
  }
}
