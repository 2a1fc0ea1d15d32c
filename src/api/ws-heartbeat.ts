import type { WebSocket } from 'ws';

/** Dead peers (a kiosk that lost power) are found by ping/pong this often. */
export const HEARTBEAT_MS = 30_000;

/**
 * Pings the socket every intervalMs and terminates it when the previous ping got no pong, so a
 * peer that vanished without closing does not hold its subscriptions forever. Stops on close.
 */
export function keepAlive(socket: WebSocket, intervalMs = HEARTBEAT_MS): void {
  let alive = true;
  socket.on('pong', () => {
    alive = true;
  });
  const heartbeat = setInterval(() => {
    if (!alive) {
      socket.terminate();
      return;
    }
    alive = false;
    socket.ping();
  }, intervalMs);
  heartbeat.unref();
  socket.on('close', () => clearInterval(heartbeat));
}
