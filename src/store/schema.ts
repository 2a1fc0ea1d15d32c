import type { Generated } from 'kysely';

/*
 * Row types as both dialects return them (PostgreSQL int8 is parsed to number, see database.ts):
 * text UUID ids, epoch-millisecond integer times, 0/1 integers for booleans, JSON as text,
 * embeddings and thumbnails as bytes.
 */

export interface PeopleTable {
  id: string;
  external_id: string | null;
  name: string;
  email: string | null;
  department: string | null;
  type: string | null;
  active: number;
  metadata: string;
  /** Lower-cased, accent-stripped name, external id, email and department: what search matches. */
  search_text: string;
  created_at: number;
  updated_at: number;
}

export interface FaceTemplatesTable {
  id: string;
  person_id: string;
  model_id: string;
  embedding: Buffer;
  pose_label: string | null;
  yaw_deg: number | null;
  pitch_deg: number | null;
  roll_deg: number | null;
  quality: number | null;
  source: string;
  thumbnail: Buffer | null;
  created_at: number;
}

export interface GalleryChangesTable {
  seq: Generated<number>;
  template_id: string;
  person_id: string;
  model_id: string;
  op: string;
  at: number;
}

export interface RecognitionLogTable {
  id: Generated<number>;
  at: number;
  camera_id: string;
  track_id: string | null;
  person_id: string | null;
  model_id: string | null;
  similarity: number | null;
  margin: number | null;
  quality: number | null;
  liveness: number | null;
  decision: string;
  reason: string | null;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  prefix: string;
  key_hash: string;
  /** JSON array of scope names. */
  scopes: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface SessionsTable {
  id: string;
  camera_id: string;
  label: string | null;
  /** JSON array of {ref, personId}: the roster entries given at start and whom each resolved to; null = no roster. */
  roster: string | null;
  started_at: number;
  stopped_at: number | null;
  /** 'running' | 'stopped' */
  status: string;
}

export interface SessionSightingsTable {
  session_id: string;
  person_id: string;
  first_seen: number;
  last_seen: number;
  best_confidence: number;
}

export interface EventsTable {
  /** Assigned by the server in emit order (the polling cursor). */
  id: number;
  at: number;
  type: string;
  camera_id: string;
  track_id: string | null;
  /** The payload, JSON. */
  data: string;
  /** PostgreSQL only (0007_cluster): the ring's order, taken at write time in commit order. */
  seq?: Generated<number>;
}

export interface CamerasTable {
  id: string;
  name: string;
  /** 'rtsp' | 'mjpeg' | 'v4l2' | 'file' | 'push' */
  kind: string;
  url: string | null;
  device: string | null;
  path: string | null;
  max_fps: number | null;
  enabled: number;
  loop: number;
  /** 'config' | 'api' */
  origin: string;
  created_at: number;
  updated_at: number;
  /** The node the camera is assigned to (0007_cluster); null = any node. */
  node_id: string | null;
}

export interface CameraLeasesTable {
  camera_id: string;
  node_id: string;
  /** Epoch ms of the database's clock. */
  expires_at: number;
}

export interface ClusterNodesTable {
  node_id: string;
  started_at: number;
  last_seen: number;
}

export interface AttendanceTable {
  id: string;
  person_id: string;
  /** 'YYYY-MM-DD' in the configured time zone, after the day boundary. */
  attendance_day: string;
  check_in_at: number;
  /** The last sighting of the day (= check_in_at until a later one). */
  check_out_at: number;
  minutes_late: number;
  /** 'recognition' | 'manual' */
  method: string;
  camera_id: string | null;
  session_id: string | null;
  track_id: string | null;
  similarity: number | null;
  margin: number | null;
  liveness: number | null;
  agreeing_frames: number | null;
  model_id: string | null;
  embedding: Buffer | null;
  snapshot: Buffer | null;
  note: string | null;
  marked_by: string | null;
  revoked: number;
  revoked_reason: string | null;
  revoked_by: string | null;
  revoked_at: number | null;
  created_at: number;
}

export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  actor: string;
  actor_name: string | null;
  ip: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  /** JSON object; never images or secrets. */
  details: string;
}

export interface Database {
  people: PeopleTable;
  face_templates: FaceTemplatesTable;
  gallery_changes: GalleryChangesTable;
  recognition_log: RecognitionLogTable;
  api_keys: ApiKeysTable;
  cameras: CamerasTable;
  events: EventsTable;
  sessions: SessionsTable;
  session_sightings: SessionSightingsTable;
  attendance: AttendanceTable;
  audit_log: AuditLogTable;
  camera_leases: CameraLeasesTable;
  cluster_nodes: ClusterNodesTable;
  users: UsersTable;
  login_sessions: LoginSessionsTable;
}

export type Dialect = 'sqlite' | 'postgres';

export interface UsersTable {
  id: string;
  name: string;
  /** scrypt$N$r$p$salt$hash (base64), see services/password.ts. */
  password_hash: string;
  /** 'admin' | 'operator' */
  role: string;
  failed_logins: number;
  locked_until: number | null;
  created_at: number;
  last_login_at: number | null;
}

export interface LoginSessionsTable {
  /** SHA-256 (hex) of the cookie token. */
  token_hash: string;
  user_id: string | null;
  api_key_id: string | null;
  csrf_token: string;
  created_at: number;
  expires_at: number;
}
