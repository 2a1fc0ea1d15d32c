import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type FacegateEvent, type Session } from '../api.ts';
import { useEventSocket } from '../events-socket.ts';
import { ErrorLine, formatClock, formatTime, FormActions, Modal, useItems } from '../ui.tsx';

/* Live: every camera with its last processed frame and faces, the event stream, sessions, camera management. */

interface Camera {
  id: string;
  name: string;
  kind: string;
  source: string | null;
  enabled: boolean;
  origin: string;
  state: string;
  lastError: string | null;
  stats: { framesIn: number; framesDropped: number; framesProcessed: number; fps: number; processingFps: number };
}

interface LiveView {
  result: { faces: { track_id: string; name: string | null; is_unknown: boolean; confidence: number; bbox: [number, number, number, number] }[]; width: number; height: number } | null;
  frameUrl: string | null;
}

interface RecSession {
  id: string;
  cameraId: string;
  label: string | null;
  startedAt: number;
  stoppedAt: number | null;
  status: 'running' | 'stopped';
}

interface SessionReport {
  session: RecSession;
  recognizedStudents: { personId: string; name: string; rollNo: string; firstSeen: number; bestConfidence: number }[];
}

const MAX_EVENTS = 200;

export function LivePage({ session }: { session: Session }) {
  const [cameras, setCameras] = useState<Camera[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [adding, setAdding] = useState(false);
  const [events, setEvents] = useState<FacegateEvent[]>([]);
  const isAdmin = session.level === 'admin';

  useEffect(() => {
    const load = (): void => {
      api
        .get<{ items: Camera[] }>('/api/v1/cameras')
        .then((r) => (setCameras(r.items), setError(null)))
        .catch((err) => setError(errorText(err)));
    };
    load();
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }, [reload]);

  const socket = useEventSocket('', (e) => {
    if (e.type === 'connected') {
      // What happened just before the page opened, from the persisted event ring.
      const cursor = Number(e.data.cursor ?? 0);
      api
        .get<{ events: FacegateEvent[] }>(`/api/v1/events?after=${Math.max(0, cursor - 50)}&limit=50`)
        .then((page) => setEvents((list) => [...list, ...page.events.filter((p) => p.id <= cursor).reverse()].slice(0, MAX_EVENTS)))
        .catch(() => {});
      return;
    }
    if (e.type === 'error') return;
    setEvents((list) => [e, ...list].slice(0, MAX_EVENTS));
  });

  const act = async (camera: Camera, action: 'start' | 'stop' | 'delete'): Promise<void> => {
    try {
      if (action === 'delete') await api.del(`/api/v1/cameras/${camera.id}`);
      else await api.post(`/api/v1/cameras/${camera.id}/${action}`);
      setReload((n) => n + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  return (
    <main class="page">
      <div class="page-head">
        <h1>Live</h1>
        {isAdmin && (
          <button type="button" class="primary" onClick={() => setAdding(true)}>
            Add camera
          </button>
        )}
      </div>
      <ErrorLine error={error} />
      {cameras.length === 0 && <p class="empty">No camera yet. Open the Kiosk page on a device with a webcam, or add an RTSP, MJPEG, V4L2 or file camera.</p>}
      <div class="camera-grid">
        {cameras.map((c) => (
          <article key={c.id} class="card camera-card" aria-labelledby={`cam-${c.id}`}>
            <header class="camera-head">
              <h2 id={`cam-${c.id}`}>{c.name}</h2>
              <span class={`tag state-${c.state}`}>{c.state}</span>
            </header>
            <LiveFrame cameraId={c.id} />
            <p class="muted small-text">
              {c.kind} {c.source ? `· ${c.source}` : ''} · {c.stats.processingFps.toFixed(1)} fps processed · {c.stats.framesIn} in · {c.stats.framesDropped} dropped
            </p>
            {c.lastError && <p class="error small-text">{c.lastError}</p>}
            <div class="buttons">
              {c.kind !== 'push' && (
                <>
                  <button type="button" class="small" onClick={() => void act(c, 'start')}>
                    Start
                  </button>
                  <button type="button" class="small" onClick={() => void act(c, 'stop')}>
                    Stop
                  </button>
                </>
              )}
              {isAdmin && c.origin === 'api' && (
                <button type="button" class="small danger" onClick={() => void act(c, 'delete')}>
                  Delete
                </button>
              )}
            </div>
          </article>
        ))}
      </div>
      <div class="two-columns">
        <Sessions cameras={cameras} />
        <section aria-labelledby="events-title">
          <h2 id="events-title">
            Events <span class="muted small-text">({socket.state})</span>
          </h2>
          {events.length === 0 && <p class="empty">No event since this page opened.</p>}
          <ol class="event-list" aria-live="polite">
            {events.map((e) => (
              <li key={e.id}>
                <span class="muted">{formatClock(e.timestamp)}</span> <strong>{e.type}</strong> <span class="muted">{e.camera_id}</span>{' '}
                {typeof e.data.message === 'string' ? e.data.message : ''}
              </li>
            ))}
          </ol>
        </section>
      </div>
      {adding && <AddCamera onClose={() => setAdding(false)} onAdded={() => (setAdding(false), setReload((n) => n + 1))} />}
    </main>
  );
}

function LiveFrame({ cameraId }: { cameraId: string }) {
  const [view, setView] = useState<LiveView | null>(null);
  useEffect(() => {
    let stopped = false;
    const poll = (): void => {
      api
        .get<LiveView>(`/api/v1/cameras/${encodeURIComponent(cameraId)}/live`)
        .then((v) => !stopped && setView(v))
        .catch(() => {});
    };
    poll();
    const timer = setInterval(poll, 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [cameraId]);
  if (!view?.frameUrl || !view.result) return <div class="frame-empty">No frame yet</div>;
  const { width, height, faces } = view.result;
  return (
    <div class="frame-box">
      <img src={view.frameUrl} alt={`Last frame of ${cameraId}`} />
      {faces.map((f) => {
        const [x, y, w, h] = f.bbox;
        return (
          <div
            key={f.track_id}
            class={f.is_unknown ? 'box unknown' : 'box known'}
            style={{ left: `${(x / width) * 100}%`, top: `${(y / height) * 100}%`, width: `${(w / width) * 100}%`, height: `${(h / height) * 100}%` }}
          >
            <span class="box-label">
              {f.is_unknown ? 'unknown' : f.name} · #{f.track_id}
            </span>
          </div>
        );
      })}
    </div>
  );
}

function Sessions({ cameras }: { cameras: Camera[] }) {
  const { items, error, setError, reload } = useItems<RecSession>('/api/v1/sessions?limit=20');
  const [cameraId, setCameraId] = useState('');
  const [label, setLabel] = useState('');
  const [report, setReport] = useState<SessionReport | null>(null);
  const start = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api.post('/api/v1/sessions', { cameraId, label: label.trim() || null });
      setLabel('');
      reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const stop = async (s: RecSession): Promise<void> => {
    try {
      setReport(await api.post<SessionReport>(`/api/v1/sessions/${s.id}/stop`));
      reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const open = async (s: RecSession): Promise<void> => {
    try {
      setReport(await api.get<SessionReport>(`/api/v1/sessions/${s.id}`));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <section aria-labelledby="sessions-title">
      <h2 id="sessions-title">Sessions</h2>
      <form class="filters" onSubmit={(e) => void start(e)}>
        <label>
          Camera
          <select required value={cameraId} onChange={(e) => setCameraId(e.currentTarget.value)}>
            <option value="">choose…</option>
            {cameras.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </label>
        <label>
          Label
          <input value={label} maxLength={200} onInput={(e) => setLabel(e.currentTarget.value)} placeholder="e.g. Math 101" />
        </label>
        <button type="submit" class="primary" disabled={cameras.length === 0}>
          Start session
        </button>
      </form>
      <ErrorLine error={error} />
      <ul class="plain-list">
        {(items ?? []).map((s) => (
          <li key={s.id}>
            <button type="button" class="link" onClick={() => void open(s)}>
              {s.label ?? s.id.slice(0, 8)}
            </button>{' '}
            <span class="muted">
              {s.cameraId} · {formatTime(s.startedAt)} {s.stoppedAt ? `– ${formatClock(s.stoppedAt)}` : ''}
            </span>{' '}
            {s.status === 'running' && (
              <button type="button" class="small" onClick={() => void stop(s)}>
                Stop
              </button>
            )}
          </li>
        ))}
      </ul>
      {report && (
        <Modal title={`Session ${report.session.label ?? report.session.id.slice(0, 8)} (${report.session.status})`} onClose={() => setReport(null)}>
          {report.recognizedStudents.length === 0 ? (
            <p class="empty">Nobody recognised.</p>
          ) : (
            <ul class="plain-list">
              {report.recognizedStudents.map((r) => (
                <li key={r.personId}>
                  {r.name} <span class="muted">({r.rollNo}) first seen {formatClock(r.firstSeen)}, confidence {r.bestConfidence.toFixed(2)}</span>
                </li>
              ))}
            </ul>
          )}
          <div class="buttons">
            <button type="button" onClick={() => setReport(null)}>
              Close
            </button>
          </div>
        </Modal>
      )}
    </section>
  );
}

function AddCamera({ onClose, onAdded }: { onClose: () => void; onAdded: () => void }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState('rtsp');
  const [source, setSource] = useState('');
  const [maxFps, setMaxFps] = useState('');
  const [error, setError] = useState<string | null>(null);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    const body: Record<string, unknown> = { name: name.trim(), kind };
    if (kind === 'rtsp' || kind === 'mjpeg') body.url = source.trim();
    if (kind === 'v4l2') body.device = source.trim();
    if (kind === 'file') body.path = source.trim();
    if (maxFps) body.maxFps = Number(maxFps);
    try {
      await api.post('/api/v1/cameras', body);
      onAdded();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const sourceLabel: Record<string, string> = { rtsp: 'RTSP URL (rtsp://…)', mjpeg: 'MJPEG URL (http://…)', v4l2: 'Device (/dev/video0)', file: 'Video file path' };
  return (
    <Modal title="Add a camera" onClose={onClose}>
      <form class="form" onSubmit={(e) => void send(e)}>
        <label>
          Name
          <input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Kind
          <select value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="rtsp">RTSP</option>
            <option value="mjpeg">HTTP MJPEG</option>
            <option value="v4l2">V4L2 device</option>
            <option value="file">File</option>
            <option value="push">Push (a browser kiosk streams it)</option>
          </select>
        </label>
        {kind !== 'push' && (
          <label>
            {sourceLabel[kind]}
            <input required value={source} onInput={(e) => setSource(e.currentTarget.value)} />
          </label>
        )}
        <label>
          Max fps (optional)
          <input type="number" min={0.1} max={240} step={0.1} value={maxFps} onInput={(e) => setMaxFps(e.currentTarget.value)} />
        </label>
        <FormActions error={error} onCancel={onClose}>
          Add
        </FormActions>
      </form>
    </Modal>
  );
}
