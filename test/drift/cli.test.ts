/**
 * `orion-db drift` as a process, as the RDS-like master on a database the lifecycle deployed: exit
 * codes, --json, the grouped text, orion-drift.json, the lock, --dev-url, and the scratch databases.
 */
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MIGRATION_LOCK_KEY } from '../../lambda/engine/lock';
import { runCli } from '../helpers/cli';
import { adminQuery, adminUrl, client, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { EVERY_KIND } from './helpers';

let fixture: DeployFixture;
let dir: string;
let url: string;

beforeAll(async () => {
  fixture = deployFixture();
  dir = migrationsDir(EVERY_KIND);
  const outcome = await fixture.deploy(dir);
  expect(outcome.report.errors).toEqual([]);
  url = (await fixture.master()).url(fixture.roles.database);
});

afterAll(async () => {
  await fixture?.cleanup();
});

const drift = (args: string[] = [], migrations = dir) =>
  runCli(['drift', '--database-url', url, '--migrations', migrations, '--role', fixture.roles.owner, ...args]);

const asOwner = (sql: string) => adminQuery(`SET ROLE "${fixture.roles.owner}"; ${sql}`, [], fixture.roles.database);

async function scratchDatabases(): Promise<string[]> {
  const rows = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE 'orion\\_drift\\_%'`);
  return rows.map((r) => r.datname);
}

describe('orion-db drift', () => {
  test('a clean database: exit 0, one JSON document with no drift, the lockdown applied to the reference', async () => {
    const run = await drift(['--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ ok: true, command: 'drift', to_version: '2', drift: [], locked_down: true });
    const text = await drift();
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^no drift: the database is what its 2 applied migration\(s\) make \(version 2\)/m);
  });

  test('hand changes: exit 1, grouped by kind with expected, actual and the fix; --json lists each', async () => {
    await asOwner(`CREATE INDEX rogue_idx ON items (title); GRANT SELECT ON items TO PUBLIC`);
    try {
      const run = await drift(['--json']);
      expect(run.code, run.stderr).toBe(1);
      expect(run.json().drift).toEqual([
        {
          kind: 'index',
          object: 'public.rogue_idx',
          expected: null,
          actual: 'CREATE INDEX rogue_idx ON public.items USING btree (title)',
          fix: 'DROP INDEX public.rogue_idx;',
        },
        {
          kind: 'grant',
          object: 'table public.items to PUBLIC',
          expected: null,
          actual: 'SELECT',
          fix: 'REVOKE SELECT ON TABLE public.items FROM PUBLIC;',
        },
      ]);
      const text = await drift();
      expect(text.code).toBe(1);
      expect(text.stderr).toContain('DRIFT: 2 difference(s) from the 2 applied migration(s) (version 2)');
      expect(text.stderr).toContain(
        'index (1)\n  public.rogue_idx: not made by the migrations\n    actual:   CREATE INDEX rogue_idx ON public.items USING btree (title)\n    fix:      DROP INDEX public.rogue_idx;',
      );
      expect(text.stderr).toContain('grant (1)\n  table public.items to PUBLIC: not made by the migrations');
    } finally {
      await asOwner(`DROP INDEX rogue_idx; REVOKE SELECT ON items FROM PUBLIC`);
    }
  });

  test('orion-drift.json: a listed exception is not drift; an unknown key is exit 2 naming the file', async () => {
    const project = mkdtempSync(join(tmpdir(), 'orion-drift-'));
    cpSync(dir, project, { recursive: true });
    await asOwner(`CREATE INDEX reporting_idx ON items (created_at)`);
    try {
      writeFileSync(
        join(project, 'orion-drift.json'),
        JSON.stringify({ ignore: [{ kind: 'index', object: 'public.reporting_*', reason: 'the analytics team' }] }),
      );
      const run = await drift(['--json'], project);
      expect(run.code, run.stderr).toBe(0);
      expect(run.json()).toMatchObject({ drift: [], exceptions: 1 });
      writeFileSync(join(project, 'orion-drift.json'), JSON.stringify({ ignore: [{ objet: 'public.reporting_*' }] }));
      const bad = await drift(['--json'], project);
      expect(bad.code).toBe(2);
      expect(bad.json().errors[0]).toMatchObject({
        file: join(project, 'orion-drift.json'),
        message: expect.stringContaining('ignore[0]: unknown key "objet"'),
      });
    } finally {
      await asOwner(`DROP INDEX reporting_idx`);
    }
  });

  test('the migration lock held by a migration: exit 3 naming the holder', async () => {
    const holder = await client(url);
    try {
      await holder.query(`SET application_name = 'a long migration'`);
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
      const run = await drift(['--lock-timeout', '1s']);
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/held by pid \d+ \(application_name "a long migration"\)/);
    } finally {
      await holder.end();
    }
  });

  test('--dev-url builds the reference on another server (here: as its superuser), with the same result', async () => {
    await asOwner(`ALTER TABLE items ALTER COLUMN title SET DEFAULT 'untitled'`);
    try {
      const run = await drift(['--dev-url', adminUrl(), '--json']);
      expect(run.code, run.stderr).toBe(1);
      expect(run.json().drift).toEqual([
        {
          kind: 'column',
          object: 'public.items.title',
          expected: 'text NOT NULL',
          actual: "text NOT NULL DEFAULT 'untitled'::text",
          fix: 'ALTER TABLE public.items ALTER COLUMN title DROP DEFAULT;',
        },
      ]);
    } finally {
      await asOwner(`ALTER TABLE items ALTER COLUMN title DROP DEFAULT`);
    }
  });

  test("a killed run's scratch database (marked, old, nobody connected) is dropped by the next run; others are not", async () => {
    const master = await fixture.master();
    const old = (Date.now() - 60 * 60_000).toString(36);
    const leftover = `orion_drift_${old}_abc123`;
    const unmarked = `orion_drift_${old}_def456`;
    const fresh = `orion_drift_${Date.now().toString(36)}_aaa111`;
    const asMaster = (sql: string) => client(master.url('postgres')).then((c) => c.query(sql).finally(() => c.end()));
    for (const name of [leftover, unmarked, fresh]) await asMaster(`CREATE DATABASE "${name}"`);
    for (const name of [leftover, fresh])
      await asMaster(`COMMENT ON DATABASE "${name}" IS 'orion-db drift scratch database, created earlier'`);
    try {
      const run = await drift();
      expect(run.code, run.stderr).toBe(0);
      // Said by this run, unless a drift check of another test file running beside it came first.
      if (!run.stderr.includes(`dropped ${leftover}`)) console.warn(`${leftover} was dropped by a concurrent run`);
      const left = await scratchDatabases();
      expect(left).not.toContain(leftover);
      expect(left).toEqual(expect.arrayContaining([unmarked, fresh]));
    } finally {
      for (const name of [leftover, unmarked, fresh]) await adminQuery(`DROP DATABASE IF EXISTS "${name}"`);
    }
  });

  test('a replay that fails (a migration that needed a hand-made table) is exit 2, and its scratch database is gone', async () => {
    const f = deployFixture();
    try {
      await f.deploy(migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int)' }));
      await f.asMaster(`SET ROLE "${f.roles.owner}"; CREATE TABLE by_hand (id int)`);
      const dir2 = migrationsDir({
        '1_a.up.sql': 'CREATE TABLE a (id int)',
        '2_b.up.sql': 'ALTER TABLE by_hand ADD COLUMN note text',
      });
      expect((await f.deploy(dir2)).report.errors).toEqual([]);
      const run = await runCli([
        'drift',
        '--database-url',
        (await f.master()).url(f.roles.database),
        '--migrations',
        dir2,
        '--role',
        f.roles.owner,
        '--json',
      ]);
      expect(run.code).toBe(2);
      expect(run.json().errors[0].message).toMatch(
        /^the reference could not be built: replaying the applied migrations into a scratch database failed: .*2_b\.up\.sql.*by_hand/,
      );
      const scratch = /into the scratch database (orion_drift_\w+)/.exec(run.stderr)?.[1];
      expect(scratch).toBeDefined();
      expect(await scratchDatabases()).not.toContain(scratch);
    } finally {
      await f.cleanup();
    }
  });
});

test('a user who may not create the scratch database: exit 2 saying what it needs', async () => {
  const role = `drift_plain_${process.pid}`;
  await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'plain-pw'`);
  try {
    await adminQuery(`GRANT CONNECT ON DATABASE "${fixture.roles.database}" TO ${role}`);
    // It may read the ledger and the schema (a read-only on-call user), not create anything.
    await adminQuery(
      `GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON orion_schema_history TO ${role}`,
      [],
      fixture.roles.database,
    );
    const u = new URL(url);
    u.username = role;
    u.password = 'plain-pw';
    const run = await runCli(['drift', '--database-url', u.toString(), '--migrations', dir, '--json']);
    expect(run.code, run.stdout).toBe(2);
    expect(run.json().errors[0].message).toMatch(
      /^the reference needs a scratch database on the server, which this user may not: create database; connect as a user with CREATEDB, or build it elsewhere with --dev-url/,
    );
  } finally {
    await adminQuery(`DROP OWNED BY ${role}`, [], fixture.roles.database);
    await adminQuery(`REVOKE ALL ON DATABASE "${fixture.roles.database}" FROM ${role}`);
    await adminQuery(`DROP ROLE ${role}`);
  }
});
