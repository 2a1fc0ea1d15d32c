import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type Session } from '../api.ts';
import { ErrorLine, formatTime, useItems } from '../ui.tsx';

/* Settings and system: thresholds (with what eval recommends), status and counters, API keys, users. */

interface Info {
  version: string;
  engine: string;
  embeddingModelId: string;
  workers: number;
  thresholds: { verify: number; search: number; minMargin: number; liveness: number };
  recommended?: { verify: number; search: number };
  requireLiveness?: boolean;
  retention?: { recognitionLogDays: number; eventsDays: number; snapshotsDays: number };
  classifier: string;
  gallery: { size: number; kind: string };
  storeImages: boolean;
}

interface Status {
  status: string;
  uptimeS: number;
  vision: { workers: number; busy: number; queued: number; completed: number; failed: number; restarts: number };
  totals: { framesIn: number; framesProcessed: number; framesDropped: number; recognitions: number; unknowns: number; registrations: number; activeTracks: number };
  cameras: { camera_id: string; pipeline: { processingFps: number; framesIn: number; framesDropped: number; activeTracks: number; latency?: { p50Ms?: number } } | null }[];
}

interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface User {
  id: string;
  name: string;
  role: string;
  lastLoginAt: number | null;
  lockedUntil: number | null;
}

export function SettingsPage({ session }: { session: Session }) {
  const [info, setInfo] = useState<Info | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [error, setError] = useState<string | null>(null);
  const isAdmin = session.level === 'admin';

  useEffect(() => {
    const load = (): void => {
      Promise.all([api.get<Info>('/api/v1/system/info'), api.get<Status>('/api/v1/system/status')])
        .then(([i, s]) => (setInfo(i), setStatus(s), setError(null)))
        .catch((err) => setError(errorText(err)));
    };
    load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, []);

  return (
    <main class="page">
      <h1>Settings and system</h1>
      <ErrorLine error={error} />
      {info && (
        <section aria-labelledby="thresholds-title" class="card">
          <h2 id="thresholds-title">Recognition</h2>
          <table class="table">
            <thead>
              <tr>
                <th scope="col">Setting</th>
                <th scope="col">In force</th>
                <th scope="col">Recommended by eval</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <td>Search threshold (who is this?)</td>
                <td>{info.thresholds.search.toFixed(3)}</td>
                <td>{info.recommended?.search.toFixed(3) ?? '—'}</td>
              </tr>
              <tr>
                <td>Verification threshold (is this X?)</td>
                <td>{info.thresholds.verify.toFixed(3)}</td>
                <td>{info.recommended?.verify.toFixed(3) ?? '—'}</td>
              </tr>
              <tr>
                <td>Minimum margin to the next person</td>
                <td>{info.thresholds.minMargin.toFixed(3)}</td>
                <td>—</td>
              </tr>
              <tr>
                <td>Liveness threshold{info.requireLiveness === false ? ' (not required to name someone)' : ' (required to name someone)'}</td>
                <td>{info.thresholds.liveness.toFixed(2)}</td>
                <td>—</td>
              </tr>
              {info.retention && (
                <tr>
                  <td>Retention, days (0 = kept): recognition log / events / unknown-face snapshots</td>
                  <td>
                    {info.retention.recognitionLogDays} / {info.retention.eventsDays} / {info.retention.snapshotsDays}
                  </td>
                  <td>—</td>
                </tr>
              )}
            </tbody>
          </table>
          <p class="muted small-text">
            Engine {info.engine}, model {info.embeddingModelId}, classifier {info.classifier}, gallery {info.gallery.size} templates ({info.gallery.kind}). Face images are{' '}
            {info.storeImages ? 'stored' : 'not stored (privacy.storeImages is off)'}. Thresholds, liveness and retention are set in facegate.config.json or FACEGATE_… environment
            variables; the recommended values are what <code>facegate eval</code> measured for this model.
          </p>
        </section>
      )}
      {status && (
        <section aria-labelledby="status-title" class="card">
          <h2 id="status-title">Status</h2>
          <div class="counters">
            <div class="counter">
              <span class="counter-value">{status.status}</span>
              <span class="counter-label">server, up {Math.round(status.uptimeS / 60)} min</span>
            </div>
            <div class="counter">
              <span class="counter-value">
                {status.vision.busy}/{status.vision.workers}
              </span>
              <span class="counter-label">workers busy, {status.vision.queued} queued</span>
            </div>
            <div class="counter">
              <span class="counter-value">{status.totals.framesProcessed}</span>
              <span class="counter-label">frames processed</span>
            </div>
            <div class="counter">
              <span class="counter-value">{status.totals.framesDropped}</span>
              <span class="counter-label">frames dropped</span>
            </div>
            <div class="counter">
              <span class="counter-value">{status.totals.recognitions}</span>
              <span class="counter-label">recognitions</span>
            </div>
          </div>
          <ul class="plain-list">
            {status.cameras
              .filter((c) => c.pipeline)
              .map((c) => (
                <li key={c.camera_id}>
                  <strong>{c.camera_id}</strong>: {c.pipeline!.processingFps.toFixed(1)} fps, {c.pipeline!.framesIn} in, {c.pipeline!.framesDropped} dropped, {c.pipeline!.activeTracks}{' '}
                  tracks
                </li>
              ))}
          </ul>
          <p class="muted small-text">
            Prometheus metrics: <a href="/metrics">/metrics</a> · API documentation: <a href="/docs">/docs</a>
          </p>
        </section>
      )}
      {isAdmin && <Users />}
      {isAdmin && <Keys />}
    </main>
  );
}

function Users() {
  const { items: users, error, setError, reload } = useItems<User>('/api/v1/users');
  const [name, setName] = useState('');
  const [role, setRole] = useState('operator');
  const [password, setPassword] = useState('');
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api.post('/api/v1/users', { name: name.trim(), role, password });
      setName('');
      setPassword('');
      setError(null);
      reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const remove = async (u: User): Promise<void> => {
    if (!confirm(`Delete user ${u.name}? Their sessions end now.`)) return;
    await api.del(`/api/v1/users/${u.id}`).catch((err) => setError(errorText(err)));
    reload();
  };
  return (
    <section aria-labelledby="users-title" class="card">
      <h2 id="users-title">Users</h2>
      <form class="filters" onSubmit={(e) => void create(e)}>
        <label>
          Name
          <input name="new-user" required autoComplete="off" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </label>
        <label>
          Role
          <select value={role} onChange={(e) => setRole(e.currentTarget.value)}>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <label>
          Password (8+ characters)
          <input name="new-password" type="password" required minLength={8} autoComplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Create user
        </button>
      </form>
      <ErrorLine error={error} />
      <ul class="plain-list">
        {(users ?? []).map((u) => (
          <li key={u.id}>
            <strong>{u.name}</strong> <span class="muted">{u.role} · last sign-in {formatTime(u.lastLoginAt)}</span>
            {u.lockedUntil && u.lockedUntil > Date.now() && <span class="tag bad">locked</span>}{' '}
            <button type="button" class="small" onClick={() => void remove(u)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

function Keys() {
  const { items: keys, error, setError, reload } = useItems<ApiKey>('/api/v1/keys');
  const [name, setName] = useState('');
  const [scope, setScope] = useState('device');
  const [created, setCreated] = useState<string | null>(null);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      const k = await api.post<{ key: string }>('/api/v1/keys', { name: name.trim(), scopes: [scope] });
      setCreated(k.key);
      setName('');
      reload();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const revoke = async (k: ApiKey): Promise<void> => {
    if (!confirm(`Revoke ${k.name}? Devices using it stop working now.`)) return;
    await api.del(`/api/v1/keys/${k.id}`).catch((err) => setError(errorText(err)));
    reload();
  };
  return (
    <section aria-labelledby="keys-title" class="card">
      <h2 id="keys-title">API keys</h2>
      <form class="filters" onSubmit={(e) => void create(e)}>
        <label>
          Name
          <input required maxLength={100} value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="e.g. front door kiosk" />
        </label>
        <label>
          Scope
          <select value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
            <option value="device">device (kiosks, cameras)</option>
            <option value="operator">operator</option>
            <option value="admin">admin</option>
          </select>
        </label>
        <button type="submit" class="primary">
          Create key
        </button>
      </form>
      {created && (
        <p class="notice" role="status">
          New key (shown this once, copy it now): <code class="secret">{created}</code>
        </p>
      )}
      <ErrorLine error={error} />
      <table class="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Scope</th>
            <th scope="col">Prefix</th>
            <th scope="col">Last used</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(keys ?? []).map((k) => (
            <tr key={k.id} class={k.revokedAt ? 'revoked' : ''}>
              <td>{k.name}</td>
              <td>{k.scopes.join(', ')}</td>
              <td>
                <code>{k.prefix}</code>
              </td>
              <td>{formatTime(k.lastUsedAt)}</td>
              <td>
                {k.revokedAt ? (
                  'revoked'
                ) : (
                  <button type="button" class="small danger" onClick={() => void revoke(k)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
