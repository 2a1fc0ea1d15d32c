import { z } from 'zod';
import { CLIENT_MESSAGE_SCHEMAS, envelopeSchema, errorMessageSchema, EVENT_NAMES, EVENT_SCHEMAS } from './event-map.ts';

/*
 * The WebSocket protocol document, generated from the event map (never written by hand): as JSON
 * Schema for GET /api/v1/events/schema, and as Markdown for docs/events.md (npm run docs:events).
 */

type JsonSchema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  additionalProperties?: unknown;
  minimum?: number;
  maximum?: number;
  [key: string]: unknown;
};

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

export interface EventsProtocolSchema {
  envelope: JsonSchema;
  events: Record<string, { description: string; payload: JsonSchema }>;
  clientMessages: Record<string, { description: string; data: JsonSchema }>;
  error: JsonSchema;
}

/** Every event's payload (as clients receive it) and every client message, as JSON Schema. */
export function eventsProtocolSchema(): EventsProtocolSchema {
  return {
    envelope: jsonSchema(envelopeSchema, 'output'),
    events: Object.fromEntries(
      EVENT_NAMES.map((name) => {
        const schema = EVENT_SCHEMAS[name];
        return [name, { description: schema.description ?? '', payload: jsonSchema(schema, 'output') }];
      }),
    ),
    clientMessages: Object.fromEntries(
      Object.entries(CLIENT_MESSAGE_SCHEMAS).map(([name, schema]) => [name, { description: schema.description ?? '', data: jsonSchema(schema, 'input') }]),
    ),
    error: jsonSchema(errorMessageSchema, 'output'),
  };
}

function typeName(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeName).join(' \\| ');
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : ['any'];
  return types
    .map((t) => {
      if (t === 'array') return `${s.items ? typeName(s.items) : 'any'}[]`;
      if (t === 'integer') return 'integer';
      return t;
    })
    .join(' \\| ');
}

function range(s: JsonSchema): string {
  // zod's int() bounds are the safe-integer limits: not worth printing.
  const min = s.minimum !== undefined && Math.abs(s.minimum) < Number.MAX_SAFE_INTEGER ? s.minimum : undefined;
  const max = s.maximum !== undefined && Math.abs(s.maximum) < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  if (min !== undefined && max !== undefined) return ` (${min}..${max})`;
  if (min !== undefined) return ` (≥ ${min})`;
  if (max !== undefined) return ` (≤ ${max})`;
  return '';
}

/** The object a field holds, also when it is nullable (anyOf [object, null]) or a list of objects. */
function nestedObject(field: JsonSchema): { schema: JsonSchema; suffix: string } | null {
  if (field.properties) return { schema: field, suffix: '.' };
  const inAnyOf = field.anyOf?.find((s) => s.properties);
  if (inAnyOf) return { schema: inAnyOf, suffix: '.' };
  if (field.type === 'array' && field.items?.properties) return { schema: field.items, suffix: '[].' };
  return null;
}

/** One table row per field, nested objects flattened to `parent.child`. */
function fieldRows(schema: JsonSchema, prefix = ''): string[] {
  const rows: string[] = [];
  for (const [name, field] of Object.entries(schema.properties ?? {})) {
    const required = schema.required?.includes(name) ?? false;
    const notes = [field.description ?? '', field.default !== undefined ? `Default \`${JSON.stringify(field.default)}\`.` : '']
      .filter(Boolean)
      .join(' ')
      .replace(/\|/g, '\\|');
    rows.push(`| \`${prefix}${name}\` | ${typeName(field)}${range(field)} | ${required ? 'yes' : 'no'} | ${notes} |`);
    const nested = nestedObject(field);
    if (nested) rows.push(...fieldRows(nested.schema, `${prefix}${name}${nested.suffix}`));
  }
  return rows;
}

function table(schema: JsonSchema): string {
  const rows = fieldRows(schema);
  if (rows.length === 0) return '_No fields._';
  return ['| Field | Type | Always there | Notes |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** docs/events.md: the WebSocket and polling protocol, webhooks and MQTT, from the event map. */
export function renderEventsMarkdown(): string {
  const protocol = eventsProtocolSchema();
  const out: string[] = [];
  out.push(
    '# Facegate real-time events',
    '',
    '<!-- Generated from src/events/event-map.ts by `npm run docs:events`; do not edit by hand. -->',
    '',
    'Facegate tells clients what its cameras see as it happens. The same events, in the same envelope, reach',
    'WebSocket clients, HTTP pollers, webhooks and MQTT. Event names and payload fields follow the original',
    'kiosk protocol (`{type, data}`), so a frontend written for it keeps working. The machine-readable form of',
    'this page is `GET /api/v1/events/schema` (JSON Schema).',
    '',
    '## Connecting',
    '',
    '`GET /api/v1/events` as a WebSocket (`ws://HOST:PORT/api/v1/events`), with a key of the **device** scope or higher:',
    '',
    '- `Authorization: Bearer <key>` or `X-API-Key: <key>` headers, or',
    '- `?key=<key>` in the URL, for browsers, which cannot set headers on a WebSocket. Prefer a device key there:',
    '  URLs end up in browser history and proxy logs (Facegate masks the key in its own logs).',
    '',
    'Without a valid key the upgrade is refused with HTTP 401 (403 with too low a scope).',
    '',
    'Filters, both optional, as query parameters: `camera=cam1,cam2` (events about other cameras are not sent;',
    'events about every camera, `camera_id: "*"`, always are) and `types=person_recognized,person_left_area`.',
    '',
    'The first message on a new socket is `connected`, with the current state of the cameras asked for and the',
    'cursor of the newest event. A client that loses its socket reconnects and gets a fresh `connected`; to',
    'replay what it missed, it polls `GET /api/v1/events?after=<last id seen>`.',
    '',
    'A client that reads too slowly (more than a few MB waiting in its socket) is disconnected with close code',
    '1013 rather than slowing anyone else down; it should reconnect and resume from its cursor.',
    '',
    '## The envelope',
    '',
    'Every event, on every channel:',
    '',
    '```json',
    '{ "id": 42, "type": "person_recognized", "camera_id": "door", "track_id": "7", "timestamp": 1732190000000,',
    '  "data": { "person_id": "…", "name": "Ada", "external_id": null, "confidence": 0.71, "message": "Welcome back, Ada" } }',
    '```',
    '',
    table(protocol.envelope),
    '',
    '## Events',
    '',
  );
  for (const [name, { description, payload }] of Object.entries(protocol.events)) {
    out.push(`### \`${name}\``, '', description, '', table(payload), '');
  }
  out.push('## Client → server messages', '', 'Sent on the same WebSocket as `{"type": …, "data": {…}}`.', '');
  for (const [name, { description, data }] of Object.entries(protocol.clientMessages)) {
    out.push(`### \`${name}\``, '', description, '', table(data), '');
  }
  out.push(
    'A decision is accepted only while the camera waits for one (after an `unknown_person_detected` with',
    '`action_required: true`) and only for the track it waits about; it then broadcasts `registration_approved`',
    'or `registration_cancelled` for that camera and track. Otherwise the server answers with an error message.',
    '',
    '### Errors',
    '',
    'A message the server cannot parse or act on gets an `error` message back; the socket stays open.',
    '',
    table(protocol.error),
    '',
    '## HTTP',
    '',
    '| Method and path | Access | What it does |',
    '| --- | --- | --- |',
    '| `GET /api/v1/events?after=CURSOR&limit=100&camera=…&types=…` | device | Events after the cursor, oldest first, from the persisted ring (the newest `events.ringSize` events survive restarts). Answers `{events, cursor, has_more, gap}`: poll again with `after=cursor`; `gap: true` means events between your cursor and the oldest kept were pruned. |',
    '| `POST /api/v1/decisions` `{camera_id, track_id?, register}` | device | The `registration_decision` message over HTTP: 200 with the decision, 409 when the camera is not waiting for it. |',
    '| `POST /api/v1/system/reset` `{camera_id?}` | operator | Returns a camera (or all) to its idle state and broadcasts `system_ready`. |',
    '| `GET /api/v1/events/schema` (`?format=markdown`: this page) | device | This protocol as JSON Schema. |',
    '',
    '## Webhooks',
    '',
    'Each URL in `events.webhooks` (`[{ "url": "https://…", "events": ["person_recognized"] or "*", "secret": "…" }]`)',
    'receives the chosen events as `POST` requests whose JSON body is the envelope, with headers:',
    '',
    '- `X-Facegate-Event`: the event type;',
    '- `X-Facegate-Delivery`: a unique id of this delivery, the same on every retry (deduplicate on it);',
    '- `X-Facegate-Signature`: `sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>`.',
    '',
    'Verify the signature over the raw bytes before parsing, with a constant-time comparison. Any 2xx answer',
    'is success. Network errors, timeouts, 408, 425, 429 and 5xx are retried with exponential backoff and',
    'jitter, up to `maxAttempts` (default 5) tries; other answers are final. Each URL has its own bounded queue,',
    'delivered in order; when it is full the oldest events are dropped and counted.',
    '',
    '## MQTT',
    '',
    'With `events.mqtt.url` set (`mqtt://broker:1883`), chosen events (`events.mqtt.events`, default all) are',
    'published to `<topicPrefix>/<camera>/<event>` (prefix default `facegate`; events about every camera go to',
    `\`<topicPrefix>/_all/<event>\`; \`/\`, \`+\` and \`#\` in camera ids become \`_\`), with the envelope as JSON payload`,
    'and QoS `events.mqtt.qos`. The connection is re-established on its own; meanwhile events wait in a bounded',
    'queue.',
    '',
  );
  return out.join('\n');
}
