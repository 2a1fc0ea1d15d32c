import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_NAMES } from '../../src/events/event-map.ts';
import { eventsProtocolSchema, renderEventsMarkdown } from '../../src/events/protocol-doc.ts';

describe('the event protocol document', () => {
  it('documents every event of the map, and docs/events.md is the generated text (run npm run docs:events after changing the map)', () => {
    const markdown = renderEventsMarkdown();
    for (const name of EVENT_NAMES) expect(markdown).toContain(`### \`${name}\``);
    expect(markdown).toContain('`pose_error.yaw`');
    expect(markdown).toContain('`cameras[].person_data.person_id`');
    expect(readFileSync(new URL('../../docs/events.md', import.meta.url), 'utf8')).toBe(markdown);
  });

  it('gives JSON Schemas in which defaulted fields are always present', () => {
    const schema = eventsProtocolSchema();
    expect(Object.keys(schema.events)).toEqual(EVENT_NAMES);
    expect(schema.events.person_left_area!.payload.required).toEqual(['message', 'show_waiting_message']);
    expect(schema.events.registration_angle_instruction!.payload.properties!.pose_error!.required).toEqual(['yaw', 'pitch']);
    expect(schema.envelope.required).toEqual(['id', 'type', 'camera_id', 'track_id', 'timestamp', 'data']);
  });
});
