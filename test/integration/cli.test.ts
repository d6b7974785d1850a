import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { MIGRATION_LOCK_KEY } from '../../lambda/engine/lock';
import { runCli } from '../helpers/cli';
import {
  client,
  createDatabase,
  insertActivities,
  migrationsDir,
  query,
  SOP_MIGRATIONS,
  tableNames,
} from '../helpers/db';

describe('orion-db migrate / status / plan / down', () => {
  test('migrate --json applies the SOP migrations and prints one report; a second run applies nothing', async () => {
    const { url } = await createDatabase();
    const first = await runCli(['migrate', '--database-url', url, '--migrations', SOP_MIGRATIONS, '--json']);
    expect(first.code).toBe(0);
    const report = first.json();
    expect(report).toMatchObject({
      ok: true,
      command: 'migrate',
      from_version: null,
      to_version: '2',
      pending: [],
      snapshot: null,
      restored: false,
      lockdown: null,
      errors: [],
    });
    expect(report.applied.map((a: any) => [a.version, a.name, typeof a.ms])).toEqual([
      ['1', 'init_schema', 'number'],
      ['2', 'activities_start_time_speaker_idx', 'number'],
    ]);
    expect(first.stderr).toMatch(/applied 1 init_schema/); // progress goes to stderr

    const second = await runCli(['migrate', '--migrations', SOP_MIGRATIONS, '--json'], { env: { DATABASE_URL: url } });
    expect(second.code).toBe(0);
    expect(second.json()).toMatchObject({ ok: true, from_version: '2', to_version: '2', applied: [] });
  });

  test('status and plan report applied and pending without changing anything', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '2_b.up.sql': 'CREATE TABLE b (id int);' });
    const plan = await runCli(['plan', '--database-url', url, '--migrations', dir, '--json']);
    expect(plan.code).toBe(0);
    expect(plan.json()).toMatchObject({
      from_version: null,
      to_version: '2',
      pending: [{ version: '1' }, { version: '2' }],
    });
    expect(await tableNames(url)).toEqual([]); // not even the ledger
    await runCli(['migrate', '--database-url', url, '--migrations', dir, '--to', '1']);
    const status = await runCli(['status', '--database-url', url, '--migrations', dir, '--json']);
    expect(status.json()).toMatchObject({
      from_version: '1',
      to_version: '1',
      applied: [{ version: '1', name: 'a' }],
      pending: [{ version: '2', name: 'b' }],
    });
    const human = await runCli(['status', '--database-url', url, '--migrations', dir]);
    expect(human.stdout).toMatch(/current version: 1\n {2}applied {2}1 a\n {2}pending {2}2 b/);
  });

  test('a failing migration exits 1 with file, line and SQLSTATE, and the database stays at its version', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '2_b.up.sql': 'CREATE TABLE b (id int);\nSELECT 1/0;',
    });
    const run = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(run.code).toBe(1);
    expect(run.json()).toMatchObject({
      ok: false,
      from_version: null,
      to_version: null,
      applied: [],
      errors: [{ file: '2_b.up.sql', line: 2, sqlstate: '22012' }],
    });
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    const text = await runCli(['migrate', '--database-url', url, '--migrations', dir]);
    expect(text.stderr).toMatch(/error: 2_b\.up\.sql:2: SQLSTATE 22012: division by zero/);
  });

  test.each<[string, Record<string, string | Buffer>, string]>([
    ['bad name', { '1_a b.up.sql': 'SELECT 1;' }, '1_a b.up.sql'],
    ['duplicate version', { '1_a.up.sql': 'SELECT 1;', '1_b.up.sql': 'SELECT 1;' }, '1_b.up.sql'],
    ['orphan down', { '2_a.down.sql': 'SELECT 1;' }, '2_a.down.sql'],
    ['empty', { '1_a.up.sql': '   ' }, '1_a.up.sql'],
    ['invalid UTF-8', { '1_a.up.sql': Buffer.from([0xc3, 0x28]) }, '1_a.up.sql'],
    ['unknown directive', { '1_a.up.sql': '-- orion:yolo\nSELECT 1;' }, '1_a.up.sql'],
    ['bad directive value', { '1_a.up.sql': '-- orion:statement-timeout soon\nSELECT 1;' }, '1_a.up.sql'],
    ['syntax error', { '1_a.up.sql': 'CREATE TABLE ok (id int);\nSELEC 1;' }, '1_a.up.sql'],
    [
      'unmarked CONCURRENTLY',
      { '1_a.up.sql': 'CREATE TABLE ok (id int);\nCREATE INDEX CONCURRENTLY i ON ok (id);' },
      '1_a.up.sql',
    ],
    ['COMMIT', { '1_a.up.sql': 'CREATE TABLE ok (id int);\nCOMMIT;' }, '1_a.up.sql'],
  ])('bad input (%s) exits 2 naming the file, with the database untouched', async (_name, files, file) => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '000_placeholder.txt': '',
      ...files,
      '3_ok.up.sql': 'CREATE TABLE would_be_created (id int);',
    });
    const run = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(run.code).toBe(2);
    const report = run.json();
    expect(report.ok).toBe(false);
    expect(report.errors.map((e: any) => e.file)).toContain(file);
    expect(await tableNames(url)).toEqual([]);
  });

  test('an edited applied file exits 2 before anything runs', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);\n' });
    await runCli(['migrate', '--database-url', url, '--migrations', dir]);
    const tampered = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id bigint);\n',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
    });
    const run = await runCli(['migrate', '--database-url', url, '--migrations', tampered, '--json']);
    expect(run.code).toBe(2);
    expect(run.json().errors[0]).toMatchObject({
      file: '1_a.up.sql',
      message: expect.stringMatching(/edited after it was applied/),
    });
    expect(await tableNames(url)).toEqual(['a', 'orion_schema_history']);
    // status still shows the state beside the problem
    const status = await runCli(['status', '--database-url', url, '--migrations', tampered, '--json']);
    expect(status.code).toBe(2);
    expect(status.json()).toMatchObject({
      ok: false,
      to_version: '1',
      applied: [{ version: '1', name: 'a' }],
      pending: [{ version: '2', name: 'b' }],
      errors: [{ file: '1_a.up.sql' }],
    });
  });

  test('exits 3 naming the holder when the migration lock is not free in time', async () => {
    const { url } = await createDatabase();
    const holder = await client(url);
    await holder.query(`SET application_name = 'deploy-from-laptop'`);
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
    try {
      const pid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const run = await runCli([
        'migrate',
        '--database-url',
        url,
        '--migrations',
        SOP_MIGRATIONS,
        '--lock-timeout',
        '500ms',
        '--json',
      ]);
      expect(run.code).toBe(3);
      expect(run.json().errors[0].message).toMatch(
        new RegExp(`held by pid ${pid} \\(application_name "deploy-from-laptop"\\)`),
      );
      expect(await tableNames(url)).toEqual([]); // nothing ran, not even the ledger's creation
    } finally {
      await holder.end();
    }
  });

  test('down --to reverts and reports; down without --to is a usage error', async () => {
    const { url } = await createDatabase();
    await runCli(['migrate', '--database-url', url, '--migrations', SOP_MIGRATIONS]);
    await query(url, insertActivities('kept'));
    const run = await runCli(['down', '--to', '1', '--database-url', url, '--migrations', SOP_MIGRATIONS, '--json']);
    expect(run.code).toBe(0);
    expect(run.json()).toMatchObject({ from_version: '2', to_version: '1', applied: [{ version: '2' }] });
    expect(
      (await query(url, `SELECT count(*)::int AS n FROM pg_indexes WHERE indexname LIKE 'idx_activities_s%'`))[0].n,
    ).toBe(1);
    expect((await runCli(['down', '--database-url', url])).code).toBe(2);
  });

  test('down --dry-run changes nothing: a no-transaction down script is skipped and said so, not run', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': 'CREATE TABLE t (x int);',
      '1_t.down.sql': 'DROP TABLE t;',
      '2_i.up.sql': '-- orion:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);',
      '2_i.down.sql': '-- orion:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS t_x;',
      '3_u.up.sql': 'CREATE TABLE u (x int);',
      '3_u.down.sql': 'DROP TABLE u;',
    });
    expect((await runCli(['migrate', '--database-url', url, '--migrations', dir])).code).toBe(0);
    const ledgerBefore = await query(url, `SELECT id, status FROM orion_schema_history ORDER BY id`);
    const run = await runCli(['down', '--to', '1', '--dry-run', '--database-url', url, '--migrations', dir, '--json']);
    expect(run.code).toBe(0);
    expect(run.json()).toMatchObject({
      dry_run: true,
      from_version: '3',
      to_version: '3',
      applied: [{ version: '3' }],
      skipped: [
        { version: '2', name: 'i', reason: expect.stringMatching(/outside a transaction: it cannot be rehearsed/) },
      ],
    });
    expect(run.stderr).toMatch(/would revert 3 u/);
    expect(run.stderr).not.toMatch(/^reverted/m);
    expect(await query(url, `SELECT to_regclass('t_x') IS NOT NULL AS kept`)).toEqual([{ kept: true }]);
    expect(await tableNames(url)).toEqual(['orion_schema_history', 't', 'u']);
    expect(await query(url, `SELECT id, status FROM orion_schema_history ORDER BY id`)).toEqual(ledgerBefore);
    const text = await runCli(['down', '--to', '1', '--dry-run', '--database-url', url, '--migrations', dir]);
    expect(text.stdout).toMatch(/would revert 1[\s\S]*skipped 2 i: /);
  });

  test('migrate --dry-run says "would apply", never "applied", and leaves no trace', async () => {
    const { url } = await createDatabase();
    const run = await runCli(['migrate', '--dry-run', '--database-url', url, '--migrations', SOP_MIGRATIONS]);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/would apply 1 init_schema/);
    expect(run.stderr + run.stdout).not.toMatch(/\bapplied\b/);
    // 000002 builds its indexes CONCURRENTLY, outside a transaction: not rehearsed, and said so.
    expect(run.stdout).toMatch(
      /would apply 1, [\s\S]*skipped 2 activities_start_time_speaker_idx: .*outside a transaction/,
    );
    expect(await tableNames(url)).toEqual([]);
  });

  test('no password in any output: wrong password, and a failing run', async () => {
    const { url } = await createDatabase();
    const secret = 'S3cr3t-pa55word';
    const wrong = url.replace(/:[^:@/]+@/, `:${secret}@`);
    const run = await runCli(['migrate', '--database-url', wrong, '--migrations', SOP_MIGRATIONS, '--json']);
    expect(run.code).toBe(2);
    expect(run.json().errors[0].message).toMatch(/password authentication failed|could not connect/);
    expect(run.stdout + run.stderr).not.toContain(secret);
    expect(run.stdout).toContain('***');
    const text = await runCli(['status', '--database-url', wrong, '--migrations', SOP_MIGRATIONS]);
    expect(text.stdout + text.stderr).not.toContain(secret);
  });

  test('sslmode in the URL is honoured: requiring TLS from a server without it is a clear error', async () => {
    const { url } = await createDatabase();
    const run = await runCli([
      'status',
      '--database-url',
      `${url}?sslmode=require`,
      '--migrations',
      SOP_MIGRATIONS,
      '--json',
    ]);
    expect(run.code).toBe(2);
    expect(run.json().errors[0].message).toMatch(/does not support SSL/);
  });

  test('an unreachable host fails within the connect timeout, not a hang', async () => {
    const started = Date.now();
    const run = await runCli([
      'status',
      '--database-url',
      'postgres://u:p@127.0.0.1:1/db',
      '--migrations',
      SOP_MIGRATIONS,
      '--json',
    ]);
    expect(run.code).toBe(2);
    const error = run.json().errors[0];
    expect(error.message).toMatch(
      /^could not connect to 127\.0\.0\.1:1: connection refused .*postgres:\/\/u:\*\*\*@127\.0\.0\.1:1\/db/,
    );
    expect(error.sqlstate).toBeUndefined(); // ECONNREFUSED is the network's word, not a SQLSTATE
    const text = await runCli(['status', '--database-url', 'postgres://u:p@127.0.0.1:1/db']);
    expect(text.stderr).toMatch(/^error: could not connect to 127\.0\.0\.1:1: connection refused/m);
    expect(text.stderr).not.toMatch(/SQLSTATE|current version/);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  test('a folder whose .sql files match no layout (only schema.sql) exits 2 naming them, never "nothing to do"', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({ 'schema.sql': 'CREATE TABLE a (id int);', 'README.md': '# notes' });
    for (const command of ['plan', 'migrate', 'status']) {
      const run = await runCli([command, '--database-url', url, '--migrations', dir]);
      expect(run.code, command).toBe(2);
      expect(run.stderr, command).toMatch(/schema\.sql: /);
      expect(`${run.stdout}${run.stderr}`, command).not.toMatch(/nothing to do/);
      const json = await runCli([command, '--database-url', url, '--migrations', dir, '--json']);
      expect(json.json().errors.map((e: { file?: string }) => e.file)).toEqual(['schema.sql']);
    }
    expect(await tableNames(url)).toEqual([]);
  });

  test('usage errors exit 2: unknown command, unknown flag, no database', async () => {
    expect((await runCli(['migrat'])).code).toBe(2);
    const flag = await runCli(['migrate', '--databse-url', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/Unknown option '--databse-url'/);
    // From a folder without .orion/, where no local server can be the default.
    const elsewhere = { cwd: migrationsDir({}) };
    const none = await runCli(['status', '--migrations', SOP_MIGRATIONS, '--json'], elsewhere);
    expect(none.code).toBe(2);
    expect(none.json().errors[0].message).toMatch(/no database given/);
    const text = await runCli(['status', '--migrations', SOP_MIGRATIONS], elsewhere);
    expect(text.stderr).toMatch(/^error: no database given/);
    expect(text.stdout + text.stderr).not.toMatch(/current version/);
  });

  test('new creates the next-numbered pair, which is refused until it has SQL', async () => {
    const dir = migrationsDir({ '000007_a.up.sql': 'SELECT 1;' });
    const run = await runCli(['new', 'add_users', '--migrations', dir, '--json']);
    expect(run.code).toBe(0);
    expect(run.json().files).toEqual(['000008_add_users.up.sql', '000008_add_users.down.sql']);
    expect(readdirSync(dir).sort()).toEqual([
      '000007_a.up.sql',
      '000008_add_users.down.sql',
      '000008_add_users.up.sql',
    ]);
    expect(readFileSync(join(dir, '000008_add_users.up.sql'), 'utf8')).toMatch(/^-- add_users/);
    expect((await runCli(['new', 'Bad Name', '--migrations', dir])).code).toBe(2);
  });
});
