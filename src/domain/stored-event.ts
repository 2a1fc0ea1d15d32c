/** One event as the persisted ring keeps it: shared by src/events (which writes it) and src/store (which stores it). */
export interface StoredEvent {
  id: number;
  /** Epoch ms. */
  at: number;
  type: string;
  cameraId: string;
  trackId: string | null;
  /** The payload; src/events gives it a type. */
  data: unknown;
}

export interface EventsSinceQuery {
  /** Page size; default 100, at most 1000. */
  limit?: number;
  /** Only these cameras (events for every camera, camera "*", always match). */
  cameras?: readonly string[];
  /** Only these event types. */
  types?: readonly string[];
}
