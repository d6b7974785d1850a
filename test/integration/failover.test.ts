/**
 * #14 §4: the migration's session ends mid-run, as RDS ends it. A reboot or failover (the server
 * restarts: 57P01 to every session) resumes once from the ledger; an operator's pg_terminate_backend
 * (57P01 too, same server) fails the deploy and retries nothing; a socket gone silent on a server that
 * did not restart (a partition) ends the old session and resumes once. Lifecycle level, RDS-like master.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { connect, sessionEndedByServer } from '../../lambda/engine/db';
import { endOldSession, serverSession, sessionEnd } from '../../lambda/lifecycle/failover';
import { type EmbeddedServer, startEmbeddedServer } from '../../lambda/local/embedded-server';
import { adminQuery, adminUrl, client, createDatabase, migrationsDir, query, tableNames } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { cuttingProxy } from '../helpers/proxy';
import { RDS_MASTER } from '../helpers/rds';

/** Sleeps only in sessions that have `orion.test_sleep` set: the migration is slow once, then fast. */
const SLEEP = `SELECT pg_sleep(coalesce(nullif(current_setting('orion.test_sleep', true), ''), '0')::float)`;

async function waitFor(probe: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pid of the session running `pattern` in `database`, once it runs. */
async function runningPid(url: string, database: string, pattern: string): Promise<number> {
  let pid = 0;
  await waitFor(async () => {
    const rows = await query(
      url,
      `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE $2 AND state = 'active' AND pid <> pg_backend_pid()`,
      [database, `%${pattern}%`],
    );
    pid = rows[0]?.pid ?? 0;
    return pid > 0;
  }, pattern);
  return pid;
}

async function ledger(url: string) {
  return query(url, `SELECT version::int, status FROM orion_schema_history ORDER BY id`);
}

let fixture: DeployFixture | undefined;
let server: EmbeddedServer | undefined;
afterEach(async () => {
  await fixture?.cleanup().catch(() => {});
  await server?.stop();
  fixture = server = undefined;
});

describe('the migration’s session ends mid-run', () => {
  test('the server restarts (a reboot or failover): the deploy reconnects, sees a new start time and resumes once from the ledger', async () => {
    const base = mkdtempSync(join(tmpdir(), 'orion-failover-'));
    chmodSync(base, 0o755);
    const options = { dataDir: join(base, 'data'), password: 'failover-pw' };
    server = await startEmbeddedServer(options);
    fixture = deployFixture({ adminUrl: server.url });
    await fixture.master(); // the RDS-like master, on this private server
    // Only sessions opened from now on sleep; the reset below keeps the resumed run from sleeping.
    await query(server.url, `ALTER ROLE ${RDS_MASTER} SET orion.test_sleep = '60'`);
    const dir = migrationsDir({
      '000001_a.up.sql': 'CREATE TABLE a (id int);',
      '000002_b.up.sql': `CREATE TABLE b (id int);\n${SLEEP};`,
    });
    const logs: string[] = [];
    const running = fixture.deploy(dir, { snapshotWhen: 'non-transactional', log: (m) => logs.push(m) });
    await runningPid(server.url, fixture.roles.database, 'pg_sleep(coalesce');
    await query(server.url, `ALTER ROLE ${RDS_MASTER} RESET orion.test_sleep`);
    await server.stop({ keepData: true }); // pg_ctl stop -m fast: the session gets 57P01
    server = await startEmbeddedServer({ ...options, port: server.port });

    const outcome = await running;
    expect(outcome.status).toBe('complete');
    const report = outcome.report;
    expect(report).toMatchObject({ ok: true, from_version: null, to_version: '2', errors: [] });
    expect(report.applied.map((a) => a.version)).toEqual(['1', '2']);
    expect(report.session_ended).toMatchObject({ cause: 'restart', error: expect.stringMatching(/57P01/) });
    const ended = report.session_ended as { server_before: { startedAt: string }; server_after: { startedAt: string } };
    expect(ended.server_after.startedAt).not.toBe(ended.server_before.startedAt);
    expect(report.notes).toEqual(
      expect.arrayContaining([expect.stringMatching(/^the server restarted \(a reboot or failover.*resumed once/)]),
    );
    expect(logs).toEqual(expect.arrayContaining([expect.stringMatching(/^the server restarted/)]));
    // Exactly once: one applied row per version (the interrupted attempt stays on record as failed).
    const rows = await ledger(fixture.targetUrl);
    expect(rows.filter((r) => r.status === 'applied')).toEqual([
      { version: 1, status: 'applied' },
      { version: 2, status: 'applied' },
    ]);
    expect(await tableNames(fixture.targetUrl)).toEqual(['a', 'b', 'orion_schema_history']);
  });

  test('an operator ends the session (pg_terminate_backend): the deploy fails saying so, and nothing is retried', async () => {
    fixture = deployFixture();
    const dir = migrationsDir({
      '000001_a.up.sql': 'CREATE TABLE a (id int);',
      '000002_b.up.sql': 'CREATE TABLE b (id int);\nSELECT pg_sleep(60);',
    });
    const running = fixture.deploy(dir, { snapshotWhen: 'non-transactional' });
    const pid = await runningPid(adminUrl(), fixture.roles.database, 'pg_sleep(60)');
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);

    const outcome = await running;
    expect(outcome.status).toBe('complete');
    const report = outcome.report;
    expect(report).toMatchObject({ ok: false, from_version: null, to_version: null, applied: [] });
    expect(report.session_ended).toMatchObject({ cause: 'operator' });
    expect(report.errors).toEqual([
      expect.objectContaining({
        sqlstate: '57P01',
        message: expect.stringMatching(
          /terminating connection due to administrator command: an operator ended the migration's session \(pg_terminate_backend: the server did not restart.*\); nothing was retried$/,
        ),
      }),
    ]);
    // Not run again: the batch rolled back, nothing applied, and no session of this deploy is left running it.
    expect((await ledger(fixture.targetUrl)).filter((r) => r.status === 'applied')).toEqual([]);
    expect(await tableNames(fixture.targetUrl)).toEqual(['orion_schema_history']);
    const sleeping = await adminQuery(
      `SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()`,
      [fixture.roles.database],
    );
    expect(sleeping).toEqual([]);
  });

  test('an operator ends a non-transactional migration after a statement committed: not retried, the snapshot is restored', async () => {
    fixture = deployFixture();
    const first = { '000001_a.up.sql': 'CREATE TABLE a (id int);' };
    expect((await fixture.deploy(migrationsDir(first))).report.ok).toBe(true);
    const dir = migrationsDir({
      ...first,
      '000002_b.up.sql': '-- orion:no-transaction\nCREATE TABLE b (id int);\nSELECT pg_sleep(60);',
    });
    const running = fixture.deploy(dir);
    const pid = await runningPid(adminUrl(), fixture.roles.database, 'pg_sleep(60)');
    await adminQuery('SELECT pg_terminate_backend($1)', [pid]);

    const outcome = await running;
    expect(outcome.status).toBe('complete');
    expect(outcome.report).toMatchObject({ ok: false, restored: true, session_ended: { cause: 'operator' } });
    expect(outcome.report.errors[0].message).toMatch(
      /an operator ended the migration's session .*nothing was retried$/,
    );
    // b's first statement had committed (no 'applied' row says so): the database is the snapshot's again,
    // not "unchanged" with b in it.
    expect(await tableNames(fixture.targetUrl)).toEqual(['a', 'orion_schema_history']);
  });

  test('the socket goes silent and the server did not restart (a partition): the old session is ended, the deploy resumes once', async () => {
    fixture = deployFixture();
    const admin = new URL(adminUrl());
    const proxy = await cuttingProxy({ host: admin.hostname, port: Number(admin.port) });
    const viaProxy = new URL(fixture.serverUrl);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    try {
      proxy.silenceAt(/CREATE TABLE silent_b/);
      const dir = migrationsDir({
        '000001_a.up.sql': 'CREATE TABLE silent_a (id int);',
        '000002_b.up.sql': 'CREATE TABLE silent_b (id int);',
      });
      const outcome = await fixture.deploy(dir, {
        serverUrl: viaProxy.toString(),
        snapshotWhen: 'non-transactional',
        queryTimeoutMs: 8_000, // what the deadline plus a margin is in the Lambda
        run: { lockWaitMs: 10_000 }, // the old session would hold the migration lock past this
      });
      expect(outcome.status).toBe('complete');
      const report = outcome.report;
      expect(report).toMatchObject({ ok: true, to_version: '2', errors: [] });
      expect(report.applied.map((a) => a.version)).toEqual(['1', '2']);
      expect(report.session_ended).toMatchObject({ cause: 'network', error: expect.stringMatching(/read timeout/i) });
      expect(report.notes).toEqual(
        expect.arrayContaining([expect.stringMatching(/the server did not restart .*the old session was ended/)]),
      );
      expect((await ledger(fixture.targetUrl)).filter((r) => r.status === 'applied')).toHaveLength(2);
      expect(await tableNames(fixture.targetUrl)).toEqual(['orion_schema_history', 'silent_a', 'silent_b']);
    } finally {
      await proxy.close();
    }
  });
});

describe('a non-transactional migration whose connection is lost between a statement and its progress (review B1)', () => {
  /** The deploy through a proxy that goes silent at the first query matching `at`. */
  async function throughSilence(at: RegExp, first: Record<string, string>, files: Record<string, string>) {
    fixture = deployFixture();
    expect((await fixture.deploy(migrationsDir(first))).report.ok).toBe(true);
    const admin = new URL(adminUrl());
    const proxy = await cuttingProxy({ host: admin.hostname, port: Number(admin.port) });
    const via = new URL(fixture.serverUrl);
    via.host = `127.0.0.1:${proxy.port}`;
    proxy.silenceAt(at);
    const dir = migrationsDir({ ...first, ...files });
    const run = fixture.deploy(dir, { serverUrl: via.toString(), queryTimeoutMs: 5_000, run: { lockWaitMs: 10_000 } });
    return run.finally(() => proxy.close());
  }

  test('a statement that can run in a transaction commits with its progress: resumed, it is not applied twice', async () => {
    const first = { '000001_a.up.sql': 'CREATE TABLE counter (n int);' };
    const outcome = await throughSilence(/SET statements_done = 1 /, first, {
      '000002_b.up.sql': '-- orion:no-transaction\nINSERT INTO counter VALUES (1);\nINSERT INTO counter VALUES (2);',
    });
    expect(outcome.report).toMatchObject({
      ok: true,
      to_version: '2',
      errors: [],
      session_ended: { cause: 'network' },
    });
    expect((await query(fixture!.targetUrl, 'SELECT n FROM counter ORDER BY n')).map((r) => r.n)).toEqual([1, 2]);
  });

  test('CREATE INDEX CONCURRENTLY that finished before its progress was written: not run again, outcome unknown naming it', async () => {
    const first = { '000001_a.up.sql': 'CREATE TABLE counter (n int);' };
    const run = throughSilence(/SET statements_done = 1 /, first, {
      '000002_b.up.sql':
        '-- orion:no-transaction\nCREATE INDEX CONCURRENTLY counter_n ON counter (n);\nINSERT INTO counter VALUES (1);',
    });
    await expect(run).rejects.toThrow(
      /000002_b\.up\.sql:2 \(CREATE INDEX CONCURRENTLY counter_n ON counter \(n\)\) runs outside a transaction and may have finished/,
    );
    // The index is there and valid; nothing after it ran; the ledger still says statement 1 is next.
    const idx = await query(
      fixture!.targetUrl,
      `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('public.counter_n')`,
    );
    expect(idx).toEqual([{ indisvalid: true }]);
    expect(await query(fixture!.targetUrl, 'SELECT n FROM counter')).toEqual([]);
    expect(
      await query(fixture!.targetUrl, `SELECT status, statements_done FROM orion_schema_history WHERE version = 2`),
    ).toEqual([{ status: expect.not.stringMatching(/^applied$/), statements_done: 0 }]);
  });
});

describe('a second failover during the resumed run (review S2)', () => {
  test('the outcome is unknown: the deploy fails naming the file that may be half-applied and what the ledger has', async () => {
    const base = mkdtempSync(join(tmpdir(), 'orion-failover-'));
    chmodSync(base, 0o755);
    const options = { dataDir: join(base, 'data'), password: 'failover-pw' };
    server = await startEmbeddedServer(options);
    fixture = deployFixture({ adminUrl: server.url });
    await fixture.master();
    await query(server.url, `ALTER ROLE ${RDS_MASTER} SET orion.test_sleep = '60'`);
    const dir = migrationsDir({
      '000001_a.up.sql': 'CREATE TABLE a (id int);',
      '000002_b.up.sql': `-- orion:no-transaction\nCREATE TABLE b (id int);\n${SLEEP};`,
    });
    const running = fixture.deploy(dir, {});
    running.catch(() => {}); // awaited below
    for (let i = 0; i < 2; i++) {
      // The resumed run sleeps again: the second restart ends it too.
      await runningPid(server.url, fixture.roles.database, 'pg_sleep(coalesce');
      await server.stop({ keepData: true });
      server = await startEmbeddedServer({ ...options, port: server.port });
    }
    await expect(running).rejects.toThrow(
      /on the resumed run: .*57P01.*; 000002_b\.up\.sql may be half-applied; the ledger has this deploy's applied versions \[1\] and incomplete 2 b \(1 statements recorded as done\)/,
    );
    await query(server.url, `ALTER ROLE ${RDS_MASTER} RESET orion.test_sleep`);
    expect(await tableNames(fixture.targetUrl)).toEqual(['a', 'b', 'orion_schema_history']);
  });
});

describe('a silent socket and the deadline (review S1)', () => {
  async function viaProxy() {
    fixture = deployFixture();
    const admin = new URL(adminUrl());
    const proxy = await cuttingProxy({ host: admin.hostname, port: Number(admin.port) });
    const via = new URL(fixture.serverUrl);
    via.host = `127.0.0.1:${proxy.port}`;
    return { proxy, serverUrl: via.toString() };
  }

  test('a statement with its own cap is given up at that cap plus a margin, not at the deadline: the deploy resumes', async () => {
    const { proxy, serverUrl } = await viaProxy();
    try {
      proxy.silenceAt(/CREATE TABLE capped_b/);
      const dir = migrationsDir({
        '000001_a.up.sql': '-- orion:statement-timeout 1s\nCREATE TABLE capped_a (id int);',
        '000002_b.up.sql': '-- orion:statement-timeout 1s\nCREATE TABLE capped_b (id int);',
      });
      // The deadline is far: without a read timeout of its own the statement would wait for it (an hour).
      const outcome = await fixture!.deploy(dir, {
        serverUrl,
        snapshotWhen: 'non-transactional',
        run: { lockWaitMs: 10_000, deadlineAt: Date.now() + 3_600_000 },
      });
      expect(outcome.report).toMatchObject({
        ok: true,
        to_version: '2',
        errors: [],
        session_ended: { cause: 'network' },
      });
      expect(outcome.report.session_ended).toMatchObject({ error: expect.stringMatching(/Query read timeout/) });
    } finally {
      await proxy.close();
    }
  }, 90_000);

  test('noticed with too little time left before the deadline: not resumed, outcome unknown, the next deploy resumes', async () => {
    const { proxy, serverUrl } = await viaProxy();
    try {
      proxy.silenceAt(/CREATE TABLE silent_b/);
      const dir = migrationsDir({
        '000001_a.up.sql': 'CREATE TABLE silent_a (id int);',
        '000002_b.up.sql': 'CREATE TABLE silent_b (id int);',
      });
      const run = fixture!.deploy(dir, {
        serverUrl,
        snapshotWhen: 'non-transactional',
        run: { lockWaitMs: 10_000, deadlineAt: Date.now() + 5_000 },
      });
      await expect(run).rejects.toThrow(
        /the connection was lost \(the server did not restart\); 0 s left before the deadline, too little to resume: the ledger has it; the next deploy resumes/,
      );
      // The old session was ended: its transaction rolled back, nothing holds the migration lock.
      expect(await tableNames(fixture!.targetUrl)).not.toContain('silent_b');
      const next = await fixture!.deploy(dir, { snapshotWhen: 'non-transactional' });
      expect(next.report).toMatchObject({ ok: true, to_version: '2' });
    } finally {
      await proxy.close();
    }
  }, 90_000);
});

describe('telling sessions and servers apart (review nit)', () => {
  test('start times compare as instants, whatever the TimeZone of the session that reads them', async () => {
    const db = await createDatabase();
    const old = await client(db.url);
    old.on('error', () => {}); // it is ended below
    const fresh = await client(db.url);
    try {
      await old.query(`SET TimeZone = 'UTC'`);
      await fresh.query(`SET TimeZone = 'Asia/Shanghai'`); // a role or database setting may differ
      const before = await serverSession(old);
      const after = await serverSession(fresh);
      expect(after.startedAt).not.toBe(before.startedAt); // the same instant, printed differently
      expect(sessionEnd(before, after, false)).toBe('network');
      expect(await endOldSession(fresh, before, 5_000)).toBe(true);
      await expect(old.query('SELECT 1')).rejects.toThrow();
    } finally {
      await old.end().catch(() => {});
      await fresh.end();
    }
  });
});

describe('the server’s processes restart after a backend crashed (an OOM kill; review R1)', () => {
  test('the start time stays, the old session is gone: the note says it was already gone, not that it was ended', async () => {
    const base = mkdtempSync(join(tmpdir(), 'orion-failover-'));
    chmodSync(base, 0o755);
    server = await startEmbeddedServer({ dataDir: join(base, 'data'), password: 'failover-pw' });
    fixture = deployFixture({ adminUrl: server.url });
    await fixture.master();
    await query(server.url, `ALTER ROLE ${RDS_MASTER} SET orion.test_sleep = '30'`);
    const dir = migrationsDir({ '000001_a.up.sql': `CREATE TABLE a (id int);\n${SLEEP};` });
    const running = fixture.deploy(dir, { snapshotWhen: 'non-transactional' });
    await runningPid(server.url, fixture.roles.database, 'pg_sleep(coalesce');
    await query(server.url, `ALTER ROLE ${RDS_MASTER} RESET orion.test_sleep`);
    // Another backend killed: the postmaster ends every session and reinitialises, without restarting.
    const other = await client(server.url);
    other.on('error', () => {});
    process.kill((await other.query('SELECT pg_backend_pid() AS p')).rows[0].p, 'SIGKILL');
    const outcome = await running;
    expect(outcome.report).toMatchObject({ ok: true, to_version: '1', session_ended: { cause: 'network' } });
    expect(outcome.report.notes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/the old session was already gone .*resumed once from the ledger$/),
      ]),
    );
    expect(JSON.stringify(outcome.report.notes)).not.toMatch(/the old session was ended/);
  }, 120_000);
});

describe('a query that got no answer (pg query_timeout)', () => {
  test('closes its connection: the queries after it (ROLLBACK, bookkeeping) fail at once instead of each waiting its own timeout', async () => {
    const admin = new URL(adminUrl());
    const proxy = await cuttingProxy({ host: admin.hostname, port: Number(admin.port) });
    const via = new URL(adminUrl());
    via.host = `127.0.0.1:${proxy.port}`;
    try {
      const c = await connect(via.toString(), { queryTimeoutMs: 1_500 });
      proxy.silenceAt(/SELECT 'silenced'/);
      await expect(c.query(`SELECT 'silenced'`)).rejects.toThrow(/Query read timeout/);
      // Without closing, this one would queue behind the silent query and end with its own read timeout.
      await expect(c.query('ROLLBACK')).rejects.toThrow(/terminated|not queryable/i);
      await c.end();
    } finally {
      await proxy.close();
    }
  });

  test('a server error that only reads like one (it has a SQLSTATE) keeps the connection', async () => {
    const c = await connect(adminUrl(), { queryTimeoutMs: 10_000 });
    try {
      await expect(c.query(`DO $$ BEGIN RAISE EXCEPTION 'Query read timeout'; END $$`)).rejects.toMatchObject({
        code: 'P0001',
      });
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await c.end();
    }
  });
});

describe('a session the server ends while no query runs', () => {
  test('is remembered as ended by the server (pg tells it only as an event), not taken for a network fault', async () => {
    const c = await connect(adminUrl(), { applicationName: 'orion-test idle victim' });
    const { rows } = await c.query('SELECT pg_backend_pid() AS pid');
    expect(sessionEndedByServer(c)).toBe(false);
    await adminQuery('SELECT pg_terminate_backend($1)', [rows[0].pid]);
    await waitFor(async () => sessionEndedByServer(c), 'the FATAL 57P01 event', 10_000);
    await expect(c.query('SELECT 1')).rejects.toThrow(/not queryable|terminat/i);
    await c.end();
  });
});
