import { useState } from 'preact/hooks';
import type { FacegateEvent } from '../api.ts';
import { useEventSocket } from '../events-socket.ts';
import { formatClock } from '../ui.tsx';

/** Seed 000's WebSocket tester: connect to the event stream, watch every message, send a registration decision or any JSON. */
export function WsTesterPage() {
  const [camera, setCamera] = useState('');
  const [types, setTypes] = useState('');
  const [query, setQuery] = useState('');
  const [log, setLog] = useState<{ at: number; dir: 'in' | 'out'; text: string }[]>([]);
  const [trackId, setTrackId] = useState('');
  const [raw, setRaw] = useState('{"type":"registration_decision","data":{"register":false}}');
  const [rawError, setRawError] = useState<string | null>(null);

  const push = (dir: 'in' | 'out', text: string): void => setLog((l) => [{ at: Date.now(), dir, text }, ...l].slice(0, 300));
  const socket = useEventSocket(query, (e: FacegateEvent) => {
    push('in', JSON.stringify(e));
    if (e.type === 'unknown_person_detected' && e.track_id) setTrackId(e.track_id);
  });

  const connect = (e: Event): void => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (camera.trim()) q.set('camera', camera.trim());
    if (types.trim()) q.set('types', types.trim());
    setQuery(q.toString());
    setLog([]);
  };
  const send = (message: unknown): void => {
    if (socket.send(message)) push('out', JSON.stringify(message));
    else push('out', '(not connected: nothing sent)');
  };
  const decide = (register: boolean): void =>
    send({ type: 'registration_decision', data: { register, ...(camera.trim() ? { camera_id: camera.trim() } : {}), ...(trackId ? { track_id: trackId } : {}) } });
  const sendRaw = (): void => {
    try {
      send(JSON.parse(raw));
      setRawError(null);
    } catch (err) {
      setRawError(`Not JSON: ${(err as Error).message}`);
    }
  };

  return (
    <main class="page">
      <h1>WebSocket tester</h1>
      <p>
        The event stream at <code>/api/v1/events</code>, as a kiosk sees it. State: <strong>{socket.state}</strong>
      </p>
      <form class="filters" onSubmit={connect}>
        <label>
          Camera filter
          <input value={camera} onInput={(e) => setCamera(e.currentTarget.value)} placeholder="all cameras" />
        </label>
        <label>
          Event types
          <input value={types} onInput={(e) => setTypes(e.currentTarget.value)} placeholder="all, or e.g. person_recognized,unknown_person_detected" />
        </label>
        <button type="submit" class="primary">
          Reconnect
        </button>
      </form>
      <div class="filters">
        <label>
          Track
          <input value={trackId} onInput={(e) => setTrackId(e.currentTarget.value)} placeholder="the waiting track" />
        </label>
        <button type="button" onClick={() => decide(true)}>
          Send decision: register
        </button>
        <button type="button" onClick={() => decide(false)}>
          Send decision: do not register
        </button>
      </div>
      <div class="filters">
        <label class="grow">
          Any message
          <input value={raw} onInput={(e) => setRaw(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={sendRaw}>
          Send
        </button>
      </div>
      {rawError && <p class="error">{rawError}</p>}
      <ol class="event-list mono" aria-live="polite">
        {log.map((m, i) => (
          <li key={`${m.at}-${i}`} class={m.dir}>
            <span class="muted">
              {formatClock(m.at)} {m.dir === 'in' ? '←' : '→'}
            </span>{' '}
            {m.text}
          </li>
        ))}
      </ol>
    </main>
  );
}
