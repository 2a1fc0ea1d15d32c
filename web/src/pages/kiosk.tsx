import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, wsUrl, type FacegateEvent, type Session } from '../api.ts';
import { grabJpeg, isCameraProblem, openCamera } from '../camera.ts';
import { useEventSocket } from '../events-socket.ts';
import { PoseRing } from '../pose-ring.tsx';

/*
 * The camera screen (seed 000's kiosk): streams webcam frames to /api/v1/stream, draws each face
 * with its name or "unknown", greets people, asks an unknown person whether to register, and
 * guides the registration. Everything it shows comes from the server's results and events.
 */

interface ResultFace {
  track_id: string;
  name: string | null;
  is_unknown: boolean;
  confidence: number;
  bbox: [number, number, number, number];
}

interface RecognitionResult {
  type: 'recognition_result';
  faces: ResultFace[];
  width: number;
  height: number;
}

type Mode =
  | { kind: 'waiting' }
  | { kind: 'welcome'; name: string; message: string }
  | { kind: 'unknown'; message: string }
  | { kind: 'ask'; trackId: string | null; message: string }
  | { kind: 'guided'; message: string }
  | { kind: 'success'; message: string; personId: string }
  | { kind: 'failed'; message: string; reason: string }
  | { kind: 'cancelled'; message: string };

export interface Guidance {
  angles: string[];
  done: string[];
  current: string | null;
  instruction: string;
  progress: number;
  error: { yaw: number; pitch: number } | null;
}

const EMPTY_GUIDANCE: Guidance = { angles: [], done: [], current: null, instruction: '', progress: 0, error: null };
/** Frames are sent one at a time (the next after the last result), and at most this often. */
const MIN_FRAME_INTERVAL_MS = 100;
/** A result that does not come within this long no longer holds back the next frame. */
const RESULT_TIMEOUT_MS = 2000;
/** How long a greeting or an outcome stays before the screen goes back to waiting. */
const MESSAGE_HOLD_MS = 6000;
const DEFAULT_ANGLES = ['front', 'left', 'right', 'up', 'down'];

function cameraIdFromUrl(): string {
  const fromUrl = new URLSearchParams(location.search).get('camera');
  if (fromUrl) localStorage.setItem('facegate.kioskCamera', fromUrl);
  return fromUrl ?? localStorage.getItem('facegate.kioskCamera') ?? 'kiosk';
}

export function KioskPage({ session }: { session: Session }) {
  const cameraId = cameraIdFromUrl();
  const videoRef = useRef<HTMLVideoElement>(null);
  const grabRef = useRef<HTMLCanvasElement>(null);
  const [cameraError, setCameraError] = useState<string | null>(null);
  const [streamState, setStreamState] = useState<'starting' | 'streaming' | 'reconnecting'>('starting');
  const [result, setResult] = useState<RecognitionResult | null>(null);
  const [mode, setMode] = useState<Mode>({ kind: 'waiting' });
  const [guidance, setGuidance] = useState<Guidance>(EMPTY_GUIDANCE);
  const [checkedIn, setCheckedIn] = useState<string | null>(null);
  const holdTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const holdThenWait = (): void => {
    clearTimeout(holdTimer.current);
    holdTimer.current = setTimeout(() => {
      setMode({ kind: 'waiting' });
      setCheckedIn(null);
    }, MESSAGE_HOLD_MS);
  };

  // Camera + frame stream.
  useEffect(() => {
    let stopped = false;
    let media: MediaStream | null = null;
    let ws: WebSocket | null = null;
    let inFlightSince = 0;
    let lastSentMs = 0;
    let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
    let pump: ReturnType<typeof setInterval> | undefined;

    const connect = (): void => {
      ws = new WebSocket(wsUrl(`/api/v1/stream?camera=${encodeURIComponent(cameraId)}`));
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        inFlightSince = 0;
        setStreamState('streaming');
      };
      ws.onmessage = (msg) => {
        const data = JSON.parse(String(msg.data)) as { type: string };
        if (data.type === 'recognition_result') {
          inFlightSince = 0;
          setResult(data as RecognitionResult);
        }
      };
      ws.onclose = () => {
        if (stopped) return;
        setStreamState('reconnecting');
        reconnectTimer = setTimeout(connect, 1500);
      };
    };

    const sendFrame = async (): Promise<void> => {
      const now = Date.now();
      if (!ws || ws.readyState !== WebSocket.OPEN || !videoRef.current || !grabRef.current) return;
      if (inFlightSince && now - inFlightSince < RESULT_TIMEOUT_MS) return;
      if (now - lastSentMs < MIN_FRAME_INTERVAL_MS) return;
      inFlightSince = now;
      lastSentMs = now;
      const jpeg = await grabJpeg(videoRef.current, grabRef.current);
      if (!jpeg || !ws || ws.readyState !== WebSocket.OPEN) {
        inFlightSince = 0;
        return;
      }
      ws.send(await jpeg.arrayBuffer());
    };

    openCamera()
      .then((stream) => {
        if (stopped) return stream.getTracks().forEach((t) => t.stop());
        media = stream;
        const video = videoRef.current!;
        video.srcObject = stream;
        void video.play().catch(() => {});
        connect();
        pump = setInterval(() => void sendFrame(), 50);
      })
      .catch((err: unknown) => setCameraError(isCameraProblem(err) ? err.message : String(err)));

    return () => {
      stopped = true;
      clearInterval(pump);
      clearTimeout(reconnectTimer);
      ws?.close();
      media?.getTracks().forEach((t) => t.stop());
    };
  }, [cameraId]);

  // What the server says about this camera.
  const onEvent = (event: FacegateEvent): void => {
    const d = event.data ?? {};
    const message = typeof d.message === 'string' ? d.message : '';
    switch (event.type) {
      case 'connected': {
        const cam = (d.cameras as { camera_id: string; waiting_for_user_response: boolean; waiting_track_id: string | null; registration_in_progress: boolean }[] | undefined)?.find(
          (c) => c.camera_id === cameraId,
        );
        if (cam?.waiting_for_user_response) setMode({ kind: 'ask', trackId: cam.waiting_track_id, message: 'Unknown person detected' });
        else if (cam?.registration_in_progress) setMode({ kind: 'guided', message: 'Registration in progress' });
        return;
      }
      case 'person_recognized':
        setMode((m) => (m.kind === 'guided' || m.kind === 'ask' ? m : { kind: 'welcome', name: String(d.name ?? ''), message: message || `Welcome back, ${String(d.name)}` }));
        holdThenWait();
        return;
      case 'attendance_checked_in':
        setCheckedIn(`Checked in at ${new Date(String(d.at)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`);
        return;
      case 'unknown_person_detected':
        if (d.show_registration_dialog && d.action_required) {
          clearTimeout(holdTimer.current);
          setMode({ kind: 'ask', trackId: event.track_id, message: message || 'Unknown person detected' });
        } else setMode((m) => (m.kind === 'waiting' ? { kind: 'unknown', message: message || 'Unknown person' } : m));
        return;
      case 'registration_approved':
      case 'registration_start':
        clearTimeout(holdTimer.current);
        setGuidance(EMPTY_GUIDANCE);
        setMode({ kind: 'guided', message: message || 'Registration starting - please follow the instructions' });
        return;
      case 'registration_angle_instruction':
        setMode((m) => (m.kind === 'guided' ? m : { kind: 'guided', message: '' }));
        setGuidance((g) => {
          const total = Number(d.total_angles) || DEFAULT_ANGLES.length;
          const name = String(d.angle_name);
          const angles = g.angles.length === total ? [...g.angles] : (total === DEFAULT_ANGLES.length ? [...DEFAULT_ANGLES] : Array.from({ length: total }, (_, i) => g.angles[i] ?? `pose ${i + 1}`));
          const index = Math.max(0, Math.min(total - 1, Number(d.angle_number) - 1));
          angles[index] = name;
          const err = d.pose_error as { yaw: number; pitch: number } | undefined;
          return { ...g, angles, current: name, instruction: String(d.instruction ?? message), progress: Number(d.progress) || 0, error: err ?? null };
        });
        return;
      case 'registration_angle_complete':
        setGuidance((g) => ({ ...g, done: g.done.includes(String(d.angle_name)) ? g.done : [...g.done, String(d.angle_name)], progress: Number(d.progress) || g.progress, error: null }));
        return;
      case 'registration_complete':
        setGuidance((g) => ({ ...g, progress: 100, done: g.angles }));
        setMode({ kind: 'success', message: message || 'Registration complete', personId: String(d.person_id) });
        holdThenWait();
        return;
      case 'registration_failed':
        setMode({ kind: 'failed', message: message || 'Registration failed', reason: String(d.reason ?? 'unknown') });
        holdThenWait();
        return;
      case 'registration_cancelled':
        setMode({ kind: 'cancelled', message: message || 'Registration cancelled' });
        holdThenWait();
        return;
      case 'person_left_area':
      case 'system_ready':
        setMode((m) => (m.kind === 'guided' || m.kind === 'success' || m.kind === 'failed' ? m : { kind: 'waiting' }));
        return;
    }
  };
  const events = useEventSocket(`camera=${encodeURIComponent(cameraId)}`, onEvent);

  const decide = (register: boolean): void => {
    if (mode.kind !== 'ask') return;
    events.send({ type: 'registration_decision', data: { register, camera_id: cameraId, ...(mode.trackId ? { track_id: mode.trackId } : {}) } });
    if (!register) {
      setMode({ kind: 'cancelled', message: 'Registration cancelled' });
      holdThenWait();
    }
  };

  const faces = result?.faces ?? [];
  return (
    <main class="kiosk" aria-label="Kiosk">
      <section class="stage" aria-label="Camera">
        {cameraError ? (
          <div class="camera-problem" role="alert">
            <h2>Camera unavailable</h2>
            <p>{cameraError}</p>
          </div>
        ) : (
          <div class="video-box">
            <video ref={videoRef} muted playsInline autoPlay class="mirror" aria-label="Live camera" />
            <FaceBoxes faces={faces} width={result?.width ?? 0} height={result?.height ?? 0} />
            {mode.kind === 'guided' && <PoseRing guidance={guidance} style={ringAround(faces, result?.width ?? 0, result?.height ?? 0)} />}
          </div>
        )}
        <canvas ref={grabRef} style={{ display: 'none' }} />
      </section>
      <section class="panel" aria-live="polite">
        {cameraError ? (
          <div class="message">
            <h1>This kiosk needs a camera</h1>
            <p>Recognition, greetings and registration start as soon as a camera works here.</p>
          </div>
        ) : (
          <KioskMessage mode={mode} guidance={guidance} checkedIn={checkedIn} faceCount={faces.length} onDecide={decide} />
        )}
        {mode.kind === 'success' && session.level === 'admin' && <NameForm personId={mode.personId} onSaved={holdThenWait} onEditing={() => clearTimeout(holdTimer.current)} />}
        <p class="status-line">
          Camera <code>{cameraId}</code> · stream {streamState} · events {events.state}
        </p>
      </section>
    </main>
  );
}

/** Where the pose ring goes: around the largest face (on the mirrored video), else the middle of the picture. */
function ringAround(faces: ResultFace[], width: number, height: number): Record<string, string> | undefined {
  if (!width || !height || faces.length === 0) return undefined;
  const [x, y, w, h] = faces.reduce((a, b) => (b.bbox[2] * b.bbox[3] > a.bbox[2] * a.bbox[3] ? b : a)).bbox;
  const side = Math.max(w, h) * 1.7;
  const cx = width - x - w / 2;
  const cy = y + h / 2;
  return {
    // Only left/top place it (an `inset` here would reset them).
    right: 'auto',
    bottom: 'auto',
    left: `${((cx - side / 2) / width) * 100}%`,
    top: `${((cy - side / 2) / height) * 100}%`,
    width: `${(side / width) * 100}%`,
    height: `${(side / height) * 100}%`,
    margin: '0',
  };
}

function FaceBoxes({ faces, width, height }: { faces: ResultFace[]; width: number; height: number }) {
  if (!width || !height) return null;
  return (
    <div class="boxes" aria-hidden="true">
      {faces.map((f) => {
        const [x, y, w, h] = f.bbox;
        // The video is mirrored (people expect a mirror), so boxes are too; their labels are not.
        const style = { left: `${((width - x - w) / width) * 100}%`, top: `${(y / height) * 100}%`, width: `${(w / width) * 100}%`, height: `${(h / height) * 100}%` };
        return (
          <div key={f.track_id} class={f.is_unknown ? 'box unknown' : 'box known'} style={style}>
            <span class="box-label" data-testid="face-label">{f.is_unknown ? 'unknown' : f.name}</span>
          </div>
        );
      })}
    </div>
  );
}

function KioskMessage({ mode, guidance, checkedIn, faceCount, onDecide }: { mode: Mode; guidance: Guidance; checkedIn: string | null; faceCount: number; onDecide: (register: boolean) => void }) {
  const yesRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (mode.kind !== 'ask') return;
    yesRef.current?.focus();
    const onKey = (e: KeyboardEvent): void => {
      if (e.key === 'y' || e.key === 'Y') onDecide(true);
      if (e.key === 'n' || e.key === 'N' || e.key === 'Escape') onDecide(false);
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [mode]);

  switch (mode.kind) {
    case 'waiting':
      return (
        <div class="message waiting">
          <h1>{faceCount > 0 ? 'Hold still…' : 'Waiting for next person'}</h1>
          <p>{faceCount > 0 ? 'Looking you up.' : 'Step in front of the camera and look at the screen.'}</p>
        </div>
      );
    case 'welcome':
      return (
        <div class="message welcome">
          <h1 data-testid="welcome">Welcome back, {mode.name}</h1>
          {checkedIn && <p class="checked-in">{checkedIn}</p>}
        </div>
      );
    case 'unknown':
      return (
        <div class="message">
          <h1>{mode.message}</h1>
          <p>Please hold still.</p>
        </div>
      );
    case 'ask':
      return (
        <div class="message dialog" role="dialog" aria-modal="false" aria-labelledby="ask-title" aria-describedby="ask-text">
          <h1 id="ask-title">{mode.message.includes('register') ? mode.message : `${mode.message}: would you like to register?`}</h1>
          <p id="ask-text">Registering takes under a minute: the screen shows you how to turn your head. Nothing is saved if you say no.</p>
          <div class="buttons">
            <button ref={yesRef} type="button" class="primary big" onClick={() => onDecide(true)}>
              Yes, register <kbd>Y</kbd>
            </button>
            <button type="button" class="big" onClick={() => onDecide(false)}>
              No, thanks <kbd>N</kbd>
            </button>
          </div>
        </div>
      );
    case 'guided':
      return (
        <div class="message guided">
          <h1 data-testid="instruction">{guidance.instruction || mode.message || 'Look at the camera'}</h1>
          <div class="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(guidance.progress)} aria-label="Registration progress">
            <div style={{ width: `${guidance.progress}%` }} />
          </div>
          <p>
            {guidance.done.length} of {guidance.angles.length || DEFAULT_ANGLES.length} poses captured
            {guidance.current ? ` · now: ${guidance.current}` : ''}
          </p>
        </div>
      );
    case 'success':
      return (
        <div class="message success" role="status">
          <h1>{mode.message}</h1>
          <p>You are registered. Your name and details are added here or later by an administrator.</p>
        </div>
      );
    case 'failed':
      return (
        <div class="message failed" role="alert">
          <h1>{mode.message}</h1>
          <p>Reason: {reasonText(mode.reason)}</p>
        </div>
      );
    case 'cancelled':
      return (
        <div class="message">
          <h1>{mode.message}</h1>
          <p>Nothing was saved.</p>
        </div>
      );
  }
}

/** On a kiosk signed in by an admin, the new person's details are filled in right away (else an admin does it later in People). */
function NameForm({ personId, onSaved, onEditing }: { personId: string; onSaved: () => void; onEditing: () => void }) {
  const [name, setName] = useState('');
  const [externalId, setExternalId] = useState('');
  const [saved, setSaved] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    try {
      await api.patch(`/api/v1/people/${personId}`, { name: name.trim(), ...(externalId.trim() ? { externalId: externalId.trim() } : {}) });
      setSaved(true);
      onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };
  if (saved) return <p class="notice">Saved: {name}</p>;
  return (
    <form class="form message" onSubmit={(e) => void save(e)} onFocusCapture={onEditing}>
      <label>
        Name
        <input required maxLength={200} value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Employee code (optional)
        <input maxLength={200} value={externalId} onInput={(e) => setExternalId(e.currentTarget.value)} />
      </label>
      {error && <p class="error">{error}</p>}
      <button type="submit" class="primary">
        Save details
      </button>
    </form>
  );
}

function reasonText(reason: string): string {
  const texts: Record<string, string> = {
    duplicate: 'this face is already registered',
    timeout: 'it took too long',
    left_area: 'you left the camera’s view',
    low_quality: 'the pictures were not sharp or bright enough',
    cancelled: 'it was cancelled',
    spoof_suspected: 'the camera did not see a live face',
    person_changed: 'a different person appeared',
  };
  return texts[reason] ?? reason;
}
