import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, errorText, type Person, type Session } from '../api.ts';
import { DayChart } from '../chart.tsx';
import { ErrorLine, formatClock, formatTime, FormActions, isoDay, Modal, useItems } from '../ui.tsx';

/* Attendance (issue 6's API): today, a filtered date-range table with CSV export, a per-day chart, mark and revoke. */

export interface CheckIn {
  id: string;
  personId: string;
  name: string;
  externalId: string | null;
  department: string | null;
  day: string;
  checkInAt: number;
  checkOutAt: number;
  late: boolean;
  minutesLate: number;
  method: 'recognition' | 'manual';
  cameraId: string | null;
  similarity: number | null;
  note: string | null;
  revoked: boolean;
  revokedReason: string | null;
}

interface Today {
  day: string;
  timeZone: string;
  workDay: boolean;
  startTime: string;
  counts: { expected: number; present: number; late: number; absent: number };
  present: CheckIn[];
  absent: { personId: string; name: string; externalId: string | null; department: string | null }[];
}

interface Stats {
  days: { day: string; workDay: boolean; present: number; late: number; absent: number | null }[];
  totals: { present: number; late: number; absent: number };
}

const daysAgo = (n: number): string => isoDay(new Date(Date.now() - n * 86_400_000));

export function AttendancePage({ session }: { session: Session }) {
  const [today, setToday] = useState<Today | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [marking, setMarking] = useState(false);

  useEffect(() => {
    api
      .get<Today>('/api/v1/attendance/today')
      .then((t) => (setToday(t), setError(null)))
      .catch((err) => setError(errorText(err)));
  }, [reload]);

  return (
    <main class="page">
      <div class="page-head">
        <h1>Attendance</h1>
        <button type="button" class="primary" onClick={() => setMarking(true)}>
          Mark present
        </button>
      </div>
      <ErrorLine error={error} />
      {today && (
        <section aria-labelledby="today-title">
          <h2 id="today-title">
            Today, {today.day} <span class="muted">({today.timeZone}, starts {today.startTime})</span>
          </h2>
          <div class="counters">
            <Counter label="Present" value={today.counts.present} tone="ok" />
            <Counter label="Late" value={today.counts.late} tone="warn" />
            <Counter label="Absent" value={today.counts.absent} tone="bad" />
            <Counter label="Expected" value={today.counts.expected} />
          </div>
          <div class="two-columns">
            <div>
              <h3>Present</h3>
              <CheckInTable rows={today.present} onChanged={() => setReload((n) => n + 1)} compact />
            </div>
            <div>
              <h3>Absent</h3>
              {today.absent.length === 0 ? (
                <p class="empty">Nobody is absent.</p>
              ) : (
                <ul class="plain-list">
                  {today.absent.map((p) => (
                    <li key={p.personId}>
                      <a href={`/people/${p.personId}`}>{p.name}</a> <span class="muted">{p.department ?? ''}</span>
                    </li>
                  ))}
                </ul>
              )}
            </div>
          </div>
        </section>
      )}
      <RangeReport reload={reload} onChanged={() => setReload((n) => n + 1)} />
      {marking && <MarkDialog onClose={() => setMarking(false)} onMarked={() => (setMarking(false), setReload((n) => n + 1))} />}
      <p class="muted small-text">Signed in as {session.name}: manual marks and revocations are recorded under this name.</p>
    </main>
  );
}

function Counter({ label, value, tone }: { label: string; value: number; tone?: 'ok' | 'warn' | 'bad' }) {
  return (
    <div class={`counter ${tone ?? ''}`}>
      <span class="counter-value">{value}</span>
      <span class="counter-label">{label}</span>
    </div>
  );
}

function RangeReport({ reload, onChanged }: { reload: number; onChanged: () => void }) {
  const [from, setFrom] = useState(daysAgo(6));
  const [to, setTo] = useState(isoDay());
  const [department, setDepartment] = useState('');
  const [cameraId, setCameraId] = useState('');
  const [method, setMethod] = useState('');
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const [rows, setRows] = useState<CheckIn[]>([]);
  const [total, setTotal] = useState(0);
  const [stats, setStats] = useState<Stats | null>(null);
  const [error, setError] = useState<string | null>(null);

  const query = useMemo(() => {
    const q = new URLSearchParams({ from, to });
    if (department.trim()) q.set('department', department.trim());
    if (cameraId.trim()) q.set('cameraId', cameraId.trim());
    if (method) q.set('method', method);
    if (includeRevoked) q.set('includeRevoked', 'true');
    return q.toString();
  }, [from, to, department, cameraId, method, includeRevoked]);

  useEffect(() => {
    Promise.all([api.get<{ items: CheckIn[]; total: number }>(`/api/v1/attendance/logs?${query}&limit=500`), api.get<Stats>(`/api/v1/attendance/stats?from=${from}&to=${to}`)])
      .then(([logs, s]) => {
        setRows(logs.items);
        setTotal(logs.total);
        setStats(s);
        setError(null);
      })
      .catch((err) => setError(errorText(err)));
  }, [query, reload]);

  const series = useMemo(
    () => (stats ? { days: stats.days.map((d) => d.day), present: stats.days.map((d) => d.present), late: stats.days.map((d) => d.late), absent: stats.days.map((d) => d.absent) } : null),
    [stats],
  );

  return (
    <section aria-labelledby="range-title">
      <h2 id="range-title">Check-ins by date</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          From
          <input type="date" value={from} max={to} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To
          <input type="date" value={to} min={from} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          Department
          <input value={department} onInput={(e) => setDepartment(e.currentTarget.value)} />
        </label>
        <label>
          Camera
          <input value={cameraId} onInput={(e) => setCameraId(e.currentTarget.value)} />
        </label>
        <label>
          Method
          <select value={method} onChange={(e) => setMethod(e.currentTarget.value)}>
            <option value="">any</option>
            <option value="recognition">recognition</option>
            <option value="manual">manual</option>
          </select>
        </label>
        <label class="checkbox">
          <input type="checkbox" checked={includeRevoked} onChange={(e) => setIncludeRevoked(e.currentTarget.checked)} /> revoked too
        </label>
        <a class="button" href={`/api/v1/attendance/export.csv?${query}`} download={`attendance-${from}-${to}.csv`}>
          Export CSV
        </a>
      </form>
      <ErrorLine error={error} />
      {series && series.days.length > 0 && <DayChart series={series} />}
      {stats && (
        <p class="muted">
          Totals: {stats.totals.present} present, {stats.totals.late} late, {stats.totals.absent} absent. {total} check-in(s) match the filters.
        </p>
      )}
      <CheckInTable rows={rows} onChanged={onChanged} />
    </section>
  );
}

export function CheckInTable({ rows, onChanged, compact = false }: { rows: CheckIn[]; onChanged: () => void; compact?: boolean }) {
  const [revoking, setRevoking] = useState<CheckIn | null>(null);
  if (rows.length === 0) return <p class="empty">No check-ins.</p>;
  return (
    <div class="table-wrap">
      <table class="table">
        <thead>
          <tr>
            {!compact && <th scope="col">Day</th>}
            <th scope="col">Name</th>
            <th scope="col">In</th>
            {!compact && <th scope="col">Last seen</th>}
            <th scope="col">How</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} class={r.revoked ? 'revoked' : ''}>
              {!compact && <td>{r.day}</td>}
              <td>
                <a href={`/people/${r.personId}`}>{r.name}</a>
                {r.department && <span class="muted"> · {r.department}</span>}
              </td>
              <td>
                {formatClock(r.checkInAt)} {r.late && <span class="tag warn">late {r.minutesLate} min</span>}
              </td>
              {!compact && <td>{formatClock(r.checkOutAt)}</td>}
              <td>
                {r.method === 'manual' ? 'manual' : `camera ${r.cameraId ?? '?'}${r.similarity !== null ? ` (${r.similarity.toFixed(2)})` : ''}`}
                {r.revoked && <span class="tag bad"> revoked: {r.revokedReason}</span>}
              </td>
              <td>
                {!r.revoked && (
                  <button type="button" class="small" onClick={() => setRevoking(r)}>
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {revoking && <RevokeDialog row={revoking} onClose={() => setRevoking(null)} onRevoked={() => (setRevoking(null), onChanged())} />}
    </div>
  );
}

function RevokeDialog({ row, onClose, onRevoked }: { row: CheckIn; onClose: () => void; onRevoked: () => void }) {
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | null>(null);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api.post(`/api/v1/attendance/logs/${row.id}/revoke`, { reason: reason.trim() });
      onRevoked();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title={`Revoke ${row.name}’s check-in of ${row.day}?`} onClose={onClose}>
      <form class="form" onSubmit={(e) => void send(e)}>
        <p>A revoked recognition check-in also teaches the identity decision that this face was not {row.name}.</p>
        <label>
          Reason
          <input required maxLength={500} value={reason} onInput={(e) => setReason(e.currentTarget.value)} placeholder="e.g. this was someone else" />
        </label>
        <FormActions error={error} onCancel={onClose} kind="danger">
          Revoke
        </FormActions>
      </form>
    </Modal>
  );
}

function MarkDialog({ onClose, onMarked }: { onClose: () => void; onMarked: () => void }) {
  const [search, setSearch] = useState('');
  const [people, setPeople] = useState<Person[]>([]);
  const [personId, setPersonId] = useState('');
  const [note, setNote] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const q = new URLSearchParams({ limit: '20' });
    if (search.trim()) q.set('search', search.trim());
    api
      .get<{ items: Person[] }>(`/api/v1/people?${q.toString()}`)
      .then((r) => setPeople(r.items))
      .catch((err) => setError(errorText(err)));
  }, [search]);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api.post('/api/v1/attendance/mark', { personId, note: note.trim() || null });
      onMarked();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title="Mark a person present" onClose={onClose}>
      <form class="form" onSubmit={(e) => void send(e)}>
        <label>
          Find
          <input type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="name or code" />
        </label>
        <label>
          Person
          <select required value={personId} onChange={(e) => setPersonId(e.currentTarget.value)}>
            <option value="">choose…</option>
            {people.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
                {p.externalId ? ` (${p.externalId})` : ''}
              </option>
            ))}
          </select>
        </label>
        <label>
          Note (why by hand)
          <input maxLength={500} value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        </label>
        <FormActions error={error} onCancel={onClose} disabled={!personId}>
          Mark present now
        </FormActions>
      </form>
    </Modal>
  );
}

/** One person's check-ins (used on the person page). */
export function AttendanceHistory({ personId }: { personId: string; session: Session }) {
  const { items: rows, error, reload } = useItems<CheckIn>(`/api/v1/attendance/people/${personId}?limit=100&includeRevoked=true`);
  return (
    <>
      <ErrorLine error={error} />
      {rows && <CheckInTable rows={rows} onChanged={reload} />}
      {rows && rows.length > 0 && <p class="muted small-text">Last check-in {formatTime(rows[0]!.checkInAt)}</p>}
    </>
  );
}
