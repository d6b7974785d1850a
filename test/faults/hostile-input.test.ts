/**
 * Hostile input: every case is a clear error naming the file, and the database is left untouched.
 * (Per-rule cases of bad files are in test/engine/files.test.ts and test/integration/cli.test.ts.)
 */

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { BadInputError, BadInputErrors } from '../../lambda/engine/errors';
import { loadMigrations, parseFileName } from '../../lambda/engine/files';
import { runCli } from '../helpers/cli';
import { createDatabase, migrationsDir, tableNames } from '../helpers/db';

async function rejects(dir: string): Promise<{ file?: string; line?: number; message: string }[]> {
  const err = await loadMigrations(dir).then(
    () => undefined,
    (e) => e,
  );
  expect(err instanceof BadInputError || err instanceof BadInputErrors).toBe(true);
  return err.toEntries();
}

describe('hostile input', () => {
  test('generated malformed file names are each rejected by name', async () => {
    const malformed = fc
      .string({ unit: 'grapheme', minLength: 1, maxLength: 24 })
      .map((s) => s.replace(/[/\0\\]/g, '_'))
      // Hidden files are not migrations (the folder reader skips them: editors' lock files such as .#x.sql).
      .filter((s) => !s.startsWith('.'))
      .map((s) => `${s}.sql`)
      .filter((name) => parseFileName(name) === undefined);
    await fc.assert(
      fc.asyncProperty(malformed, async (name) => {
        const dir = migrationsDir({ '1_ok.up.sql': 'SELECT 1;' });
        writeFileSync(join(dir, name), 'SELECT 1;');
        const entries = await rejects(dir);
        expect(entries).toContainEqual(
          expect.objectContaining({ file: name, message: expect.stringMatching(/bad migration file name/) }),
        );
      }),
      { numRuns: 60 },
    );
  });

  test('duplicate and zero versions, including across widths', async () => {
    expect(await rejects(migrationsDir({ '1_a.up.sql': 'SELECT 1;', '0001_b.up.sql': 'SELECT 1;' }))).toContainEqual(
      expect.objectContaining({ message: expect.stringMatching(/duplicate version 1/) }),
    );
    expect(await rejects(migrationsDir({ '000000_zero.up.sql': 'SELECT 1;' }))).toContainEqual(
      expect.objectContaining({ file: '000000_zero.up.sql' }),
    );
  });

  test('a 50 MB binary file and a 50 MB text file that is not SQL are clear errors, quickly', async () => {
    const binary = Buffer.alloc(50 * 1024 * 1024, 0);
    binary.write('SELECT 1;');
    expect(await rejects(migrationsDir({ '1_bin.up.sql': binary }))).toEqual([
      expect.objectContaining({ file: '1_bin.up.sql', message: expect.stringMatching(/NUL bytes/) }),
    ]);
    const junk = Buffer.alloc(50 * 1024 * 1024, 'x');
    expect(await rejects(migrationsDir({ '1_junk.up.sql': junk }))).toEqual([
      expect.objectContaining({ file: '1_junk.up.sql', line: 1, message: expect.stringMatching(/syntax error/) }),
    ]);
  });

  test.each<[string, string, RegExp]>([
    [
      'COMMIT to escape the batch',
      'CREATE TABLE a (id int);\nCOMMIT;\nDROP TABLE orion_schema_history;',
      /transaction control/,
    ],
    ['END as COMMIT', 'CREATE TABLE a (id int);\nEND;', /transaction control/],
    ['a SAVEPOINT', 'SAVEPOINT s;', /transaction control/],
    ['a psql \\i meta-command', 'CREATE TABLE a (id int);\n\\i /etc/passwd\n', /psql meta-commands/],
    ['a psql \\set meta-command', '\\set ON_ERROR_STOP off\nSELECT 1;', /psql meta-commands/],
    [
      'directive injection in a value',
      '-- orion:statement-timeout 0; DROP TABLE x\nSELECT 1;',
      /statement-timeout needs a duration/,
    ],
    [
      'a directive hidden after SQL',
      'SELECT 1;\n-- orion:no-transaction\nVACUUM;',
      /VACUUM cannot run inside a transaction/,
    ],
    ['a file of comments only', '-- nothing\n/* at all */', /only comments/],
  ])(
    '%s is refused before anything runs, through the CLI, with the database untouched',
    async (_name, sql, message) => {
      const { url } = await createDatabase();
      const run = await runCli([
        'migrate',
        '--database-url',
        url,
        '--migrations',
        migrationsDir({ '1_evil.up.sql': sql }),
        '--json',
      ]);
      expect(run.code).toBe(2);
      expect(run.json().errors[0]).toMatchObject({ file: '1_evil.up.sql', message: expect.stringMatching(message) });
      expect(await tableNames(url)).toEqual([]);
    },
  );
});
