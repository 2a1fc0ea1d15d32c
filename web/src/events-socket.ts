import { useEffect, useRef, useState } from 'preact/hooks';
import { wsUrl, type FacegateEvent } from './api.ts';

export type SocketState = 'connecting' | 'open' | 'closed';

/**
 * The /api/v1/events WebSocket (signed in by the session cookie), reconnecting with backoff.
 * onEvent gets every message (events, `connected`, errors); send() writes a client message.
 */
export function useEventSocket(query: string, onEvent: (event: FacegateEvent) => void): { state: SocketState; send: (message: unknown) => boolean } {
  const [state, setState] = useState<SocketState>('connecting');
  const socketRef = useRef<WebSocket | null>(null);
  const handler = useRef(onEvent);
  handler.current = onEvent;

  useEffect(() => {
    let stopped = false;
    let retryMs = 500;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = (): void => {
      setState('connecting');
      const ws = new WebSocket(wsUrl(`/api/v1/events${query ? `?${query}` : ''}`));
      socketRef.current = ws;
      ws.onopen = () => {
        retryMs = 500;
        setState('open');
      };
      ws.onmessage = (msg) => {
        try {
          handler.current(JSON.parse(String(msg.data)) as FacegateEvent);
        } catch {
          // A message that is not JSON is not ours to show.
        }
      };
      ws.onclose = () => {
        socketRef.current = null;
        setState('closed');
        if (!stopped) timer = setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 10_000);
      };
    };
    connect();
    return () => {
      stopped = true;
      clearTimeout(timer);
      socketRef.current?.close();
    };
  }, [query]);

  const send = (message: unknown): boolean => {
    const ws = socketRef.current;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    return true;
  };
  return { state, send };
}
