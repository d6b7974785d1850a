/**
 * The first hour of a new user (issue #22): help, honest summaries, the last failure, the naming rule,
 * lint warnings on migrate — each through the built CLI, as a person runs it.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { COMMAND_HELP } from '../../cli/help';
import { MAX_LINE } from '../../cli/text';
import { MIGRATION_NAME_RULE, parseFileName } from '../../lambda/engine/files';
import { runCli } from '../helpers/cli';
import { createDatabase, migrationsDir, query, tableNames } from '../helpers/db';

/** A folder without .orion/, so no local server can be the default database. */
const elsewhere = () => ({ cwd: migrationsDir({}) });

describe('help', () => {
  test.each([['--help'], ['-h'], ['help']])('orion-db %s prints the usage on stdout and exits 0', async (flag) => {
    const run = await runCli([flag], elsewhere());
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^Usage: orion-db <command> \[options\]/);
    expect(run.stdout).not.toMatch(/error/);
    for (const command of Object.keys(COMMAND_HELP)) expect(run.stdout).toMatch(new RegExp(`^ {2}${command} `, 'm'));
  });

  test.each(Object.keys(COMMAND_HELP))('orion-db %s --help: its flags and an example, exit 0', async (command) => {
    const run = await runCli([command, '--help'], elsewhere());
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(new RegExp(`^Usage: orion-db ${command}`));
    expect(run.stdout).toMatch(/\nOptions:\n {2}\S/);
    expect(run.stdout).toMatch(new RegExp(`\\nExample:\\n {2}orion-db ${command}`));
    for (const line of run.stdout.split('\n')) expect(line.length).toBeLessThanOrEqual(MAX_LINE);
  });

  test('a help request runs nothing: no connection, no "current version", no unknown option', async () => {
    const status = await runCli(['status', '--help'], elsewhere());
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/--database-url URL/);
    expect(status.stdout + status.stderr).not.toMatch(/current version|Unknown option|no database given/);
    // Would exit 2 (connection refused) if it connected; -h works after other flags too.
    const migrate = await runCli(['migrate', '--database-url', 'postgres://u:p@127.0.0.1:1/db', '-h'], elsewhere());
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toMatch(/^Usage: orion-db migrate/);
    expect(migrate.stderr).toBe('');
    const topic = await runCli(['help', 'down'], elsewhere());
    expect(topic.stdout).toMatch(/^Usage: orion-db down --to VERSION/);
  });

  test('no command at all is still a usage error (exit 2), with the usage', async () => {
    const run = await runCli([], elsewhere());
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/Usage: orion-db <command>/);
  });
});

describe('summaries that agree with the state', () => {
  test('after down --to, its pending count is the one status shows', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '1_a.down.sql': 'DROP TABLE a;',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
      '2_b.down.sql': 'DROP TABLE b;',
      '3_c.up.sql': 'CREATE TABLE c (id int);',
      '3_c.down.sql': 'DROP TABLE c;',
    });
    expect((await runCli(['migrate', '--database-url', url, '--migrations', dir])).code).toBe(0);
    const down = await runCli(['down', '--to', '1', '--database-url', url, '--migrations', dir, '--json']);
    expect(down.code, down.stderr).toBe(0);
    const status = (await runCli(['status', '--database-url', url, '--migrations', dir, '--json'])).json();
    expect(status.pending.map((p: any) => p.version)).toEqual(['2', '3']);
    expect(down.json()).toMatchObject({ from_version: '3', to_version: '1', pending: status.pending });
    expect(down.json().reverted.map((r: any) => r.version)).toEqual(['3', '2']);
    await runCli(['migrate', '--database-url', url, '--migrations', dir]);
    const text = await runCli(['down', '--to', '2', '--database-url', url, '--migrations', dir]);
    expect(text.stdout).toMatch(/^ok: 3 → 2, reverted 1, pending 1$/m);
  });

  test('status after a failed attempt shows the last failure from the ledger: when, where, SQLSTATE, message', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '000001_a.up.sql': 'CREATE TABLE a (id int);',
      '000002_b.up.sql': 'CREATE TABLE b (id int);\nSELECT 1/0;',
    });
    await runCli(['migrate', '--database-url', url, '--migrations', dir, '--to', '1']);
    const before = new Date();
    expect((await runCli(['migrate', '--database-url', url, '--migrations', dir])).code).toBe(1);
    const status = await runCli(['status', '--database-url', url, '--migrations', dir, '--json']);
    expect(status.code).toBe(0);
    const failure = status.json().last_failure;
    expect(failure).toMatchObject({
      version: '2',
      name: 'b',
      file: '000002_b.up.sql',
      line: 2,
      sqlstate: '22012',
      message: 'division by zero',
    });
    expect(new Date(failure.at).getTime()).toBeGreaterThanOrEqual(before.getTime() - 60_000);
    const text = await runCli(['status', '--database-url', url, '--migrations', dir]);
    expect(text.stdout).toMatch(
      /^ {2}pending {2}2 b\n {2}last failure: 000002_b\.up\.sql:2 at \d{4}-\d\d-\d\dT[\d:.]+Z: SQLSTATE 22012: division by zero$/m,
    );
    // Fixed and applied: the failure no longer explains anything pending.
    writeFileSync(join(dir, '000002_b.up.sql'), 'CREATE TABLE b (id int);');
    expect((await runCli(['migrate', '--database-url', url, '--migrations', dir])).code).toBe(0);
    const after = await runCli(['status', '--database-url', url, '--migrations', dir, '--json']);
    expect(after.json().last_failure).toBeUndefined();
  });

  test('config errors are one sentence, never a stack trace: a corrupt .orion/secrets.json', async () => {
    const project = migrationsDir({});
    mkdirSync(join(project, '.orion'));
    writeFileSync(join(project, '.orion', 'secrets.json'), '{not json');
    mkdirSync(join(project, 'migrations'));
    const run = await runCli(['up'], { cwd: project });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^error: .*\.orion\/secrets\.json is not valid JSON .*: restore it, or delete \.orion\//m,
    );
    expect(run.stderr).not.toMatch(/internal error|\n\s+at |FAILED|current version/);
    const status = await runCli(['status'], { cwd: project });
    expect(status.code).toBe(2);
    expect(status.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('verify says what it compared', () => {
  test('a 5 % sample that matched is reported as that, not as "the databases match"; a difference names the comparison', async () => {
    const rows = `CREATE TABLE t (id int PRIMARY KEY, v text);
                  INSERT INTO t SELECT i, 'row ' || i FROM generate_series(1, 50) i;`;
    const from = await createDatabase();
    const to = await createDatabase();
    await query(from.url, rows);
    await query(to.url, rows);
    const same = await runCli(['verify', '--from', from.url, '--to', to.url, '--sample', '0.05'], elsewhere());
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(
      /^ok: row counts match in 1 table\(s\); a 5 % sample \(\d+ rows\) matched value for value;/m,
    );
    expect(same.stdout).not.toMatch(/databases match/);
    await query(to.url, `UPDATE t SET v = 'changed' WHERE id = 7`);
    const changed = await runCli(['verify', '--from', from.url, '--to', to.url, '--sample', '1'], elsewhere());
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(
      /^FAILED: compared row counts in 1 table\(s\) and a 100 % sample \(50 rows\) value for value: 1 difference\(s\)$/m,
    );
    expect(changed.stderr).toMatch(/^error: table t: .*id=7 differs in v/m);
  });

  test('a database URL that is not one says what one looks like', async () => {
    const run = await runCli(['status', '--database-url', 'orion_prod', '--migrations', '.'], elsewhere());
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^error: invalid database URL: expected postgres:\/\/USER:PASSWORD@HOST:PORT\/DATABASE$/m,
    );
  });
});

describe('orion-db new: one naming rule, the loader’s', () => {
  test.each(['add.location', 'add-location', 'Add_Location2'])(
    'accepts %s, and the loader reads it back',
    async (name) => {
      const dir = migrationsDir({ '000001_a.up.sql': 'SELECT 1;' });
      const run = await runCli(['new', name, '--migrations', dir, '--json'], elsewhere());
      expect(run.code, run.stderr).toBe(0);
      const up = `000002_${name}.up.sql`;
      expect(run.json().files).toEqual([up, `000002_${name}.down.sql`]);
      expect(parseFileName(up)).toEqual({ version: 2n, name, direction: 'up' });
      expect(readdirSync(dir)).toContain(up);
    },
  );

  test.each(['a b', 'quote"d', 'ünïcode', 'semi;colon'])('refuses %s, stating the rule', async (name) => {
    const dir = migrationsDir({});
    const run = await runCli(['new', name, '--migrations', dir], elsewhere());
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`may use only ${MIGRATION_NAME_RULE}`);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('migrate warns about what cdk synth refuses', () => {
  test('a dangerous pending statement is a warning on stderr with its safe alternative; the run goes on', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int, title varchar(20));',
      '1_a.down.sql': 'DROP TABLE a;',
      '2_b.up.sql': 'ALTER TABLE a ALTER COLUMN title TYPE varchar(10);',
      '2_b.down.sql': 'ALTER TABLE a ALTER COLUMN title TYPE varchar(20);',
    });
    await runCli(['migrate', '--database-url', url, '--migrations', dir, '--to', '1']);
    const run = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ ok: true, applied: [{ version: '2' }] }); // stdout: the one report
    expect(run.stderr).toMatch(
      /^warning: 2_b\.up\.sql:1: changing-column-type: [\s\S]+?\n {2}cdk synth refuses this; instead: Add a column [\s\S]+?\n {2}\(or allow it with "-- orion:allow changing-column-type" in the file\)$/m,
    );
    expect(run.stderr).not.toMatch(/1_a\.up\.sql/); // applied files are not linted again
    for (const line of run.stderr.split('\n')) expect(line.length).toBeLessThanOrEqual(MAX_LINE);
    expect(await tableNames(url)).toEqual(['a', 'orion_schema_history']);
  });
});
