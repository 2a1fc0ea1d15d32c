/** The store's public surface: open, migrate, the repositories' record types and errors. */
export { openDatabase, sqliteFilePath, type Repositories, type Store, type StoreConfig, type StoreOptions } from './database.ts';
export { migrateToLatest, migrationStatus, MigrationError, type MigrationStatus } from './migrate.ts';
export { DuplicateExternalIdError, PersonNotFoundError } from './errors.ts';
export { generateApiKey, hashApiKey, API_KEY_PREFIX_LENGTH } from './api-key-secret.ts';
export { bytesToEmbedding, embeddingToBytes } from './embedding-bytes.ts';
export type { PeopleRepository } from './people.repository.ts';
export type { TemplatesRepository } from './templates.repository.ts';
export type { RecognitionLogRepository } from './recognition-log.repository.ts';
export type { ApiKeysRepository } from './api-keys.repository.ts';
export type { GalleryChangesRepository } from './gallery-changes.repository.ts';
export type { CamerasRepository, CameraRecord, CameraOrigin, NewCamera } from './cameras.repository.ts';
export type { EventsRepository, StoredEvent, EventsSinceQuery } from './events.repository.ts';
export type {
  SessionsRepository,
  RecognitionSession,
  NewRecognitionSession,
  RosterEntry,
  SessionStatus,
  SessionSighting,
  SessionSightingWithPerson,
  SessionListQuery,
} from './sessions.repository.ts';
export type {
  AttendanceRepository,
  AttendanceMethod,
  AttendanceRecord,
  AttendanceRecordWithPerson,
  AttendanceQuery,
  NewCheckIn,
  CheckInResult,
  RevokeInput,
  NegativeExample,
  DayPresence,
  ExpectedPerson,
} from './attendance.repository.ts';
export type { AuditRepository, AuditEntry, NewAuditEntry, AuditQuery } from './audit.repository.ts';
export * from './types.ts';
export { CLUSTER_CHANNELS, NOTIFY_MAX_BYTES, type ClusterRepository, type CameraLease, type ClusterNodeRecord } from './cluster.repository.ts';
export { PgListener, type PgListenerOptions } from './pg-listener.ts';
export type { UsersRepository, User, UserRole, UserRecord, LoginSession } from './users.repository.ts';
export { USER_ROLES } from './users.repository.ts';
