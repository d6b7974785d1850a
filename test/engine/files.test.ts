import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BadInputError, BadInputErrors } from '../../lambda/engine/errors';
import { loadMigrations, parseFileName } from '../../lambda/engine/files';
import { migrationsDir, SOP_MIGRATIONS } from '../helpers/db';

async function loadError(files: Record<string, string | Buffer>): Promise<BadInputError | BadInputErrors> {
  const err = await loadMigrations(migrationsDir(files)).then(
    () => undefined,
    (e) => e,
  );
  expect(err).toBeInstanceOf(err instanceof BadInputErrors ? BadInputErrors : BadInputError);
  return err;
}

describe('parseFileName', () => {
  test.each([
    ['000001_init.up.sql', 1n, 'init', 'up'],
    ['20261123120000_add_users.down.sql', 20261123120000n, 'add_users', 'down'],
    ['0002_1.7.0_schema.up.sql', 2n, '1.7.0_schema', 'up'],
    ['7_with-dash.up.sql', 7n, 'with-dash', 'up'],
  ])('%s', (file, version, name, direction) => {
    expect(parseFileName(file)).toEqual({ version, name, direction });
  });

  test.each([
    '1_a b.up.sql',
    "1_it's.up.sql",
    'x_name.up.sql',
    '1_name.sql',
    '1_name.UP.sql',
    '_name.up.sql',
    '1_.up.sql',
    '1_a;drop.up.sql',
  ])('rejects %s', (file) => expect(parseFileName(file)).toBeUndefined());
});

describe('loadMigrations', () => {
  test('loads the SOP migrations in order with statements, lines and directives', async () => {
    const ms = await loadMigrations(SOP_MIGRATIONS);
    expect(ms.map((m) => m.version)).toEqual([1n, 2n]);
    expect(ms[0].up.statements.map((s) => s.kind)).toEqual([
      'CreateStmt',
      'IndexStmt',
      'CreateStmt',
      'IndexStmt',
      'CreateStmt',
    ]);
    expect(ms[0].up.statements[0].line).toBe(5);
    expect(ms[1].up.directives.noTransaction).toBe(true);
    expect(ms[1].up.directives.lockTimeoutMs).toBe(5000);
    expect(ms[1].up.statements.map((s) => s.nonTransactionalReason)).toEqual([
      'CREATE INDEX CONCURRENTLY',
      'CREATE INDEX CONCURRENTLY',
    ]);
    expect(ms[0].checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  test('orders versions numerically, not as text, and ignores other files', async () => {
    const ms = await loadMigrations(
      migrationsDir({
        '10_b.up.sql': 'SELECT 1;',
        '9_a.up.sql': 'SELECT 1;',
        '0100_c.up.sql': 'SELECT 1;',
        'README.md': '# notes',
      }),
    );
    expect(ms.map((m) => m.version)).toEqual([9n, 10n, 100n]);
  });

  test('splits DO blocks and functions with semicolons inside as single statements', async () => {
    const [m] = await loadMigrations(
      migrationsDir({
        '1_fn.up.sql': `DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\nCREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  RETURN 1;\nEND\n$body$;\nSELECT ';' AS semi;`,
      }),
    );
    expect(m.up.statements.map((s) => [s.kind, s.line])).toEqual([
      ['DoStmt', 1],
      ['CreateFunctionStmt', 2],
      ['SelectStmt', 7],
    ]);
  });

  test('gives lines of statements after multi-byte characters', async () => {
    const [m] = await loadMigrations(migrationsDir({ '1_utf.up.sql': `-- Zürich ☃\nSELECT 'ümlaut ☃';\n\nSELECT 2;` }));
    expect(m.up.statements.map((s) => [s.sql, s.line])).toEqual([
      ["SELECT 'ümlaut ☃'", 2],
      ['SELECT 2', 4],
    ]);
  });

  test.each<[string, Record<string, string | Buffer>, string, RegExp]>([
    ['a bad file name', { '1_bad name.up.sql': 'SELECT 1;' }, '1_bad name.up.sql', /bad migration file name/],
    ['version 0', { '0_zero.up.sql': 'SELECT 1;' }, '0_zero.up.sql', /version 0/],
    [
      'a duplicate version',
      { '1_a.up.sql': 'SELECT 1;', '01_b.up.sql': 'SELECT 1;' },
      '1_a.up.sql',
      /duplicate version 1/,
    ],
    [
      'a down file without its up file',
      { '1_a.up.sql': 'SELECT 1;', '2_b.down.sql': 'SELECT 1;' },
      '2_b.down.sql',
      /down file without its up file/,
    ],
    ['an empty file', { '1_a.up.sql': '' }, '1_a.up.sql', /empty/],
    ['a whitespace-only file', { '1_a.up.sql': ' \n\t\n' }, '1_a.up.sql', /empty/],
    ['a comment-only file', { '1_a.up.sql': '-- nothing\n/* here */\n' }, '1_a.up.sql', /only comments/],
    [
      'invalid UTF-8',
      { '1_a.up.sql': Buffer.from([0x53, 0x45, 0x4c, 0x0a, 0xff, 0xfe]) },
      '1_a.up.sql',
      /not valid UTF-8/,
    ],
    ['a binary file', { '1_a.up.sql': Buffer.from([0x00, 0x01, 0x02]) }, '1_a.up.sql', /NUL bytes/],
    [
      'an unknown directive',
      { '1_a.up.sql': '-- orion:no-transactions\nSELECT 1;' },
      '1_a.up.sql',
      /unknown directive "orion:no-transactions"/,
    ],
    [
      'a bad directive value',
      { '1_a.up.sql': '-- orion:lock-timeout 5 seconds\nSELECT 1;' },
      '1_a.up.sql',
      /lock-timeout needs a duration/,
    ],
    [
      'a value on no-transaction',
      { '1_a.up.sql': '-- orion:no-transaction yes\nSELECT 1;' },
      '1_a.up.sql',
      /takes no value/,
    ],
    ['a blanket allow', { '1_a.up.sql': '-- orion:allow\nSELECT 1;' }, '1_a.up.sql', /must name one lint rule/],
    [
      'a misspelt directive',
      { '1_a.up.sql': '-- orion no-transaction\nSELECT 1;' },
      '1_a.up.sql',
      /malformed directive/,
    ],
    [
      'a directive in capitals',
      { '1_a.up.sql': '-- Orion: no-transaction\nSELECT 1;' },
      '1_a.up.sql',
      /malformed directive/,
    ],
    [
      'directive injection',
      { '1_a.up.sql': '-- orion:lock-timeout 5s; DROP TABLE x\nSELECT 1;' },
      '1_a.up.sql',
      /lock-timeout needs a duration/,
    ],
    [
      'a syntax error',
      { '1_a.up.sql': 'SELECT 1;\nCREATE TABLEE t (id int);' },
      '1_a.up.sql',
      /syntax error at or near "TABLEE"/,
    ],
    [
      'an unmarked CREATE INDEX CONCURRENTLY',
      { '1_a.up.sql': 'CREATE INDEX CONCURRENTLY i ON t (x);' },
      '1_a.up.sql',
      /CREATE INDEX CONCURRENTLY cannot run inside a transaction/,
    ],
    ['an unmarked VACUUM', { '1_a.up.sql': 'SELECT 1;\nVACUUM t;' }, '1_a.up.sql', /VACUUM cannot run/],
    [
      'an unmarked REINDEX CONCURRENTLY',
      { '1_a.up.sql': 'REINDEX INDEX CONCURRENTLY i;' },
      '1_a.up.sql',
      /REINDEX CONCURRENTLY/,
    ],
    ['an unmarked CREATE DATABASE', { '1_a.up.sql': 'CREATE DATABASE x;' }, '1_a.up.sql', /CREATE DATABASE/],
    ['an unmarked ALTER SYSTEM', { '1_a.up.sql': 'ALTER SYSTEM SET work_mem = 1;' }, '1_a.up.sql', /ALTER SYSTEM/],
    [
      'COMMIT inside a file',
      { '1_a.up.sql': 'CREATE TABLE a (x int);\nCOMMIT;\nDROP TABLE b;' },
      '1_a.up.sql',
      /transaction control/,
    ],
    ['BEGIN inside a file', { '1_a.up.sql': 'BEGIN;\nSELECT 1;' }, '1_a.up.sql', /transaction control/],
    ['a psql meta-command', { '1_a.up.sql': 'SELECT 1;\n\\i other.sql\n' }, '1_a.up.sql', /psql meta-commands/],
  ])('rejects %s, naming the file', async (_case, files, file, message) => {
    const err = await loadError(files);
    const entry = err.toEntries().find((e) => e.file === file);
    expect(entry, JSON.stringify(err.toEntries())).toBeDefined();
    expect(entry!.message).toMatch(message);
    expect(err.exitCode).toBe(2);
  });

  test('a header comment that merely starts with "Orion" is prose, not a directive', async () => {
    const [m] = await loadMigrations(
      migrationsDir({ '1_a.up.sql': "-- Orion's schema, as the SOP defines it.\n-- orion:lock-timeout 2s\nSELECT 1;" }),
    );
    expect(m.up.directives.lockTimeoutMs).toBe(2000);
  });

  test('reports the line and column of a syntax error', async () => {
    const err = await loadError({ '1_a.up.sql': '-- header\nSELECT 1;\n\nCREATE TABLEE t (id int);' });
    expect(err.toEntries()[0]).toMatchObject({ file: '1_a.up.sql', line: 4, column: 8 });
  });

  test('reports the line of the offending statement and directive', async () => {
    expect((await loadError({ '1_a.up.sql': 'SELECT 1;\n\nVACUUM t;' })).toEntries()[0].line).toBe(3);
    expect((await loadError({ '1_a.up.sql': '-- ok\n-- orion:bogus\nSELECT 1;' })).toEntries()[0].line).toBe(2);
    expect((await loadError({ '1_a.up.sql': 'SELECT 1;\n\\i x.sql' })).toEntries()[0].line).toBe(2);
    expect(
      (await loadError({ '1_a.up.sql': Buffer.from('SELECT 1;\nSELECT 2;\nSELECT \xff;', 'latin1') })).toEntries()[0]
        .line,
    ).toBe(3);
  });

  test('collects every problem in one pass', async () => {
    const err = await loadError({ '1_a b.up.sql': 'SELECT 1;', '2_b.up.sql': '', '3_c.down.sql': 'SELECT 1;' });
    expect(
      err
        .toEntries()
        .map((e) => e.file)
        .sort(),
    ).toEqual(['1_a b.up.sql', '2_b.up.sql', '3_c.down.sql']);
  });

  test('accepts a marked non-transactional file and the allowed directives', async () => {
    const [m] = await loadMigrations(
      migrationsDir({
        '1_a.up.sql':
          '-- orion:no-transaction\n-- orion:statement-timeout 10min\n-- orion:allow ban-drop-column\n-- orion:requires-extension pg_trgm\nVACUUM t;',
      }),
    );
    expect(m.up.directives).toEqual({
      noTransaction: true,
      statementTimeoutMs: 600_000,
      allow: ['ban-drop-column'],
      requiresExtensions: ['pg_trgm'],
      lockTimeoutMs: undefined,
    });
  });

  test('follows a symbolic link to a file; refuses a directory or a dangling link in its place', async () => {
    const dir = migrationsDir({ '1_a.up.sql': 'SELECT 1;' });
    const elsewhere = migrationsDir({ 'shared.sql': 'SELECT 2;' });
    symlinkSync(join(elsewhere, 'shared.sql'), join(dir, '2_linked.up.sql'));
    expect((await loadMigrations(dir)).map((m) => m.up.statements[0].sql)).toEqual(['SELECT 1', 'SELECT 2']);

    mkdirSync(join(dir, '3_dir.up.sql'));
    symlinkSync(join(elsewhere, 'gone.sql'), join(dir, '4_dangling.up.sql'));
    const err = await loadMigrations(dir).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputErrors);
    expect((err as BadInputErrors).toEntries().map((e) => [e.file, e.message])).toEqual([
      ['3_dir.up.sql', 'not a regular file'],
      ['4_dangling.up.sql', 'not a regular file'],
    ]);
  });

  test('a missing folder is bad input', async () => {
    await expect(loadMigrations('/nonexistent/orion')).rejects.toThrow(/cannot read migrations folder/);
  });
});
