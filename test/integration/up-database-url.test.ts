/**
 * `orion-db up --database-url` against a server it did not start (the suite's server, as a shared
 * staging server would be), connecting as the RDS-like master; and `orion-db migrate` from a laptop
 * on a database the lifecycle manages. The lifecycle's role names are the defaults (orion_owner,
 * orion_app_rw, orion_app): cluster-wide, shared by these tests, which run one after the other.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { ensureLedger } from '../../lambda/engine/ledger';
import { findPgDumps } from '../../lambda/local/dump-snapshots';
import { runCli } from '../helpers/cli';
import { adminQuery, adminUrl, client, query, SOP_MIGRATIONS, tableNames, uniqueName } from '../helpers/db';
import { rdsMaster } from '../helpers/rds';

const databases: string[] = [];
afterAll(async () => {
  for (const db of databases) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
});

/** A project folder (for .orion/) with the SOP's migrations plus `extra`, and a database name for it. */
function project(extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'orion-up-url-'));
  cpSync(SOP_MIGRATIONS, join(dir, 'migrations'), { recursive: true });
  for (const [name, sql] of Object.entries(extra)) writeFileSync(join(dir, 'migrations', name), sql);
  const database = uniqueName('legacy2');
  databases.push(database);
  return { dir, database };
}

async function masterUrl(database: string) {
  return (await rdsMaster()).url(database);
}

function superUrl(database: string) {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

async function appPassword(): Promise<string | null> {
  const rows = await adminQuery(`SELECT rolpassword FROM pg_authid WHERE rolname = 'orion_app'`);
  return rows[0]?.rolpassword ?? null;
}

async function serverMajor(): Promise<number> {
  return Math.floor((await adminQuery(`SELECT current_setting('server_version_num')::int AS n`))[0].n / 10000);
}

describe('orion-db up --database-url (a server it did not start)', () => {
  test('works in the database the URL names, as the RDS-like master; ends no session; sets no password; backs up no empty database', async () => {
    const { dir, database } = project();
    const master = await rdsMaster();
    await query(master.url(), `CREATE DATABASE "${database}"`); // as the staging server's owner made it
    const other = await client(superUrl(database)); // someone else's session
    other.on('error', () => {});
    const passwordBefore = await appPassword();
    try {
      const run = await runCli(['up', '--database-url', await masterUrl(database), '--json'], { cwd: dir });
      expect(run.code, run.stderr).toBe(0);
      const report = run.json();
      expect(report).toMatchObject({ ok: true, from_version: null, to_version: '2', snapshot: null, errors: [] });
      expect(report.notes).toEqual([
        'no backup taken: the database has no tables yet',
        "no connection probe as orion_app: its password is not the secret's to set here (catalog read-back only)",
      ]);
      expect(report.lockdown.ok).toBe(true);
      expect(report.app_url).toBe(redactedAppUrl(database));
      expect(await tableNames(superUrl(database))).toEqual(
        expect.arrayContaining(['activities', 'activity_tokens', 'viewer_entries']),
      );
      expect((await other.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]); // not terminated
      expect(await appPassword()).toBe(passwordBefore);
      expect(JSON.stringify(report) + run.stderr).not.toContain(master.password);
    } finally {
      await other.end().catch(() => {});
    }
  });

  test('--set-app-password sets orion_app from .orion/secrets.json, and the deploy then probes as orion_app', async () => {
    const { dir, database } = project();
    const run = await runCli(['up', '--database-url', await masterUrl(database), '--set-app-password', '--json'], {
      cwd: dir,
    });
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report.lockdown.checks.map((c: { name: string }) => c.name)).toContain(
      'app connection is refused CREATE DATABASE',
    );
    expect(report.notes).toEqual(['no backup taken: the database has no tables yet']);
    const { appPassword: password } = JSON.parse(
      (await import('node:fs')).readFileSync(join(dir, '.orion', 'secrets.json'), 'utf8'),
    );
    const u = new URL(superUrl(database));
    u.username = 'orion_app';
    u.password = password;
    const app = await client(u.toString());
    await app.query('SELECT count(*) FROM activities');
    await app.end();
  });

  test('no backup when the pending migrations run in one transaction; else pg_dump first when a compatible one exists, or a refusal before anything runs', async () => {
    const { dir, database } = project();
    const url = await masterUrl(database);
    expect((await runCli(['up', '--database-url', url], { cwd: dir })).code).toBe(0);
    const other = await client(superUrl(database)); // someone else's session, which must survive
    other.on('error', () => {});
    try {
      writeFileSync(join(dir, 'migrations', '000003_speakers.up.sql'), 'CREATE TABLE speakers (id int);\n');
      const transactional = await runCli(['up', '--database-url', url, '--json'], { cwd: dir });
      expect(transactional.code, transactional.stderr).toBe(0);
      expect(transactional.json()).toMatchObject({
        ok: true,
        from_version: '2',
        to_version: '3',
        snapshot: null,
        notes: [
          'no backup taken: the pending migrations run in one transaction, so a failure rolls back whole',
          expect.stringMatching(/^no connection probe/),
        ],
      });

      writeFileSync(
        join(dir, 'migrations', '000004_title_idx.up.sql'),
        '-- orion:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS activities_title ON activities (title);\n',
      );
      const run = await runCli(['up', '--database-url', url, '--json'], { cwd: dir });
      const major = await serverMajor();
      const compatible = findPgDumps().find((d) => d.major >= major);
      if (compatible) {
        expect(run.code, run.stderr).toBe(0);
        const report = run.json();
        expect(report).toMatchObject({ ok: true, from_version: '3', to_version: '4' });
        expect(report.snapshot).toMatch(/^orion-local-pre-local-/);
        const dumps = readdirSync(join(dir, '.orion', 'backups')).filter((f) => f.endsWith('.dump'));
        expect(dumps).toEqual([`${report.snapshot}.dump`]);
        // A real custom-format archive of the database before the migration.
        const { spawnSync } = await import('node:child_process');
        const list = spawnSync(compatible.path.replace(/pg_dump$/, 'pg_restore'), [
          '--list',
          join(dir, '.orion', 'backups', dumps[0]),
        ]);
        expect(list.status).toBe(0);
        expect(list.stdout.toString()).toMatch(/TABLE public speakers /);
      } else {
        expect(run.code).toBe(2);
        expect(run.json().errors[0].message).toMatch(
          new RegExp(
            `^the pending migrations do not all run in one transaction, so orion-db up backs ${database} up first with pg_dump ${major} or newer .*found .*Install PostgreSQL ${major}'s client programs, or apply it with "orion-db migrate"`,
          ),
        );
        expect(
          await query(
            superUrl(database),
            `SELECT max(version)::int AS v FROM orion_schema_history WHERE status = 'applied'`,
          ),
        ).toEqual([{ v: 3 }]);
        expect(existsSync(join(dir, '.orion', 'backups'))).toBe(false);
      }
      expect((await other.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    } finally {
      await other.end().catch(() => {});
    }
  });

  test('a URL naming the maintenance database is refused, saying why; nothing is created', async () => {
    const { dir } = project();
    const run = await runCli(['up', '--database-url', await masterUrl('postgres'), '--json'], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.json().errors[0].message).toMatch(
      /^--database-url names "postgres", a database PostgreSQL keeps for itself: name the application's database/,
    );
    expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  test('drift the master cannot undo is one clear report line and exit 1, never a stack trace', async () => {
    const { dir, database } = project();
    const url = await masterUrl(database);
    expect((await runCli(['up', '--database-url', url], { cwd: dir })).code).toBe(0);
    await adminQuery(`ALTER ROLE orion_app BYPASSRLS`);
    try {
      const run = await runCli(['up', '--database-url', url], { cwd: dir });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^FAILED: 2 → 2, applied 0, pending 0$/m);
      expect(run.stderr).toMatch(
        /^error: lockdown check failed: orion_app has no SUPERUSER\/CREATEDB\/CREATEROLE\/REPLICATION\/BYPASSRLS \(BYPASSRLS: only a superuser can clear it \(ALTER ROLE orion_app NOBYPASSRLS\)\)$/m,
      );
      expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
    } finally {
      await adminQuery(`ALTER ROLE orion_app NOBYPASSRLS`);
    }
  });

  test('an unexpected refusal by the server (a ledger the master may not read) is one sentence with its SQLSTATE', async () => {
    const { dir, database } = project();
    const master = await rdsMaster();
    await query(master.url(), `CREATE DATABASE "${database}"`);
    // Another administrator's ledger (a superuser's, here), which the master was never granted.
    const other = await client(superUrl(database));
    await ensureLedger(other).finally(() => other.end());
    const run = await runCli(['up', '--database-url', await masterUrl(database)], { cwd: dir });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^error: SQLSTATE 42501: deploy failed: permission denied for table orion_schema_history$/m,
    );
    expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});

describe('orion-db migrate from a laptop, then the Lambda (the same lifecycle as up)', () => {
  const alter = { '000004_speakers_bio.up.sql': 'ALTER TABLE speakers ADD COLUMN bio text;' };
  const speakers = { '000003_speakers.up.sql': 'CREATE TABLE speakers (id int PRIMARY KEY, name text);' };

  test('migrate runs as the owner role, so the later deploy may alter what the laptop created', async () => {
    const { dir, database } = project();
    const url = await masterUrl(database);
    expect((await runCli(['up', '--database-url', url], { cwd: dir })).code).toBe(0); // the first deploy
    for (const [f, sql] of Object.entries(speakers)) writeFileSync(join(dir, 'migrations', f), sql);
    const laptop = await runCli(['migrate', '--database-url', url, '--migrations', join(dir, 'migrations')]);
    expect(laptop.code, laptop.stderr).toBe(0);
    expect(laptop.stderr).toContain(
      "running the migrations as orion_owner, the schema's owner (--no-role runs them as orion_test_master)",
    );
    expect(await query(superUrl(database), `SELECT tableowner FROM pg_tables WHERE tablename = 'speakers'`)).toEqual([
      { tableowner: 'orion_owner' },
    ]);
    for (const [f, sql] of Object.entries(alter)) writeFileSync(join(dir, 'migrations', f), sql);
    const lambda = await runCli(['up', '--database-url', url, '--json'], { cwd: dir });
    expect(lambda.code, lambda.stderr).toBe(0);
    expect(lambda.json()).toMatchObject({ ok: true, from_version: '3', to_version: '4' });
  });

  test('--no-role runs as the connecting user: the table is the laptop user’s, and the deploy may not alter it', async () => {
    const { dir, database } = project();
    const url = await masterUrl(database);
    expect((await runCli(['up', '--database-url', url], { cwd: dir })).code).toBe(0);
    for (const [f, sql] of Object.entries(speakers)) writeFileSync(join(dir, 'migrations', f), sql);
    const laptop = await runCli([
      'migrate',
      '--no-role',
      '--database-url',
      url,
      '--migrations',
      join(dir, 'migrations'),
    ]);
    expect(laptop.code, laptop.stderr).toBe(0);
    expect(await query(superUrl(database), `SELECT tableowner FROM pg_tables WHERE tablename = 'speakers'`)).toEqual([
      { tableowner: 'orion_test_master' },
    ]);
    for (const [f, sql] of Object.entries(alter)) writeFileSync(join(dir, 'migrations', f), sql);
    const lambda = await runCli(['up', '--database-url', url, '--json'], { cwd: dir });
    expect(lambda.code).toBe(1);
    expect(lambda.json().errors).toEqual([
      {
        file: '000004_speakers_bio.up.sql',
        line: 1,
        sqlstate: '42501',
        message: 'must be owner of table speakers',
      },
    ]);
  });

  test('--role names the role; one the user may not SET ROLE to is refused before anything runs', async () => {
    const { dir, database } = project();
    const url = await masterUrl(database);
    expect((await runCli(['up', '--database-url', url], { cwd: dir })).code).toBe(0);
    const migrations = join(dir, 'migrations');
    writeFileSync(join(migrations, '000003_speakers.up.sql'), speakers['000003_speakers.up.sql']);
    writeFileSync(join(migrations, '000003_speakers.down.sql'), 'DROP TABLE speakers;');
    const cli = (...args: string[]) => runCli([...args, '--database-url', url, '--migrations', migrations]);
    const missing = await cli('migrate', '--role', 'nobody_here');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^error: --role nobody_here: no such role on this server$/m);
    const someoneElse = uniqueName('someone_else');
    await adminQuery(`CREATE ROLE "${someoneElse}" NOLOGIN`);
    try {
      const notMine = await cli('migrate', '--role', someoneElse);
      expect(notMine.code).toBe(2);
      expect(notMine.stderr).toMatch(
        new RegExp(
          `^error: --role ${someoneElse}: orion_test_master may not SET ROLE to it \\(GRANT it first\\)$`,
          'm',
        ),
      );
    } finally {
      await adminQuery(`DROP ROLE "${someoneElse}"`);
    }
    expect(await tableNames(superUrl(database))).not.toContain('speakers');
    const applied = await cli('migrate', '--role', 'orion_owner');
    expect(applied.code, applied.stderr).toBe(0);
    const reverted = await cli('down', '--to', '2', '--role', 'orion_owner');
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(await tableNames(superUrl(database))).not.toContain('speakers');
  });
});

function redactedAppUrl(database: string): string {
  const u = new URL(adminUrl());
  u.username = 'orion_app';
  u.password = '';
  u.pathname = `/${database}`;
  return u.toString();
}
