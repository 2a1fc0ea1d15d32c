import { AppError } from '../domain/errors.ts';
import type { EventBus } from './event-bus.ts';
import type { SystemState } from './system-state.ts';

/** A client's answer to "register this unknown person?", scoped to one camera and track. */
export interface RegistrationDecision {
  cameraId: string;
  /** The track the camera was waiting about (null when the wait named no track). */
  trackId: string | null;
  register: boolean;
}

/** Whoever acts on decisions: the camera pipeline (do not ask this track again), the enrollment flow (start capture). */
export interface DecisionHandler {
  onDecision(decision: RegistrationDecision): void | Promise<void>;
}

/** What a client sends: the camera may be left out when only one camera waits, the track when the camera waits about one. */
export interface DecisionRequest {
  cameraId?: string;
  trackId?: string;
  register: boolean;
}

/**
 * Where a decision goes when another node runs the camera (several nodes on one PostgreSQL,
 * issue 9): the wait lives on that node, so it checks the decision again and acts on it there.
 */
export interface DecisionRouter {
  /** The node that processes the camera when it is not this one; null = this node. */
  remoteNodeOf(cameraId: string): string | null;
  /** Hands the decision to that node (which calls its own registry's decide). */
  forward(nodeId: string, decision: RegistrationDecision): void;
}

/**
 * Takes registration decisions (WebSocket message or POST /api/v1/decisions, same rules): checks
 * that the camera is waiting for one about that track, emits registration_approved or
 * registration_cancelled (which ends the wait in SystemState), then tells every plugged handler.
 * A handler that throws or rejects is reported, never passed to the client.
 */
export class DecisionRegistry {
  private handlers: DecisionHandler[] = [];
  private router: DecisionRouter | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly state: SystemState,
    private readonly onHandlerError: (err: unknown) => void = (err) => console.error(`facegate: decision handler failed: ${(err as Error)?.message ?? String(err)}`),
  ) {}

  /** Routes decisions about cameras other nodes run to those nodes (src/cluster). */
  setRouter(router: DecisionRouter | null): void {
    this.router = router;
  }

  /** Plugs a handler in; returns the function that unplugs it. */
  register(handler: DecisionHandler): () => void {
    this.handlers = [...this.handlers, handler];
    return () => {
      this.handlers = this.handlers.filter((h) => h !== handler);
    };
  }

  /** Applies a decision; throws AppError 409 (not_waiting) when nobody waits for it, 400 (camera_required) when it is ambiguous. */
  decide(request: DecisionRequest): RegistrationDecision {
    const cameraId = request.cameraId ?? this.onlyWaitingCamera();
    if (!this.state.get(cameraId).waiting_for_user_response) {
      throw new AppError('not_waiting', 409, `camera ${cameraId} is not waiting for a registration decision`, { camera_id: cameraId });
    }
    const waitingTrack = this.state.waitingTrack(cameraId);
    if (request.trackId !== undefined && request.trackId !== waitingTrack) {
      throw new AppError('not_waiting', 409, `camera ${cameraId} is not waiting for a decision about track ${request.trackId}`, {
        camera_id: cameraId,
        track_id: request.trackId,
        waiting_track_id: waitingTrack,
      });
    }
    const decision: RegistrationDecision = { cameraId, trackId: waitingTrack, register: request.register };
    // This node's state mirrors the other node's events, so the checks above hold here too; the
    // owner checks again (the wait may have ended meanwhile) and emits the outcome, which comes back relayed.
    const remoteNode = this.router?.remoteNodeOf(cameraId) ?? null;
    if (remoteNode !== null) {
      this.router!.forward(remoteNode, decision);
      return decision;
    }
    if (decision.register) this.bus.emit('registration_approved', { camera_id: cameraId, track_id: waitingTrack });
    else this.bus.emit('registration_cancelled', { camera_id: cameraId, track_id: waitingTrack });
    for (const handler of this.handlers) {
      try {
        const result: unknown = handler.onDecision(decision);
        if (result instanceof Promise) result.catch((err: unknown) => this.onHandlerError(err));
      } catch (err) {
        this.onHandlerError(err);
      }
    }
    return decision;
  }

  private onlyWaitingCamera(): string {
    const waiting = this.state.camerasWaiting();
    if (waiting.length === 1) return waiting[0]!;
    if (waiting.length === 0) throw new AppError('not_waiting', 409, 'no camera is waiting for a registration decision');
    throw new AppError('camera_required', 400, `several cameras wait for a decision (${waiting.join(', ')}): say which with camera_id`, {
      cameras: waiting,
    });
  }
}
