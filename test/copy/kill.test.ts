/**
 * `orion-db copy` killed with SIGKILL mid-table and mid-batch, then run again with the same
 * checkpoint: every row arrives exactly once (checked by count and by key). From SQLite (rows read
 * and converted here) and from PostgreSQL with the same column types (the source's COPY text
 * streamed into the target's COPY unread).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { CLI, runCli } from '../helpers/cli';
import { client, createDatabase, query } from '../helpers/db';
import { sqliteFile } from '../helpers/sqlite';

const ROWS = 60_000;

function source(): string {
  return sqliteFile(`
    CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT);
    INSERT INTO kinds VALUES (1, 'a'), (2, 'b'), (3, 'c');
    CREATE TABLE events (id INTEGER PRIMARY KEY, kind INTEGER, payload TEXT, at TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
    INSERT INTO events SELECT i, i % 3 + 1, printf('%d: %s', i, hex(randomblob(40))), datetime(1700000000 + i, 'unixepoch') FROM n;`);
}

const SCHEMA = `CREATE TABLE kinds (id int PRIMARY KEY, name text);
  CREATE TABLE events (id bigint PRIMARY KEY, kind int NOT NULL REFERENCES kinds (id), payload text NOT NULL,
                       at timestamptz NOT NULL)`;

async function targetDb(): Promise<{ name: string; url: string }> {
  const db = await createDatabase('orion_kill');
  await query(db.url, SCHEMA);
  return db;
}

/** The same rows in PostgreSQL, with the target's column types (so the copy streams them). */
async function postgresSource(): Promise<{ name: string; url: string }> {
  const db = await targetDb();
  await query(
    db.url,
    `INSERT INTO kinds VALUES (1, 'a'), (2, 'b'), (3, 'c');
     INSERT INTO events SELECT i, i % 3 + 1, i || E': tab\there, new\nline, back\\slash ' || md5(i::text),
                               '2023-11-14T22:13:20Z'::timestamptz + i * interval '1 second'
       FROM generate_series(1, ${ROWS}) i`,
  );
  return db;
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: 'ignore', env: { ...process.env, DATABASE_URL: undefined } });
}

function progressOf(checkpoint: string): { rows: number; pending: { rows: number } | null } | undefined {
  if (!existsSync(checkpoint)) return undefined;
  try {
    return JSON.parse(readFileSync(checkpoint, 'utf8')).progress.events;
  } catch {
    return undefined; // replaced between our stat and read
  }
}

/** Polls until `ready` holds (or the child ends), then kills the child with SIGKILL. */
async function killWhen(child: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (await ready()) {
      child.kill('SIGKILL');
      await exited;
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`the copy ended (exit ${child.exitCode}) before the moment to kill it came`);
}

/** The killed process's session is gone from the server (its transaction rolled back). */
async function sessionGone(db: { name: string; url: string }): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const rows = await query(
      db.url,
      `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'orion-db copy'`,
      [db.name],
    );
    if (!rows.length) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('the killed copy session is still on the server');
}

async function expectExactlyOnce(url: string): Promise<void> {
  expect(
    await query(
      url,
      `SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, min(id)::int AS lo, max(id)::int AS hi,
                             sum(id)::bigint::text AS s FROM events`,
    ),
  ).toEqual([{ n: ROWS, d: ROWS, lo: 1, hi: ROWS, s: String((ROWS * (ROWS + 1)) / 2) }]);
  expect(await query(url, `SELECT convalidated AS valid FROM pg_constraint WHERE contype = 'f'`)).toEqual([
    { valid: true },
  ]);
}

describe('orion-db copy survives SIGKILL', () => {
  test('killed mid-batch (COPY in flight): that batch rolls back, the re-run resumes exactly there', async () => {
    const path = source();
    const db = await targetDb();
    const checkpoint = join(dirname(path), 'checkpoint.json');
    const args = [
      'copy',
      '--from',
      `sqlite:///${path}`,
      '--to',
      db.url,
      '--batch-size',
      '20000',
      '--checkpoint',
      checkpoint,
    ];
    const child = start(args);
    await killWhen(child, async () => {
      const p = progressOf(checkpoint);
      if (!p?.pending || p.rows < 20_000) return false;
      const copying = await query(
        db.url,
        `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'orion-db copy'
            AND state = 'active' AND query LIKE '%COPY % FROM STDIN%'`,
        [db.name],
      );
      return copying.length > 0;
    });
    await sessionGone(db);
    const afterKill = progressOf(checkpoint)!;
    const [{ n }] = await query(db.url, 'SELECT count(*)::int AS n FROM events');
    // The batch in flight either committed whole or not at all, and the foreign key it set aside is in place.
    expect([afterKill.rows, afterKill.rows + afterKill.pending!.rows]).toContain(n);
    expect(await query(db.url, `SELECT conname FROM pg_constraint WHERE contype = 'f'`)).toEqual([
      { conname: 'events_kind_fkey' },
    ]);
    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({
      resumed: true,
      tables: [{ table: 'kinds' }, { table: 'events', resumed_from: n, copied: ROWS - n }],
    });
    await expectExactlyOnce(db.url);
    const verify = await runCli(['verify', '--from', `sqlite:///${path}`, '--to', db.url, '--sample', '1']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  test('killed mid-table twice, at whatever point it had reached; the third run completes exactly once', async () => {
    const path = source();
    const db = await targetDb();
    const checkpoint = join(dirname(path), 'checkpoint.json');
    const args = [
      'copy',
      '--from',
      `sqlite:///${path}`,
      '--to',
      db.url,
      '--batch-size',
      '500',
      '--checkpoint',
      checkpoint,
    ];
    for (const atLeast of [5_000, 30_000]) {
      await killWhen(start(args), async () => (progressOf(checkpoint)?.rows ?? 0) >= atLeast);
      await sessionGone(db);
      const [{ n }] = await query(db.url, 'SELECT count(*)::int AS n FROM events');
      expect(n).toBeGreaterThanOrEqual(atLeast);
      expect(n).toBeLessThan(ROWS);
    }
    const [{ n: before }] = await query(db.url, 'SELECT count(*)::int AS n FROM events');
    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json().tables).toMatchObject([
      { table: 'kinds', copied: 0 },
      { table: 'events', resumed_from: before, copied: ROWS - before },
    ]);
    await expectExactlyOnce(db.url);
  });

  test('from PostgreSQL, streamed: killed mid-batch and mid-table, the third run completes exactly once', async () => {
    const source = await postgresSource();
    const db = await targetDb();
    const checkpoint = join(dirname(sqliteFile('CREATE TABLE x (a)')), 'pg-checkpoint.json');
    const args = ['copy', '--from', source.url, '--to', db.url, '--batch-size', '2000', '--checkpoint', checkpoint];
    // Mid-batch: the source's COPY (SELECT …) TO STDOUT is streaming into the target's COPY FROM STDIN.
    // Polled on one open session: a new connection per poll can miss a batch on a busy machine.
    const watcher = await client(db.url);
    const streaming = async () => {
      if ((progressOf(checkpoint)?.rows ?? 0) < 10_000) return false;
      const { rows } = await watcher.query(
        `SELECT count(*) FILTER (WHERE datname = $1 AND query LIKE 'COPY (SELECT%TO STDOUT') AS out,
                count(*) FILTER (WHERE datname = $2 AND query LIKE '%COPY % FROM STDIN%') AS into
           FROM pg_stat_activity WHERE application_name LIKE 'orion-db copy%' AND state = 'active'`,
        [source.name, db.name],
      );
      // pg_stat_activity is read once per transaction; each query here is its own.
      return Number(rows[0].out) > 0 && Number(rows[0].into) > 0;
    };
    // Mid-table: wherever it has got to.
    const further = async () => (progressOf(checkpoint)?.rows ?? 0) >= 30_000;
    for (const ready of [streaming, further]) {
      await killWhen(start(args), ready).finally(() => (ready === streaming ? watcher.end() : undefined));
      await sessionGone(db);
      const after = progressOf(checkpoint)!;
      const [{ n }] = await query(db.url, 'SELECT count(*)::int AS n FROM events');
      // Committed batches only: the one in flight committed whole (its last key found) or not at all.
      expect([after.rows, after.rows + (after.pending?.rows ?? 0)]).toContain(n);
      expect(n).toBeLessThan(ROWS);
      expect(await query(db.url, `SELECT conname FROM pg_constraint WHERE contype = 'f'`)).toEqual([
        { conname: 'events_kind_fkey' },
      ]);
    }
    const [{ n: before }] = await query(db.url, 'SELECT count(*)::int AS n FROM events');
    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({
      resumed: true,
      batch_size: 2000,
      tables: [
        { table: 'kinds', copied: 0 },
        { table: 'events', resumed_from: before, copied: ROWS - before },
      ],
    });
    await expectExactlyOnce(db.url);
    // By key, and every value as it was (the escapes in the payload made it through COPY text twice).
    const diff = await query(
      db.url,
      `SELECT count(*)::int AS n FROM events t
         FULL JOIN (SELECT i::bigint AS id, i % 3 + 1 AS kind,
                           i || E': tab\there, new\nline, back\\slash ' || md5(i::text) AS payload,
                           '2023-11-14T22:13:20Z'::timestamptz + i * interval '1 second' AS at
                      FROM generate_series(1, ${ROWS}) i) s USING (id)
        WHERE (t.kind, t.payload, t.at) IS DISTINCT FROM (s.kind, s.payload, s.at)`,
    );
    expect(diff).toEqual([{ n: 0 }]);
    const verify = await runCli(['verify', '--from', source.url, '--to', db.url, '--sample', '1']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});
