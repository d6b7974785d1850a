/**
 * Faults: killed processes, dropped connections, a restarted server, concurrent deploys, lock
 * contention. Every case checks the database afterwards: at the pre-run version or fully migrated,
 * and the ledger agreeing with the schema.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { loadMigrations } from '../../lambda/engine/files';
import { CREATE_LEDGER } from '../../lambda/engine/ledger';
import { MIGRATION_LOCK_KEY } from '../../lambda/engine/lock';
import { migrate } from '../../lambda/engine/migrate';
import { startEmbeddedServer } from '../../lambda/local/embedded-server';
import { CLI, runCli } from '../helpers/cli';
import { adminQuery, client, createDatabase, migrationsDir, query, tableNames } from '../helpers/db';
import { cuttingProxy } from '../helpers/proxy';

/** Sleeps only while the database has `orion.test_sleep` set: the same file is slow, then fast. */
const SLEEP = `SELECT pg_sleep(coalesce(nullif(current_setting('orion.test_sleep', true), ''), '0')::float)`;

async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function sleeping(database: string): Promise<boolean> {
  const rows = await adminQuery(
    `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(coalesce%' AND state = 'active' AND pid <> pg_backend_pid()`,
    [database],
  );
  return rows.length > 0;
}

async function ledger(url: string) {
  return query(url, `SELECT version::int, status, statements_done, message FROM orion_schema_history ORDER BY id`);
}

async function lockIsFree(url: string): Promise<boolean> {
  const c = await client(url);
  try {
    const { rows } = await c.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [MIGRATION_LOCK_KEY.toString()]);
    return rows[0].ok;
  } finally {
    await c.end();
  }
}

describe('process killed mid-migration (a Lambda timing out)', () => {
  test('inside a transactional batch: pre-run version, lock freed, attempt on record, re-run succeeds', async () => {
    const { name, url } = await createDatabase();
    await adminQuery(`ALTER DATABASE "${name}" SET orion.test_sleep = '30'`);
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '2_slow.up.sql': `CREATE TABLE b (id int);\n${SLEEP};`,
    });
    const child = spawn(process.execPath, [CLI, 'migrate', '--database-url', url, '--migrations', dir], {
      stdio: 'ignore',
    });
    await waitFor(() => sleeping(name), 'the batch to reach pg_sleep');
    child.kill('SIGKILL');
    await waitFor(async () => !(await sleeping(name)), 'the server to notice the dead client and roll back');
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    expect(await lockIsFree(url)).toBe(true);
    expect(await ledger(url)).toEqual([
      { version: 1, status: 'failed', statements_done: null, message: expect.stringMatching(/^interrupted/) },
    ]);

    await adminQuery(`ALTER DATABASE "${name}" RESET orion.test_sleep`);
    const rerun = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(rerun.code).toBe(0);
    expect(rerun.json().applied.map((a: any) => a.version)).toEqual(['1', '2']);
    expect(await tableNames(url)).toEqual(['a', 'b', 'orion_schema_history']);
  });

  test('between statements of a non-transactional file: the re-run resumes where it stopped', async () => {
    const { name, url } = await createDatabase();
    // The ledger first: objects in a database without one are a hand-built schema (refused without --baseline).
    await query(url, `${CREATE_LEDGER}; CREATE TABLE t (x int, y int)`);
    await adminQuery(`ALTER DATABASE "${name}" SET orion.test_sleep = '30'`);
    const dir = migrationsDir({
      '1_idx.up.sql': `-- orion:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);\n${SLEEP};\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_y ON t (y);`,
    });
    const child = spawn(process.execPath, [CLI, 'migrate', '--database-url', url, '--migrations', dir], {
      stdio: 'ignore',
    });
    await waitFor(() => sleeping(name), 'the second statement');
    child.kill('SIGKILL');
    await waitFor(async () => !(await sleeping(name)), 'the backend to go');
    expect(await ledger(url)).toEqual([{ version: 1, status: 'incomplete', statements_done: 1, message: null }]);
    expect(
      (await query(url, `SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1`)).map((r) => r.indexname),
    ).toEqual(['t_x']);

    await adminQuery(`ALTER DATABASE "${name}" RESET orion.test_sleep`);
    const status = await runCli(['status', '--database-url', url, '--migrations', dir, '--json']);
    expect(status.json().incomplete).toEqual([{ version: '1', name: 'idx', statements_done: 1 }]);
    const rerun = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(rerun.code).toBe(0);
    expect(
      (await query(url, `SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1`)).map((r) => r.indexname),
    ).toEqual(['t_x', 't_y']);
    expect((await ledger(url)).map((r) => r.status)).toEqual(['applied']);
  });
});

describe('connection dropped (a proxy cuts it)', () => {
  async function throughProxy(url: string, cut: RegExp) {
    const u = new URL(url);
    const proxy = await cuttingProxy({ host: u.hostname, port: Number(u.port) });
    proxy.cutAfter(cut);
    u.host = `127.0.0.1:${proxy.port}`;
    const c = new Client({ connectionString: u.toString() });
    c.on('error', () => {});
    await c.connect();
    return { proxy, client: c };
  }

  test('mid-batch: a clear error, and the database is at the pre-run version', async () => {
    const { name, url } = await createDatabase();
    await adminQuery(`ALTER DATABASE "${name}" SET orion.test_sleep = '0.5'`);
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '2_b.up.sql': `CREATE TABLE b (id int);\n${SLEEP};`,
    });
    const { proxy, client: c } = await throughProxy(url, /pg_sleep\(coalesce/);
    const result = await migrate(c, await loadMigrations(dir));
    await proxy.close();
    expect(proxy.cuts).toBe(1);
    expect(result.connectionLost).toBe(true);
    expect(result.error!.message).toMatch(
      /^2_b\.up\.sql: Connection terminated unexpectedly — while running the batch 1_a\.up\.sql, 2_b\.up\.sql: it either committed whole or not at all/,
    );
    await waitFor(async () => !(await sleeping(name)), 'the cut backend to go');
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    expect((await ledger(url)).map((r) => [r.status, r.message?.slice(0, 11)])).toEqual([['failed', 'interrupted']]);
  });

  test('mid-commit: either committed with its ledger rows or not at all, never a ledger that disagrees', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '2_b.up.sql': 'CREATE TABLE b (id int);' });
    const { proxy, client: c } = await throughProxy(url, /COMMIT/);
    const result = await migrate(c, await loadMigrations(dir));
    await proxy.close();
    expect(result.error!.message).toMatch(
      /it either committed whole or not at all; run "orion-db status" to see which/,
    );
    const tables = await tableNames(url);
    const applied = (await ledger(url)).filter((r) => r.status === 'applied').map((r) => r.version);
    if (applied.length) expect(tables).toEqual(['a', 'b', 'orion_schema_history']);
    else expect(tables).toEqual(['orion_schema_history']);
    expect([0, 2]).toContain(applied.length);
    // Either way the next run finishes the job exactly once.
    expect((await runCli(['migrate', '--database-url', url, '--migrations', dir])).code).toBe(0);
    expect((await ledger(url)).filter((r) => r.status === 'applied').map((r) => r.version)).toEqual([1, 2]);
  });
});

describe('server restarted mid-run', () => {
  const base = mkdtempSync(join(tmpdir(), 'orion-restart-'));
  chmodSync(base, 0o755);
  let stop: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await stop?.();
  });

  test('the run fails clearly, nothing is half-applied, and the re-run succeeds', async () => {
    const options = { dataDir: join(base, 'data'), password: 'restart-pw', fast: false };
    let server = await startEmbeddedServer(options);
    stop = server.stop;
    const url = server.url.replace(/\/postgres$/, '/app');
    const admin = new Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`CREATE DATABASE app`);
    await admin.query(`ALTER DATABASE app SET orion.test_sleep = '30'`);
    await admin.end();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '2_b.up.sql': `CREATE TABLE b (id int);\n${SLEEP};`,
    });
    const c = new Client({ connectionString: url });
    c.on('error', () => {});
    await c.connect();
    const running = migrate(c, await loadMigrations(dir));
    await waitFor(async () => {
      const probe = new Client({ connectionString: server.url });
      await probe.connect();
      const { rows } = await probe.query(
        `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(coalesce%' AND pid <> pg_backend_pid()`,
      );
      await probe.end();
      return rows.length > 0;
    }, 'pg_sleep');
    await server.stop({ keepData: true });
    const result = await running;
    expect(result.error).toBeDefined();
    // The server's own words, not the broken connection's; and it said why, so nobody runs it again on their own.
    expect(result.error!.message).toMatch(/SQLSTATE 57P01: terminating connection due to administrator command/);
    expect(result.connectionLost).toBe(false);
    server = await startEmbeddedServer({ ...options, port: server.port });
    stop = server.stop;
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    const fix = new Client({ connectionString: server.url });
    await fix.connect();
    await fix.query(`ALTER DATABASE app RESET orion.test_sleep`);
    await fix.end();
    const rerun = await runCli(['migrate', '--database-url', url, '--migrations', dir, '--json']);
    expect(rerun.code).toBe(0);
    expect(await tableNames(url)).toEqual(['a', 'b', 'orion_schema_history']);
  });
});

describe('concurrent deploys', () => {
  test('8 runners at once: each migration applied exactly once, the ledger intact', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);\nSELECT pg_sleep(0.3);',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
      '3_c.up.sql': 'CREATE TABLE c (id int);',
    });
    const runs = await Promise.all(
      Array.from({ length: 8 }, () => runCli(['migrate', '--database-url', url, '--migrations', dir, '--json'])),
    );
    expect(runs.map((r) => r.code)).toEqual(Array(8).fill(0));
    const applied = runs.flatMap((r) => r.json().applied.map((a: any) => a.version)).sort();
    expect(applied).toEqual(['1', '2', '3']);
    expect((await ledger(url)).map((r) => [r.version, r.status])).toEqual([
      [1, 'applied'],
      [2, 'applied'],
      [3, 'applied'],
    ]);
  });

  test('with a short lock timeout the others exit 3 naming the holder, and nothing is applied twice', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);\nSELECT pg_sleep(1);' });
    const runs = await Promise.all(
      Array.from({ length: 8 }, () =>
        runCli(['migrate', '--database-url', url, '--migrations', dir, '--lock-timeout', '200ms', '--json']),
      ),
    );
    const codes = runs.map((r) => r.code).sort();
    expect(codes.filter((c) => c === 0).length).toBeGreaterThanOrEqual(1);
    expect(codes.every((c) => c === 0 || c === 3)).toBe(true);
    for (const r of runs.filter((x) => x.code === 3))
      expect(r.json().errors[0].message).toMatch(/held by pid \d+ \(application_name "orion-db migrate"\)/);
    expect((await ledger(url)).filter((r) => r.status === 'applied')).toHaveLength(1);
  });
});

describe('lock contention', () => {
  test('a migration blocked by a long transaction fails fast, the application is not stuck behind it, and the report names the lock', async () => {
    const { url } = await createDatabase();
    // The ledger first: objects in a database without one are a hand-built schema (refused without --baseline).
    await query(url, `${CREATE_LEDGER}; CREATE TABLE activities (id int); INSERT INTO activities VALUES (1)`);
    const holder = await client(url);
    await holder.query(`SET application_name = 'report-job'`);
    await holder.query('BEGIN; SELECT count(*) FROM activities'); // a long read holds ACCESS SHARE
    const app = await client(url);
    try {
      const dir = migrationsDir({
        '1_alter.up.sql': '-- orion:lock-timeout 300ms\nALTER TABLE activities ADD COLUMN note text;',
      });
      const started = Date.now();
      const c = await client(url);
      const running = migrate(c, await loadMigrations(dir), { lockRetries: 2 }).finally(() => c.end());
      // While the ALTER waits for its ACCESS EXCLUSIVE lock, application reads queue behind it — for at most its lock_timeout.
      await new Promise((r) => setTimeout(r, 100));
      const appStarted = Date.now();
      await app.query('SELECT count(*) FROM activities');
      const appWaited = Date.now() - appStarted;
      const result = await running;
      const took = Date.now() - started;
      expect(appWaited).toBeLessThan(2_000); // bounded by the lock timeout, not by the long transaction (which never ends here)
      expect(result.error).toMatchObject({ file: '1_alter.up.sql', line: 2, sqlstate: '55P03' });
      expect(result.error!.message).toMatch(
        /lock timeout: waiting for a lock on activities held by pid \d+ "report-job" \(AccessShareLock\)/,
      );
      expect(took).toBeLessThan(3 * 300 + 200 + 400 + 1500); // three attempts and two backoffs, bounded
      expect(
        (
          await query(url, `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'activities'`)
        )[0].n,
      ).toBe(1);
    } finally {
      await holder.end();
      await app.end();
    }
  });
});
