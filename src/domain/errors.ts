/**
 * The one error type that reaches a client: a stable machine-readable code, an HTTP status and
 * a message safe to show (never internals or stack traces). Expected outcomes — no face, an
 * unknown person, a duplicate — are results, not AppErrors.
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Extra fields for the problem+json body (for example the id of a conflicting person). */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}
