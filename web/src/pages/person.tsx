import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, errorText, type Face, type Person, type Session } from '../api.ts';
import { navigate } from '../router.ts';
import { ErrorLine, FormActions, Modal } from '../ui.tsx';
import { Webcam } from '../webcam.tsx';
import { DeletePersonDialog, PersonForm, type PersonFields } from './person-form.tsx';
import { AttendanceHistory } from './attendance.tsx';

interface AddFacesAnswer {
  added: number;
  refused: number;
  results: { status: 'added' | 'refused'; reason?: string; message?: string }[];
}

/** One person: fields, face templates with pose and quality, adding photos, scan enrollment, attendance history. */
export function PersonPage({ id, session }: { id: string; session: Session }) {
  const [person, setPerson] = useState<Person | null>(null);
  const [faces, setFaces] = useState<Face[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [adder, setAdder] = useState<'upload' | 'url' | 'webcam' | 'scan' | null>(null);
  const [reload, setReload] = useState(0);
  const isAdmin = session.level === 'admin';

  useEffect(() => {
    Promise.all([api.get<Person>(`/api/v1/people/${id}`), api.get<{ items: Face[] }>(`/api/v1/people/${id}/faces`)])
      .then(([p, f]) => {
        setPerson(p);
        setFaces(f.items);
      })
      .catch((err) => setError(err instanceof ApiError && err.status === 404 ? 'This person does not exist (any more).' : errorText(err)));
  }, [id, reload]);

  const report = (answer: AddFacesAnswer): void => {
    const refused = answer.results.filter((r) => r.status === 'refused');
    setNotice(`${answer.added} face(s) added${refused.length ? `; refused: ${refused.map((r) => r.message ?? r.reason).join('; ')}` : ''}`);
    setReload((n) => n + 1);
  };

  const save = async (fields: PersonFields): Promise<string | null> => {
    await api.patch<Person>(`/api/v1/people/${id}`, fields);
    setEditing(false);
    setReload((n) => n + 1);
    return null;
  };

  const deleteFace = async (face: Face): Promise<void> => {
    try {
      await api.del(`/api/v1/people/${id}/faces/${face.id}`);
      setReload((n) => n + 1);
    } catch (err) {
      setError(errorText(err));
    }
  };

  if (!person)
    return (
      <main class="page">
        <ErrorLine error={error} />
        {!error && <p class="loading">Loading…</p>}
      </main>
    );

  return (
    <main class="page">
      <p>
        <a href="/people">← People</a>
      </p>
      <div class="page-head">
        <h1>{person.name}</h1>
        {isAdmin && (
          <div class="buttons">
            <button type="button" onClick={() => setEditing(true)}>
              Edit
            </button>
            <button type="button" class="danger" onClick={() => setDeleting(true)}>
              Delete
            </button>
          </div>
        )}
      </div>
      <dl class="facts">
        <dt>Code</dt>
        <dd>{person.externalId ?? '—'}</dd>
        <dt>Department</dt>
        <dd>{person.department ?? '—'}</dd>
        <dt>Email</dt>
        <dd>{person.email ?? '—'}</dd>
        <dt>Type</dt>
        <dd>{person.type ?? '—'}</dd>
        <dt>Status</dt>
        <dd>{person.active ? 'active' : 'inactive'}</dd>
      </dl>
      <ErrorLine error={error} />
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}

      <section aria-labelledby="faces-title">
        <div class="page-head">
          <h2 id="faces-title">Faces ({faces.length})</h2>
          <div class="buttons">
            <button type="button" onClick={() => setAdder('upload')}>
              Upload photos
            </button>
            <button type="button" onClick={() => setAdder('url')}>
              From URL
            </button>
            <button type="button" onClick={() => setAdder('webcam')}>
              Webcam photo
            </button>
            <button type="button" class="primary" onClick={() => setAdder('scan')}>
              Scan enrollment
            </button>
          </div>
        </div>
        {faces.length === 0 && <p class="empty">No face yet: this person cannot be recognised until a face is added.</p>}
        <ul class="faces">
          {faces.map((f) => (
            <li key={f.id} class="face-card">
              {f.thumbnailUrl ? <img src={f.thumbnailUrl} alt={`Face ${f.pose.label ?? ''}`} /> : <span class="thumb initials">—</span>}
              <span>
                <strong>{f.pose.label ?? 'pose ?'}</strong> · quality {f.quality === null ? '—' : f.quality.toFixed(2)}
              </span>
              <span class="muted small-text">
                yaw {f.pose.yawDeg?.toFixed(0) ?? '—'}° · pitch {f.pose.pitchDeg?.toFixed(0) ?? '—'}° · {f.source}
              </span>
              {isAdmin && (
                <button type="button" class="link danger-text" onClick={() => void deleteFace(f)}>
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="history-title">
        <h2 id="history-title">Attendance</h2>
        <AttendanceHistory personId={id} session={session} />
      </section>

      {editing && (
        <Modal title={`Edit ${person.name}`} onClose={() => setEditing(false)}>
          <PersonForm initial={person} onSubmit={save} onCancel={() => setEditing(false)} submitLabel="Save" />
        </Modal>
      )}
      {deleting && <DeletePersonDialog person={person} onClose={() => setDeleting(false)} onDeleted={() => navigate('/people')} />}
      {adder === 'upload' && <UploadFaces personId={id} onDone={(a) => (setAdder(null), report(a))} onClose={() => setAdder(null)} />}
      {adder === 'url' && <UrlFace personId={id} onDone={(a) => (setAdder(null), report(a))} onClose={() => setAdder(null)} />}
      {adder === 'webcam' && <WebcamFace personId={id} onDone={(a) => (setAdder(null), report(a))} onClose={() => setAdder(null)} />}
      {adder === 'scan' && (
        <ScanEnrollment
          personId={id}
          onClose={() => {
            setAdder(null);
            setReload((n) => n + 1);
          }}
        />
      )}
    </main>
  );
}

function UploadFaces({ personId, onDone, onClose }: { personId: string; onDone: (a: AddFacesAnswer) => void; onClose: () => void }) {
  const [files, setFiles] = useState<File[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    const form = new FormData();
    for (const f of files) form.append('image', f);
    try {
      onDone(await api.post<AddFacesAnswer>(`/api/v1/people/${personId}/faces`, form));
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  };
  return (
    <Modal title="Upload face photos" onClose={onClose}>
      <form class="form" onSubmit={(e) => void send(e)}>
        <label>
          Photos (JPEG, PNG or WebP; one face each)
          <input type="file" name="photos" accept="image/jpeg,image/png,image/webp" multiple required onChange={(e) => setFiles([...(e.currentTarget.files ?? [])])} />
        </label>
        <FormActions error={error} onCancel={onClose} disabled={busy || files.length === 0}>
          {busy ? 'Adding…' : 'Add'}
        </FormActions>
      </form>
    </Modal>
  );
}

function UrlFace({ personId, onDone, onClose }: { personId: string; onDone: (a: AddFacesAnswer) => void; onClose: () => void }) {
  const [url, setUrl] = useState('');
  const [error, setError] = useState<string | null>(null);
  const send = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      onDone(await api.post<AddFacesAnswer>(`/api/v1/people/${personId}/faces`, { url: url.trim() }));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title="Add a face from a URL" onClose={onClose}>
      <form class="form" onSubmit={(e) => void send(e)}>
        <label>
          Photo URL (http or https; the server fetches it)
          <input type="url" required value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        </label>
        <FormActions error={error} onCancel={onClose}>
          Add
        </FormActions>
      </form>
    </Modal>
  );
}

function WebcamFace({ personId, onDone, onClose }: { personId: string; onDone: (a: AddFacesAnswer) => void; onClose: () => void }) {
  const grab = useRef<(() => Promise<Blob | null>) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const take = async (): Promise<void> => {
    const jpeg = await grab.current?.();
    if (!jpeg) return setError('No picture yet: wait for the camera to start.');
    const form = new FormData();
    form.append('image', jpeg, 'webcam.jpg');
    try {
      onDone(await api.post<AddFacesAnswer>(`/api/v1/people/${personId}/faces`, form));
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <Modal title="Take a face photo" onClose={onClose}>
      <Webcam onReady={(g) => (grab.current = g)} />
      <ErrorLine error={error} />
      <div class="buttons">
        <button type="button" class="primary" onClick={() => void take()}>
          Take photo
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Modal>
  );
}

interface Enrollment {
  id: string;
  status: 'capturing' | 'saving' | 'complete' | 'failed' | 'cancelled';
  progress: number;
  framesReceived: number;
  coverage: { coverage: number; coveredBins: number; totalBins: number } | null;
  failure: { reason: string; message: string } | null;
  templates: unknown[];
}

/** Circular scan (issue 5): frames go to /api/v1/enrollments/{id}/frames while the person turns their head. */
function ScanEnrollment({ personId, onClose }: { personId: string; onClose: () => void }) {
  const grab = useRef<(() => Promise<Blob | null>) | null>(null);
  const [enrollment, setEnrollment] = useState<Enrollment | null>(null);
  const [hint, setHint] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const running = useRef(false);

  /** Sends webcam frames, one after another, while the scan is capturing. */
  const capture = async (id: string): Promise<void> => {
    running.current = true;
    try {
      while (running.current) {
        const jpeg = await grab.current?.();
        if (!jpeg) {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const answer = await api.post<{ session: Enrollment; frame: { problem: string | null } }>(`/api/v1/enrollments/${id}/frames`, jpeg);
        if (!running.current) break;
        setEnrollment(answer.session);
        setHint(answer.frame.problem);
        if (answer.session.status !== 'capturing') break;
      }
    } catch (err) {
      setError(errorText(err));
    } finally {
      running.current = false;
    }
  };

  const start = async (): Promise<void> => {
    setError(null);
    try {
      const e = await api.post<Enrollment>('/api/v1/enrollments', { mode: 'scan', personId });
      setEnrollment(e);
      void capture(e.id);
    } catch (err) {
      setError(errorText(err));
    }
  };

  const finish = async (): Promise<void> => {
    running.current = false;
    if (!enrollment) return;
    try {
      setError(null);
      setEnrollment(await api.post<Enrollment>(`/api/v1/enrollments/${enrollment.id}/complete`));
    } catch (err) {
      setError(errorText(err));
      // Not enough directions yet: the scan goes on, the person keeps turning.
      if (err instanceof ApiError && err.code === 'insufficient_coverage') void capture(enrollment.id);
    }
  };

  const cancel = async (): Promise<void> => {
    running.current = false;
    if (enrollment?.status === 'capturing') await api.del(`/api/v1/enrollments/${enrollment.id}`).catch(() => {});
    onClose();
  };

  const done = enrollment && enrollment.status !== 'capturing';
  return (
    <Modal title="Scan enrollment" onClose={() => void cancel()}>
      <p>Press start, then slowly turn your head in a circle (left, up, right, down) until the bar is full.</p>
      <Webcam onReady={(g) => (grab.current = g)} />
      {enrollment && (
        <>
          <div class="progress" role="progressbar" aria-valuenow={Math.round(enrollment.progress)} aria-valuemin={0} aria-valuemax={100} aria-label="Coverage">
            <div style={{ width: `${enrollment.progress}%` }} />
          </div>
          <p>
            {enrollment.coverage ? `${enrollment.coverage.coveredBins} of ${enrollment.coverage.totalBins} directions covered` : `${Math.round(enrollment.progress)}%`} ·{' '}
            {enrollment.framesReceived} frames {hint && hint !== 'ready' ? `· ${hint.replace(/_/g, ' ')}` : ''}
          </p>
          {enrollment.status === 'complete' && <p class="notice">Enrolled: {enrollment.templates.length} templates saved.</p>}
          {enrollment.failure && <p class="error">Failed: {enrollment.failure.message} ({enrollment.failure.reason})</p>}
        </>
      )}
      <ErrorLine error={error} />
      <div class="buttons">
        {!enrollment && (
          <button type="button" class="primary" onClick={() => void start()}>
            Start
          </button>
        )}
        {enrollment && !done && (
          <button type="button" class="primary" onClick={() => void finish()}>
            Finish and save
          </button>
        )}
        <button type="button" onClick={() => (done ? onClose() : void cancel())}>
          {done ? 'Close' : 'Cancel'}
        </button>
      </div>
    </Modal>
  );
}
