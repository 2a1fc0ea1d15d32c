import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/domain/errors.ts';
import { DecisionRegistry, type RegistrationDecision } from '../../src/events/decisions.ts';
import { EventBus } from '../../src/events/event-bus.ts';
import type { AnyFacegateEvent } from '../../src/events/event-map.ts';
import { SystemState } from '../../src/events/system-state.ts';

function setup() {
  let now = 5000;
  const bus = new EventBus({ now: () => now++ });
  const state = new SystemState();
  bus.subscribe((e) => state.apply(e));
  const decisions = new DecisionRegistry(bus, state, (err) => {
    throw err;
  });
  return { bus, state, decisions };
}

const unknown = (camera: string, track: string, dialog = true) =>
  ({ camera_id: camera, track_id: track, confidence: 0.2, reason: 'below_threshold', show_registration_dialog: dialog, action_required: dialog }) as const;

describe('SystemState', () => {
  it('starts idle for any camera', () => {
    const { state } = setup();
    expect(state.get('door')).toEqual({
      camera_id: 'door',
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
    });
    expect(state.list()).toEqual([]);
    expect(state.list(['b', 'a']).map((s) => s.camera_id)).toEqual(['a', 'b']);
  });

  it('folds a recognition, an unknown that waits for a decision, and departures, per camera', () => {
    const { bus, state } = setup();
    bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: 'S1', confidence: 0.8 });
    bus.emit('unknown_person_detected', unknown('door', 't2'));
    bus.emit('person_recognized', { camera_id: 'hall', track_id: 't9', person_id: 'p2', name: 'Bo', external_id: null, confidence: 0.6 });

    const door = state.get('door');
    expect(door).toMatchObject({
      current_event: 'unknown_person_detected',
      person_in_detection_area: true,
      person_data: { track_id: 't2', person_id: null, is_unknown: true, confidence: 0.2 },
      waiting_for_user_response: true,
      waiting_track_id: 't2',
    });
    expect(state.waitingTrack('door')).toBe('t2');
    expect(state.camerasWaiting()).toEqual(['door']);
    expect(state.get('hall')).toMatchObject({ person_in_detection_area: true, waiting_for_user_response: false, person_data: { name: 'Bo' } });

    // Ada leaves: someone (the unknown) is still there, and the wait goes on.
    bus.emit('person_left_area', { camera_id: 'door', track_id: 't1', person_id: 'p1' });
    expect(state.get('door')).toMatchObject({ person_in_detection_area: true, waiting_track_id: 't2', person_data: { track_id: 't2' } });
    // The unknown leaves: nobody there, nothing to decide.
    bus.emit('person_left_area', { camera_id: 'door', track_id: 't2' });
    expect(state.get('door')).toMatchObject({ person_in_detection_area: false, waiting_for_user_response: false, waiting_track_id: null, person_data: null });
    expect(state.get('hall').person_in_detection_area).toBe(true);
  });

  it('an unknown without the dialog does not wait; a waiting track that gets recognised stops waiting', () => {
    const { bus, state } = setup();
    bus.emit('unknown_person_detected', unknown('door', 't1', false));
    expect(state.get('door').waiting_for_user_response).toBe(false);
    bus.emit('unknown_person_detected', unknown('door', 't1'));
    expect(state.waitingTrack('door')).toBe('t1');
    bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.7 });
    expect(state.waitingTrack('door')).toBeNull();
  });

  it('follows a registration from approval to completion, and a failure', () => {
    const { bus, state } = setup();
    bus.emit('unknown_person_detected', unknown('door', 't1'));
    bus.emit('registration_approved', { camera_id: 'door', track_id: 't1' });
    expect(state.get('door')).toMatchObject({ registration_in_progress: true, registration_track_id: 't1', waiting_for_user_response: false });
    bus.emit('registration_start', { camera_id: 'door', track_id: 't1' });
    bus.emit('registration_angle_instruction', {
      camera_id: 'door',
      track_id: 't1',
      angle_name: 'left',
      instruction: 'Turn your head slightly left',
      angle_number: 2,
      total_angles: 5,
      progress: 40,
      pose_error: { yaw: -12, pitch: 3 },
    });
    expect(state.get('door')).toMatchObject({ current_registration_angle: 'left', registration_progress: 40, current_event: 'registration_angle_instruction' });
    bus.emit('registration_angle_complete', { camera_id: 'door', track_id: 't1', angle_name: 'left', progress: 60 });
    expect(state.get('door').registration_progress).toBe(60);
    bus.emit('registration_complete', { camera_id: 'door', track_id: 't1', person_id: 'p9' });
    expect(state.get('door')).toMatchObject({ registration_in_progress: false, registration_progress: 100, current_registration_angle: null, registration_track_id: null });

    bus.emit('registration_start', { camera_id: 'hall', track_id: 't5' });
    bus.emit('registration_failed', { camera_id: 'hall', track_id: 't5', reason: 'duplicate' });
    expect(state.get('hall')).toMatchObject({ registration_in_progress: false, current_event: 'registration_failed' });
  });

  it('system_ready resets one camera, or every camera when sent for "*"', () => {
    const { bus, state } = setup();
    bus.emit('unknown_person_detected', unknown('door', 't1'));
    bus.emit('unknown_person_detected', unknown('hall', 't2'));
    bus.emit('system_ready', { camera_id: 'door' });
    expect(state.get('door')).toMatchObject({ current_event: 'system_ready', waiting_for_user_response: false, person_in_detection_area: false });
    expect(state.get('hall').waiting_for_user_response).toBe(true);
    bus.emit('system_ready', { camera_id: '*' });
    expect(state.get('hall')).toMatchObject({ current_event: 'system_ready', waiting_for_user_response: false, person_in_detection_area: false });
    // A person still there is counted again from the next event, not remembered across the reset.
    bus.emit('person_left_area', { camera_id: 'hall', track_id: 't2' });
    expect(state.get('hall').person_in_detection_area).toBe(false);
  });

  it('hands out copies: callers cannot change the state', () => {
    const { bus, state } = setup();
    bus.emit('person_recognized', { camera_id: 'door', track_id: 't1', person_id: 'p1', name: 'Ada', external_id: null, confidence: 0.7 });
    const copy = state.get('door');
    copy.person_in_detection_area = false;
    copy.person_data!.name = 'Mallory';
    expect(state.get('door')).toMatchObject({ person_in_detection_area: true, person_data: { name: 'Ada' } });
  });
});

describe('DecisionRegistry', () => {
  it('approves the waiting track: emits registration_approved for that camera and track, then calls the handlers', () => {
    const { bus, state, decisions } = setup();
    const events: AnyFacegateEvent[] = [];
    bus.subscribe((e) => events.push(e));
    const handled: Array<RegistrationDecision & { waitingThen: boolean }> = [];
    decisions.register({ onDecision: (d) => void handled.push({ ...d, waitingThen: state.get(d.cameraId).waiting_for_user_response }) });

    bus.emit('unknown_person_detected', unknown('door', 't7'));
    expect(decisions.decide({ cameraId: 'door', register: true })).toEqual({ cameraId: 'door', trackId: 't7', register: true });

    expect(events.at(-1)).toMatchObject({ type: 'registration_approved', camera_id: 'door', track_id: 't7' });
    // Handlers run after the event: the wait is over when they look.
    expect(handled).toEqual([{ cameraId: 'door', trackId: 't7', register: true, waitingThen: false }]);
    // A second answer finds nobody waiting.
    expect(() => decisions.decide({ cameraId: 'door', register: false })).toThrow(/not waiting/);
  });

  it('cancels; finds the camera when only one waits; refuses wrong tracks, idle cameras and ambiguity', () => {
    const { bus, decisions } = setup();
    const codeOf = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        return err instanceof AppError ? `${err.status} ${err.code}` : String(err);
      }
      return 'ok';
    };
    expect(codeOf(() => decisions.decide({ register: true }))).toBe('409 not_waiting');
    expect(codeOf(() => decisions.decide({ cameraId: 'door', register: true }))).toBe('409 not_waiting');

    bus.emit('unknown_person_detected', unknown('door', 't1'));
    expect(codeOf(() => decisions.decide({ cameraId: 'door', trackId: 't2', register: true }))).toBe('409 not_waiting');
    expect(decisions.decide({ register: false })).toEqual({ cameraId: 'door', trackId: 't1', register: false });

    bus.emit('unknown_person_detected', unknown('door', 't3'));
    bus.emit('unknown_person_detected', unknown('hall', 't4'));
    expect(codeOf(() => decisions.decide({ register: true }))).toBe('400 camera_required');
    expect(decisions.decide({ cameraId: 'hall', trackId: 't4', register: true }).trackId).toBe('t4');
  });

  it('a failing handler is reported and does not stop the others or the decision', async () => {
    const bus = new EventBus();
    const state = new SystemState();
    bus.subscribe((e) => state.apply(e));
    const reported: string[] = [];
    const decisions = new DecisionRegistry(bus, state, (err) => reported.push((err as Error).message));
    const seen: string[] = [];
    decisions.register({
      onDecision: () => {
        throw new Error('sync');
      },
    });
    decisions.register({ onDecision: async () => Promise.reject(new Error('async')) });
    const unplug = decisions.register({ onDecision: (d) => void seen.push(d.trackId!) });
    bus.emit('unknown_person_detected', unknown('door', 't1'));
    decisions.decide({ cameraId: 'door', register: true });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['t1']);
    expect(reported.sort()).toEqual(['async', 'sync']);

    unplug();
    bus.emit('unknown_person_detected', unknown('door', 't2'));
    decisions.decide({ cameraId: 'door', register: true });
    expect(seen).toEqual(['t1']);
  });
});
