/**
 * A hand-built database (#15 §3–4): Orion's orion_prod as the SOP (seed 000) builds it — the master
 * runs section 1's DDL, the application's role gets GRANT ALL and creates a table of its own, a row
 * is written — taken over with `orion-db up --baseline 1` as RDS's master: the schema is proven equal
 * to migration 1, recorded as adopted, its objects given to the owner role, the application's hand-made
 * rights corrected by the lockdown, the row kept, and a later ALTER TABLE activities applied.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli';
import { adminQuery, adminUrl, insertActivities, query, SOP_MIGRATIONS, tableNames, uniqueName } from '../helpers/db';
import { rdsMaster } from '../helpers/rds';

const databases: string[] = [];
afterAll(async () => {
  for (const db of databases) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
});

function superUrl(database: string) {
  const u = new URL(adminUrl());
  u.pathname = `/${database}`;
  return u.toString();
}

/** Section 1's DDL, as the SOP gives it (CREATE TABLE IF NOT EXISTS, as the application runs it at start-up). */
const SOP_TABLES = readFileSync(join(SOP_MIGRATIONS, '000001_init_schema.up.sql'), 'utf8')
  .split('\n')
  .filter((l) => !l.startsWith('--'))
  .join('\n');

/** orion_prod as the SOP leaves it: tables by the master, GRANT ALL to orion_app, which made viewer_entries itself. */
async function sopDatabase(): Promise<string> {
  const master = await rdsMaster();
  const database = uniqueName('orion_prod');
  databases.push(database);
  await query(master.url(), `CREATE DATABASE "${database}"`);
  const exists = await adminQuery(`SELECT 1 FROM pg_roles WHERE rolname = 'orion_app'`);
  if (!exists.length) await query(master.url(), `CREATE ROLE orion_app WITH LOGIN PASSWORD 'sop-strong-password'`);
  await query(master.url(database), `GRANT ALL PRIVILEGES ON DATABASE "${database}" TO orion_app`);
  // Run as the master: activities and activity_tokens are the master's.
  const [first, rest] = SOP_TABLES.split('CREATE TABLE IF NOT EXISTS viewer_entries');
  await query(master.url(database), first);
  // The application made viewer_entries at start-up (the schema let it, as public did before PostgreSQL 15).
  await query(
    master.url(database),
    `GRANT CREATE ON SCHEMA public TO orion_app; GRANT ALL ON ALL TABLES IN SCHEMA public TO orion_app`,
  );
  await query(superUrl(database), `SET ROLE orion_app; CREATE TABLE IF NOT EXISTS viewer_entries${rest}`);
  await query(superUrl(database), insertActivities('Keynote'));
  return database;
}

/** A project folder with migration 000001 (the SOP's schema) and the given later ones. */
function project(extra: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'orion-baseline-'));
  cpSync(join(SOP_MIGRATIONS, '000001_init_schema.up.sql'), join(dir, 'migrations', '000001_init_schema.up.sql'), {
    recursive: true,
  });
  for (const [name, sql] of Object.entries(extra)) writeFileSync(join(dir, 'migrations', name), sql);
  return dir;
}

const owners = (database: string) =>
  query(
    superUrl(database),
    `SELECT c.relname, pg_get_userbyid(c.relowner) AS owner FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' AND c.relname <> 'orion_schema_history' ORDER BY 1`,
  );

describe('the SOP hand-built orion_prod under orion-db up --baseline 1', () => {
  test('without --baseline: refused (exit 2) listing what exists, nothing changed', async () => {
    const database = await sopDatabase();
    const master = await rdsMaster();
    const run = await runCli(['up', '--database-url', master.url(database), '--json'], { cwd: project() });
    expect(run.code, run.stderr).toBe(2);
    const message = run.json().errors[0].message;
    expect(message).toContain('3 object(s) but no orion-db ledger');
    expect(message).toContain('table activities, table activity_tokens, table viewer_entries');
    expect(message).toContain('--baseline V');
    expect(await tableNames(superUrl(database))).toEqual(['activities', 'activity_tokens', 'viewer_entries']);
  });

  test('adopted, owned by the owner role, locked down, the row kept; a later ALTER TABLE activities applies', async () => {
    const database = await sopDatabase();
    const master = await rdsMaster();
    const dir = project();
    const run = await runCli(['up', '--database-url', master.url(database), '--baseline', '1', '--json'], { cwd: dir });
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({ ok: true, from_version: '1', to_version: '1', applied: [], layout: 'orion' });
    expect(report.adopted).toEqual({
      from: 'baseline',
      recorded: true,
      migrations: [{ version: '000001', name: 'init_schema', applied_at: null }],
    });
    expect(report.ownership_taken).toEqual(
      expect.arrayContaining([
        `table public.activities (was ${master.username}'s)`,
        "table public.viewer_entries (was orion_app's)",
      ]),
    );
    expect(report.lockdown.ok).toBe(true);
    expect(report.lockdown.corrected).toEqual(
      expect.arrayContaining([expect.stringMatching(/^orion_app had direct grants: /)]),
    );
    expect(await owners(database)).toEqual([
      { relname: 'activities', owner: 'orion_owner' },
      { relname: 'activity_tokens', owner: 'orion_owner' },
      { relname: 'viewer_entries', owner: 'orion_owner' },
    ]);
    // The application's hand-made rights are gone; what it keeps is the group's read/write.
    const rights = await query(
      superUrl(database),
      `SELECT has_database_privilege('orion_app', current_database(), 'CREATE') AS db_create,
              has_schema_privilege('orion_app', 'public', 'CREATE') AS schema_create,
              has_table_privilege('orion_app', 'activities', 'TRUNCATE') AS truncate,
              has_table_privilege('orion_app', 'activities', 'INSERT') AS insert`,
    );
    expect(rights).toEqual([{ db_create: false, schema_create: false, truncate: false, insert: true }]);
    expect(await query(superUrl(database), `SELECT title FROM activities`)).toEqual([{ title: 'Keynote' }]);
    const ledger = await query(superUrl(database), `SELECT version, adopted_from FROM orion_schema_history`);
    expect(ledger).toEqual([{ version: '1', adopted_from: 'baseline' }]);

    // No drift on the adopted database: it is what its (one, adopted) migration makes, lockdown included.
    const drift = await runCli(
      ['drift', '--database-url', master.url(database), '--migrations', join(dir, 'migrations')],
      {
        cwd: dir,
      },
    );
    expect(drift.code, drift.stdout + drift.stderr).toBe(0);

    // The next deploy, with the CDK's baselineVersion still set: an ordinary run that alters an adopted table.
    writeFileSync(
      join(dir, 'migrations', '000002_activities_language_note.up.sql'),
      'ALTER TABLE activities ADD COLUMN language_note TEXT;\n',
    );
    const next = await runCli(['up', '--database-url', master.url(database), '--baseline', '1', '--json'], {
      cwd: dir,
    });
    expect(next.code, next.stderr).toBe(0);
    expect(next.json()).toMatchObject({ ok: true, from_version: '1', to_version: '2', applied: [{ version: '2' }] });
    expect(next.json().adopted).toBeUndefined();
    expect(await query(superUrl(database), `SELECT title, language_note FROM activities`)).toEqual([
      { title: 'Keynote', language_note: null },
    ]);
  });

  test('a schema that differs from the migrations is refused, naming the difference; nothing changed', async () => {
    const database = await sopDatabase();
    await query(
      superUrl(database),
      'ALTER TABLE activities ALTER COLUMN speaker DROP NOT NULL; CREATE INDEX extra_idx ON activities (title)',
    );
    const master = await rdsMaster();
    const run = await runCli(['up', '--database-url', master.url(database), '--baseline', '1', '--json'], {
      cwd: project(),
    });
    expect(run.code, run.stderr).toBe(2);
    const message = run.json().errors[0].message;
    expect(message).toContain("--baseline 1: the database's schema is not what migrations up to 1 make");
    expect(message).toMatch(/column public\.activities\.speaker: the migrations make .*not null/i);
    expect(message).toMatch(/index public\.extra_idx: in the database, not made by the migrations/);
    expect(await tableNames(superUrl(database))).toEqual(['activities', 'activity_tokens', 'viewer_entries']);
    expect(await owners(database)).toContainEqual({ relname: 'viewer_entries', owner: 'orion_app' });
  });
});
