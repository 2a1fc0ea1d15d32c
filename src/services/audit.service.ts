import type { AuditEntry, AuditQuery, AuditRepository, NewAuditEntry } from '../store/index.ts';

/** Field names whose values never reach the audit log: images, secrets, biometric vectors. */
const REDACTED_FIELD = /image|photo|picture|base64|thumbnail|snapshot|embedding|vector|password|secret|token|^key$|apikey|csrf/i;
/** Strings longer than this are cut (free text, not evidence). */
const MAX_STRING = 200;
/** Array entries kept per array (an import of 10,000 rows is summarised, not copied). */
const MAX_ITEMS = 20;

/** A copy of a request body fit for the audit log: images and secrets replaced, long things cut. */
export function redactForAudit(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}… (${value.length} chars)` : value;
  if (depth > 4) return '[nested]';
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_ITEMS).map((v) => redactForAudit(v, depth + 1));
    return value.length > MAX_ITEMS ? [...kept, `… ${value.length - MAX_ITEMS} more`] : kept;
  }
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, REDACTED_FIELD.test(k) ? '[redacted]' : redactForAudit(v, depth + 1)]));
  }
  return String(value);
}

/** Who changed what: recorded by the API for every change it makes, read by admins. */
export class AuditService {
  constructor(private readonly repo: AuditRepository) {}

  record(entry: NewAuditEntry): Promise<AuditEntry> {
    return this.repo.append({ ...entry, details: redactForAudit(entry.details) as Record<string, unknown> });
  }

  list(query: AuditQuery): Promise<AuditEntry[]> {
    return this.repo.list(query);
  }
}
