import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../domain/errors.ts';
import type { ImportPhoto } from '../services/import.service.ts';
import { confinedFile, formatImportSummary, parseCsv, rowsFromCsv, rowsFromFolder } from './import.ts';

async function loadError(photo: ImportPhoto): Promise<AppError> {
  if ('url' in photo) throw new Error('expected a file photo');
  const err = await photo.load().then(
    () => new Error('the file was read'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

describe('parseCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, CRLF and a BOM', () => {
    const text = '\ufeffname,photo\r\n"Doe, Jane","a.jpg"\r\n"Say ""hi""",b.jpg\n"two\nlines",c.jpg\n\n';
    expect(parseCsv(text)).toEqual([
      ['name', 'photo'],
      ['Doe, Jane', 'a.jpg'],
      ['Say "hi"', 'b.jpg'],
      ['two\nlines', 'c.jpg'],
    ]);
  });

  it('refuses an unterminated quote', () => {
    expect(() => parseCsv('name\n"open')).toThrow(/inside a quoted field/);
  });
});

describe('import sources (files confined to the import folder)', () => {
  let base: string;
  let root: string;

  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'facegate-import-cli-'));
    root = join(base, 'photos');
    mkdirSync(join(root, 'E1'), { recursive: true });
    mkdirSync(join(root, 'E2'));
    mkdirSync(join(root, '.hidden'));
    writeFileSync(join(root, 'E1', 'a.jpg'), 'A');
    writeFileSync(join(root, 'E1', '10.jpg'), 'TEN');
    writeFileSync(join(root, 'E1', '2.png'), 'TWO');
    writeFileSync(join(root, 'E1', 'notes.txt'), 'not a photo');
    writeFileSync(join(base, 'secret.jpg'), 'SECRET');
    symlinkSync(join(base, 'secret.jpg'), join(root, 'E2', 'escape.jpg'));
    symlinkSync(join(root, 'E1', 'a.jpg'), join(root, 'E2', 'inside.jpg'));
    writeFileSync(join(root, 'big.jpg'), Buffer.alloc(2000));
    writeFileSync(
      join(root, 'people.csv'),
      'Employee Code,Full_Name,email,department,photo\n' +
        'E1,Alice,alice@example.com,R&D,E1/a.jpg;https://photos.example.com/alice.jpg\n' +
        'E1,ignored,,,E1/2.png\n' +
        ',Bob,,,E2/inside.jpg\n' +
        'E3,Eve,,,../secret.jpg|/etc/passwd\n',
    );
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('reads a file inside the folder, also through a symlink that stays inside', async () => {
    const inside = confinedFile(root, 'E2/inside.jpg', 1000) as Extract<ImportPhoto, { label: string }>;
    expect(Buffer.from(await inside.load()).toString()).toBe('A');
  });

  it('refuses paths that leave the folder: "..", absolute, a symlink pointing out', async () => {
    expect((await loadError(confinedFile(root, '../secret.jpg', 1000))).code).toBe('file_not_allowed');
    expect((await loadError(confinedFile(root, 'E1/../../secret.jpg', 1000))).code).toBe('file_not_allowed');
    expect((await loadError(confinedFile(root, join(base, 'secret.jpg'), 1000))).code).toBe('file_not_allowed');
    const escape = await loadError(confinedFile(root, 'E2/escape.jpg', 1000));
    expect(escape.code).toBe('file_not_allowed');
    expect(escape.message).toMatch(/resolves outside/);
  });

  it('refuses folders, missing files and files over the size limit', async () => {
    expect((await loadError(confinedFile(root, 'E1', 1000))).code).toBe('file_not_allowed');
    expect((await loadError(confinedFile(root, 'E1/missing.jpg', 1000))).code).toBe('file_not_found');
    expect((await loadError(confinedFile(root, 'big.jpg', 1000))).code).toBe('image_too_large');
  });

  it('makes one row per folder with its images in natural order', async () => {
    const { rows } = await rowsFromFolder(root, { folderIs: 'external-id', type: 'employee', maxBytes: 1000 });
    expect(rows.map((r) => r.externalId)).toEqual(['E1', 'E2']);
    expect(rows[0]!.photos.map((p) => ('label' in p ? p.label : p.url))).toEqual(['E1/2.png', 'E1/10.jpg', 'E1/a.jpg']);
    expect(rows[0]!.type).toBe('employee');
    const byName = await rowsFromFolder(root, { folderIs: 'name', maxBytes: 1000 });
    expect(byName.rows[0]).toMatchObject({ name: 'E1' });
    expect(byName.rows[0]!.externalId).toBeUndefined();
  });

  it('reads CSV columns by their usual names, merges rows of one external id, and splits photo lists', async () => {
    const { rows } = await rowsFromCsv(join(root, 'people.csv'), { maxBytes: 1000 });
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatchObject({ externalId: 'E1', name: 'Alice', email: 'alice@example.com', department: 'R&D' });
    expect(rows[0]!.photos.map((p) => ('url' in p ? `url:${p.url}` : p.label))).toEqual(['E1/a.jpg', 'url:https://photos.example.com/alice.jpg', 'E1/2.png']);
    expect(rows[1]).toMatchObject({ externalId: null, name: 'Bob' });
    const [dotdot, absolute] = rows[2]!.photos;
    expect((await loadError(dotdot!)).code).toBe('file_not_allowed');
    expect((await loadError(absolute!)).code).toBe('file_not_allowed');
  });

  it('refuses a CSV without the columns it needs', async () => {
    writeFileSync(join(base, 'bad.csv'), 'name,email\nA,a@example.com\n');
    await expect(rowsFromCsv(join(base, 'bad.csv'), { maxBytes: 1000 })).rejects.toMatchObject({ code: 'csv_invalid' });
  });

  it('summarises counts and every row that was not simply added', () => {
    const text = formatImportSummary(
      {
        summary: { rows: 2, added: 1, updated: 0, skipped: 1, failed: 0, templatesAdded: 2 },
        rows: [
          { index: 0, externalId: 'E1', name: 'Alice', status: 'added', personId: 'p1', templatesAdded: 2, reason: null, message: '2 faces added', photos: [] },
          {
            index: 1,
            externalId: 'E2',
            name: 'E2',
            status: 'skipped',
            personId: 'p1',
            templatesAdded: 0,
            reason: 'duplicate_face',
            message: 'the face already belongs to person p1',
            photos: [{ photo: 'E2/x.jpg', status: 'refused', reason: 'duplicate', message: 'this face already belongs to person p1', duplicateOf: 'p1' }],
          },
        ],
      },
      'photos',
    );
    expect(text).toContain('2 rows — 1 added, 0 updated, 1 skipped, 0 failed; 2 faces added');
    expect(text).toMatch(/2\s+E2\s+skipped\s+duplicate_face/);
    expect(text).toContain('E2/x.jpg: this face already belongs to person p1');
    expect(text).not.toMatch(/\n\s+1\s+E1/);
  });
});
