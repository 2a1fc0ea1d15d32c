import { ALL_CAMERAS, type AnyFacegateEvent, type CameraState } from './event-map.ts';

export type { CameraState };

interface CameraFold {
  state: CameraState;
  /** Tracks seen and not yet left: "person in area" is true while any is there. */
  present: Set<string>;
  /** A person_recognized/unknown event without a track counts as one anonymous presence. */
  anonymousPresent: boolean;
}

function idleState(cameraId: string): CameraState {
  return {
    camera_id: cameraId,
    current_event: null,
    person_in_detection_area: false,
    person_data: null,
    waiting_for_user_response: false,
    waiting_track_id: null,
    registration_in_progress: false,
    registration_track_id: null,
    current_registration_angle: null,
    registration_progress: 0,
    updated_at: null,
  };
}

/**
 * Seed 000's SystemState, per camera, folded from the events themselves: subscribe `apply` to the
 * bus and the state is always what the events said. Decisions read `waitingTrack` from it; the
 * WebSocket `connected` message and GET /api/v1/system/status show it.
 */
export class SystemState {
  private readonly cameras = new Map<string, CameraFold>();

  /** Folds one event in (the bus listener). */
  apply(event: AnyFacegateEvent): void {
    if (event.type === 'connected') return;
    if (event.camera_id === ALL_CAMERAS) {
      if (event.type === 'system_ready') {
        for (const fold of this.cameras.values()) this.resetFold(fold, event.timestamp);
      }
      return;
    }
    const fold = this.fold(event.camera_id);
    const s = fold.state;
    const track = event.track_id;
    s.current_event = event.type;
    s.updated_at = event.timestamp;
    switch (event.type) {
      case 'system_ready':
        this.resetFold(fold, event.timestamp);
        break;
      case 'person_recognized':
        this.arrive(fold, track);
        s.person_data = { track_id: track, person_id: event.data.person_id, name: event.data.name, confidence: event.data.confidence, is_unknown: false };
        // A waiting track that turned out to be someone known no longer needs an answer.
        if (track !== null && s.waiting_track_id === track) this.stopWaiting(s);
        break;
      case 'unknown_person_detected':
        this.arrive(fold, track);
        s.person_data = { track_id: track, person_id: null, name: null, confidence: event.data.confidence, is_unknown: true };
        if (event.data.action_required && event.data.show_registration_dialog) {
          s.waiting_for_user_response = true;
          s.waiting_track_id = track;
        }
        break;
      case 'person_left_area':
        if (track === null) {
          fold.present.clear();
          fold.anonymousPresent = false;
        } else fold.present.delete(track);
        s.person_in_detection_area = fold.present.size > 0 || fold.anonymousPresent;
        if (track === null || s.person_data?.track_id === track) s.person_data = null;
        if (track === null || s.waiting_track_id === track) this.stopWaiting(s);
        break;
      case 'registration_approved':
        this.stopWaiting(s);
        s.registration_in_progress = true;
        s.registration_track_id = track;
        s.registration_progress = 0;
        break;
      case 'registration_cancelled':
        this.stopWaiting(s);
        break;
      case 'registration_start':
        this.stopWaiting(s);
        s.registration_in_progress = true;
        s.registration_track_id = track;
        s.registration_progress = 0;
        s.current_registration_angle = null;
        break;
      case 'registration_angle_instruction':
        s.registration_in_progress = true;
        s.current_registration_angle = event.data.angle_name;
        s.registration_progress = event.data.progress;
        break;
      case 'registration_angle_complete':
        s.registration_progress = event.data.progress;
        break;
      case 'registration_complete':
        s.registration_in_progress = false;
        s.registration_track_id = null;
        s.current_registration_angle = null;
        s.registration_progress = 100;
        break;
      case 'registration_failed':
        s.registration_in_progress = false;
        s.registration_track_id = null;
        s.current_registration_angle = null;
        break;
      case 'attendance_checked_in':
        break;
    }
  }

  /** One camera's state (an idle state for a camera never heard of). */
  get(cameraId: string): CameraState {
    const fold = this.cameras.get(cameraId);
    return fold ? { ...fold.state, person_data: fold.state.person_data && { ...fold.state.person_data } } : idleState(cameraId);
  }

  /** Every camera that has had an event, or just the ones asked for (idle when unknown), sorted by id. */
  list(cameraIds?: readonly string[]): CameraState[] {
    const ids = cameraIds && cameraIds.length > 0 ? [...new Set(cameraIds)] : [...this.cameras.keys()];
    return ids.sort().map((id) => this.get(id));
  }

  /** The track a camera waits for a registration decision about, or null. */
  waitingTrack(cameraId: string): string | null {
    const s = this.cameras.get(cameraId)?.state;
    return s?.waiting_for_user_response ? s.waiting_track_id : null;
  }

  /** Cameras currently waiting for a decision. */
  camerasWaiting(): string[] {
    return [...this.cameras.values()].filter((f) => f.state.waiting_for_user_response).map((f) => f.state.camera_id);
  }

  private fold(cameraId: string): CameraFold {
    let fold = this.cameras.get(cameraId);
    if (!fold) {
      fold = { state: idleState(cameraId), present: new Set(), anonymousPresent: false };
      this.cameras.set(cameraId, fold);
    }
    return fold;
  }

  private arrive(fold: CameraFold, track: string | null): void {
    if (track === null) fold.anonymousPresent = true;
    else fold.present.add(track);
    fold.state.person_in_detection_area = true;
  }

  private stopWaiting(s: CameraState): void {
    s.waiting_for_user_response = false;
    s.waiting_track_id = null;
  }

  private resetFold(fold: CameraFold, at: number): void {
    fold.state = { ...idleState(fold.state.camera_id), current_event: 'system_ready', updated_at: at };
    fold.present.clear();
    fold.anonymousPresent = false;
  }
}
