import { z } from 'zod';

/**
 * The one map of real-time events: name → payload schema. Everything else derives from it — the
 * bus's types (`FacegateEvents`), the runtime check at emit, and the WebSocket protocol document
 * (docs/events.md, `GET /api/v1/events/schema`). Names and payload fields follow seed 000, so a
 * frontend written for it keeps working; each payload carries a human-readable `message`.
 *
 * Every event travels in one envelope (`FacegateEvent`): seed 000's `{type, data}` plus a cursor
 * id, the camera, the track and the time.
 */

const message = (fallback: string) => z.string().default(fallback).describe('Human-readable text for the UI.');
const similarity = z.number().min(-1).max(1);

/** What the server knows about one camera right now (seed 000's SystemState, per camera). */
export const cameraStateSchema = z.object({
  camera_id: z.string(),
  current_event: z.string().nullable().describe('Type of the last state-changing event; null before any.'),
  person_in_detection_area: z.boolean(),
  person_data: z
    .object({
      track_id: z.string().nullable(),
      person_id: z.string().nullable(),
      name: z.string().nullable(),
      confidence: z.number().nullable(),
      is_unknown: z.boolean(),
    })
    .nullable()
    .describe('The person the last recognition event was about; null when nobody is there.'),
  waiting_for_user_response: z.boolean().describe('An unknown track was offered registration and no decision came yet.'),
  waiting_track_id: z.string().nullable().describe('The track a registration decision applies to, while waiting.'),
  registration_in_progress: z.boolean(),
  registration_track_id: z.string().nullable(),
  current_registration_angle: z.string().nullable(),
  registration_progress: z.number().min(0).max(100).describe('Percent of the guided capture done.'),
  updated_at: z.number().nullable().describe('Epoch ms of the last event folded in.'),
});
export type CameraState = z.infer<typeof cameraStateSchema>;

/** Event name → payload schema. Add an event here and it is typed, checked and documented. */
export const EVENT_SCHEMAS = {
  connected: z
    .object({
      message: message('Connected to Facegate'),
      system_ready: z.boolean().default(true),
      current_event: z.string().nullable().describe('The last event of the only camera asked for, else null.'),
      cameras: z.array(cameraStateSchema).describe('State of every camera the client subscribed to (all when unfiltered).'),
      cursor: z.number().int().describe('The newest event id at connect time: poll `GET /api/v1/events?after=cursor` to resume.'),
    })
    .describe('Sent once to each new WebSocket client, first, with the current state. Not broadcast, not stored.'),
  system_ready: z
    .object({ message: message('System ready - waiting for next person') })
    .describe('A camera (or all, camera_id "*") went back to its idle state, for example after `POST /api/v1/system/reset`.'),
  person_recognized: z
    .object({
      person_id: z.string(),
      name: z.string(),
      external_id: z.string().nullable().describe('The id the person has in another system (student number, badge).'),
      confidence: similarity.describe('Similarity of the identity decision.'),
      margin: similarity.optional().describe('Gap to the next-best person, when there was one.'),
      message: message('Welcome back'),
    })
    .describe('A track was identified as an enrolled person (once per track, again if its identity changes).'),
  unknown_person_detected: z
    .object({
      message: message('Unknown person detected'),
      confidence: similarity.nullable().describe('Best similarity found in the gallery; null when nothing was compared.'),
      reason: z.string().describe('Why nobody was named: below_threshold, ambiguous, spoof_suspected, low_quality, no_gallery …'),
      show_registration_dialog: z.boolean().describe('True once the unknown track has been stable long enough to offer registration.'),
      action_required: z.boolean().describe('True when the server waits for a `registration_decision` for this track.'),
    })
    .describe('A track stayed unidentified; with show_registration_dialog the client should ask "register?".'),
  person_left_area: z
    .object({
      message: message('Person left detection area'),
      show_waiting_message: z.boolean().default(true),
      person_id: z.string().nullable().optional().describe('Who left, when the track had been identified.'),
    })
    .describe('A track was not seen for the configured absence time.'),
  registration_start: z
    .object({
      message: message('Registration starting - please follow the instructions'),
      show_instruction_panel: z.boolean().default(true),
    })
    .describe('Guided capture of a new person begins on this camera/track.'),
  registration_angle_instruction: z
    .object({
      angle_name: z.string().describe('front, left, right, up, down …'),
      instruction: z.string().describe('What to do, e.g. "Turn your head slightly left".'),
      angle_number: z.number().int().min(1),
      total_angles: z.number().int().min(1),
      progress: z.number().min(0).max(100),
      pose_error: z
        .object({ yaw: z.number(), pitch: z.number() })
        .describe('Current pose minus the target pose, in degrees (sign convention of src/domain/types.ts HeadPose).'),
      message: message('Please follow the instruction'),
    })
    .describe('Guidance for the next pose; repeated as the pose error changes.'),
  registration_angle_complete: z
    .object({
      angle_name: z.string(),
      progress: z.number().min(0).max(100),
      message: message('Angle captured successfully'),
    })
    .describe('One pose was captured.'),
  registration_complete: z
    .object({
      person_id: z.string(),
      name: z.string().nullable().optional(),
      success: z.literal(true).default(true),
      show_success_message: z.boolean().default(true),
      message: message('Registration complete'),
    })
    .describe('The new person is enrolled.'),
  registration_failed: z
    .object({
      message: message('Registration failed'),
      reason: z.string().describe('duplicate, timeout, left_area, person_changed, inconsistent, planar_spoof, cancelled …'),
      duplicate_of: z.string().optional().describe('reason duplicate: the person the face already belongs to.'),
      show_error_message: z.boolean().default(true),
    })
    .describe('Guided capture ended without enrolling anyone.'),
  registration_approved: z
    .object({ message: message('Registration approved - starting capture process...') })
    .describe('Someone answered "register" for the waiting track (WebSocket message or `POST /api/v1/decisions`).'),
  registration_cancelled: z
    .object({ message: message('Registration cancelled by user') })
    .describe('Someone answered "do not register" for the waiting track; the track is not asked again.'),
  attendance_checked_in: z
    .object({
      person_id: z.string(),
      name: z.string(),
      at: z.string().describe('Check-in time, ISO 8601.'),
      camera: z.string(),
      session_id: z.string().nullable().optional(),
      record_id: z.string().optional().describe('The check-in (GET /api/v1/attendance/logs).'),
      external_id: z.string().nullable().optional().describe('Employee code, roll number.'),
      day: z.string().optional().describe('Attendance day YYYY-MM-DD in attendance.timeZone.'),
      late: z.boolean().optional().describe('After attendance.startTime plus the grace minutes.'),
      minutes_late: z.number().int().optional(),
      method: z.enum(['recognition', 'manual']).optional(),
      confidence: similarity.nullable().optional().describe('Similarity of the identity decision; null for a manual mark.'),
      message: message('Checked in'),
    })
    .describe('A person was checked in (once per day, or once per recognition session).'),
} as const;

export type FacegateEventName = keyof typeof EVENT_SCHEMAS;
export const EVENT_NAMES = Object.keys(EVENT_SCHEMAS) as FacegateEventName[];

/** Event name → payload as clients receive it (defaults filled in). */
export type FacegateEvents = { [K in FacegateEventName]: z.output<(typeof EVENT_SCHEMAS)[K]> };

/** Event name → payload as an emitter writes it (fields with defaults may be left out). */
export type FacegateEventInputs = { [K in FacegateEventName]: z.input<(typeof EVENT_SCHEMAS)[K]> };

/** The envelope every event travels in, over WebSocket, polling, webhooks and MQTT. */
export interface FacegateEvent<K extends FacegateEventName = FacegateEventName> {
  /** Cursor: increasing in emit order, unique per server (`connected` carries the current one). */
  id: number;
  type: K;
  /** The camera the event is about; "*" for events about every camera. */
  camera_id: string;
  track_id: string | null;
  /** When the event was emitted, epoch ms. */
  timestamp: number;
  data: FacegateEvents[K];
}

/** Any one event, discriminated by `type`. */
export type AnyFacegateEvent = { [K in FacegateEventName]: FacegateEvent<K> }[FacegateEventName];

/** What emit takes: the payload plus the camera and track it is about. */
export type EmitInput<K extends FacegateEventName> = FacegateEventInputs[K] & { camera_id: string; track_id?: string | null };

export const ALL_CAMERAS = '*';

export const envelopeSchema = z.object({
  id: z.number().int().describe('Cursor, increasing in emit order.'),
  type: z.enum(EVENT_NAMES as [FacegateEventName, ...FacegateEventName[]]),
  camera_id: z.string().describe('The camera; "*" for events about every camera.'),
  track_id: z.string().nullable(),
  timestamp: z.number().describe('Epoch ms.'),
  data: z.record(z.string(), z.unknown()).describe('The payload of `type`, see below.'),
});

/** Messages a WebSocket client may send. */
export const CLIENT_MESSAGE_SCHEMAS = {
  registration_decision: z
    .strictObject({
      register: z.boolean(),
      camera_id: z.string().min(1).optional().describe('Needed when the socket is not scoped to one camera.'),
      track_id: z.string().min(1).optional().describe('Defaults to the track the camera is waiting about.'),
    })
    .describe('Answer to unknown_person_detected with action_required. Same as `POST /api/v1/decisions`.'),
  registration_cancel: z
    .strictObject({
      camera_id: z.string().min(1).optional().describe('Needed when the socket is not scoped to one camera and several cameras enroll.'),
    })
    .describe('Cancels the guided capture under way on the camera (registration_failed with reason "cancelled" follows). Same as `DELETE /api/v1/enrollments/{id}`.'),
} as const;
export type ClientMessageName = keyof typeof CLIENT_MESSAGE_SCHEMAS;

/** The server's answer to a client message it cannot act on; the socket stays open. */
export const errorMessageSchema = z.object({
  type: z.literal('error'),
  data: z.object({ message: z.string(), code: z.string().optional() }),
});
export type ErrorMessage = z.infer<typeof errorMessageSchema>;

/** Checks and completes a payload (defaults filled in); throws a ZodError on a malformed one. */
export function parsePayload<K extends FacegateEventName>(type: K, payload: unknown): FacegateEvents[K] {
  return EVENT_SCHEMAS[type].parse(payload) as FacegateEvents[K];
}

export function isEventName(name: string): name is FacegateEventName {
  return Object.hasOwn(EVENT_SCHEMAS, name);
}
