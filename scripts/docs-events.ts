/**
 * Writes docs/events.md from the event map (src/events/event-map.ts): `npm run docs:events`.
 * With --check, fails instead when the file is out of date (for CI).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderEventsMarkdown } from '../src/events/protocol-doc.ts';

const target = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'events.md');
const markdown = renderEventsMarkdown();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // missing counts as out of date
  }
  if (current !== markdown) {
    console.error('docs/events.md is out of date: run npm run docs:events');
    process.exit(1);
  }
  console.log('docs/events.md is up to date');
} else {
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, markdown);
  console.log(`wrote ${target}`);
}
