import { describe, expect, test } from 'vitest';
import { loadMigrations } from '../../lambda/engine/files';
import { down, migrate } from '../../lambda/engine/runner';
import { client, createDatabase, migrationsDir, query, SOP_MIGRATIONS, tableNames } from '../helpers/db';

async function run(url: string, dir: string, options: Parameters<typeof migrate>[2] = {}) {
  const c = await client(url);
  try {
    return await migrate(c, await loadMigrations(dir), options);
  } finally {
    await c.end();
  }
}

async function ledger(url: string) {
  return query(
    url,
    `SELECT version::int, name, status, sqlstate, failed_line, statements_done FROM orion_schema_history ORDER BY id`,
  );
}

describe('migrate', () => {
  test('applies the SOP migrations, then nothing on a second run', async () => {
    const { url } = await createDatabase();
    const first = await run(url, SOP_MIGRATIONS, { deployId: 'd1' });
    expect(first.error).toBeUndefined();
    expect(first.applied.map((a) => a.version)).toEqual([1n, 2n]);
    expect(first).toMatchObject({ fromVersion: null, toVersion: 2n, pending: [] });
    expect(await tableNames(url)).toEqual(['activities', 'activity_tokens', 'orion_schema_history', 'viewer_entries']);
    const indexes = (
      await query(url, `SELECT indexname FROM pg_indexes WHERE tablename = 'activities' ORDER BY 1`)
    ).map((r) => r.indexname);
    expect(indexes).toEqual([
      'activities_pkey',
      'idx_activities_speaker',
      'idx_activities_start_time',
      'idx_activities_status',
    ]);
    const rows = await query(
      url,
      `SELECT version::int, status, deploy_id, length(checksum) AS len, down_sql IS NOT NULL AS has_down FROM orion_schema_history ORDER BY version`,
    );
    expect(rows).toEqual([
      { version: 1, status: 'applied', deploy_id: 'd1', len: 64, has_down: true },
      { version: 2, status: 'applied', deploy_id: 'd1', len: 64, has_down: true },
    ]);

    const second = await run(url, SOP_MIGRATIONS);
    expect(second).toMatchObject({ applied: [], fromVersion: 2n, toVersion: 2n, pending: [] });
    expect((await ledger(url)).length).toBe(2);
  });

  test('a failure in migration k rolls back 1..k-1 too, and the failed attempt survives in the ledger', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '2_b.up.sql': 'CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);',
      '3_c.up.sql': 'CREATE TABLE c (id int);\n\nINSERT INTO c\n  SELECT id FROM\n    missing_table;',
    });
    const result = await run(url, dir);
    expect(result.error).toMatchObject({ file: '3_c.up.sql', line: 5, sqlstate: '42P01' });
    expect(result.error!.message).toMatch(/relation "missing_table" does not exist/);
    expect(result).toMatchObject({ applied: [], toVersion: null, partiallyApplied: false, connectionLost: false });
    expect(result.pending.map((p) => p.version)).toEqual([1n, 2n, 3n]);
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    expect(await ledger(url)).toEqual([
      { version: 3, name: 'c', status: 'failed', sqlstate: '42P01', failed_line: 5, statements_done: null },
    ]);
  });

  test('runs the SQL as the given role, so it owns what it creates', async () => {
    const { url, name } = await createDatabase();
    const role = `${name}_owner`;
    await query(url, `CREATE ROLE "${role}" NOLOGIN; GRANT CREATE ON SCHEMA public TO "${role}"`);
    try {
      const result = await run(url, migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);' }), { role });
      expect(result.error).toBeUndefined();
      expect(await query(url, `SELECT tableowner FROM pg_tables WHERE tablename = 'a'`)).toEqual([
        { tableowner: role },
      ]);
      expect(
        (await query(url, `SELECT tableowner FROM pg_tables WHERE tablename = 'orion_schema_history'`))[0].tableowner,
      ).not.toBe(role);
    } finally {
      await query(url, `DROP OWNED BY "${role}"; DROP ROLE "${role}"`);
    }
  });

  test('--dry-run runs the batch and leaves nothing behind, errors included', async () => {
    const { url } = await createDatabase();
    const good = await run(url, migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);' }), { dryRun: true });
    expect(good).toMatchObject({ dryRun: true, toVersion: null, error: undefined });
    expect(good.applied.map((a) => a.version)).toEqual([1n]);
    const bad = await run(
      url,
      migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '2_b.up.sql': 'SELECT 1/0;' }),
      { dryRun: true },
    );
    expect(bad.error).toMatchObject({ file: '2_b.up.sql', sqlstate: '22012' });
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    expect(await ledger(url)).toEqual([]);
  });

  test('a non-transactional file resumes where it stopped and drops the INVALID index a failed build left', async () => {
    const { url } = await createDatabase();
    await query(url, `CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1)`);
    const files = {
      '1_idx.up.sql':
        '-- orion:no-transaction\nCREATE TABLE IF NOT EXISTS marker (id int);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_x ON t (x);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS marker_id ON marker (id);',
    };
    const first = await run(url, migrationsDir(files));
    expect(first.error).toMatchObject({ file: '1_idx.up.sql', line: 3, sqlstate: '23505' });
    expect(first.partiallyApplied).toBe(true);
    expect(await query(url, `SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass`)).toEqual([
      { indisvalid: false },
    ]);
    expect(await ledger(url)).toEqual([
      { version: 1, name: 'idx', status: 'incomplete', sqlstate: null, failed_line: null, statements_done: 1 },
      { version: 1, name: 'idx', status: 'failed', sqlstate: '23505', failed_line: 3, statements_done: null },
    ]);

    await query(url, `DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)`); // the on-call fix
    const events: string[] = [];
    const second = await run(url, migrationsDir(files), { onEvent: (e) => e.type === 'cleanup' && events.push(e.sql) });
    expect(second.error).toBeUndefined();
    expect(events).toEqual(['DROP INDEX CONCURRENTLY IF EXISTS "t_x"']);
    expect(await query(url, `SELECT indisvalid FROM pg_index WHERE indexrelid = 't_x'::regclass`)).toEqual([
      { indisvalid: true },
    ]);
    expect((await ledger(url)).map((r) => r.status)).toEqual(['applied', 'failed']);
  });

  test('a lock timeout is retried with backoff and then reported with the lock it waited for', async () => {
    const { url } = await createDatabase();
    await query(url, 'CREATE TABLE busy (id int)');
    const holder = await client(url);
    await holder.query('BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE');
    try {
      const retries: number[] = [];
      const result = await run(
        url,
        migrationsDir({ '1_a.up.sql': '-- orion:lock-timeout 100ms\nALTER TABLE busy ADD COLUMN x int;' }),
        {
          lockRetries: 2,
          onEvent: (e) => e.type === 'retry' && retries.push(e.delayMs),
        },
      );
      expect(retries).toEqual([200, 400]);
      expect(result.error).toMatchObject({ file: '1_a.up.sql', line: 2, sqlstate: '55P03' });
      expect(result.error!.message).toMatch(/lock timeout/);
    } finally {
      await holder.end();
    }
    expect(
      (await query(url, `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'busy'`))[0].n,
    ).toBe(1);
  });

  test('refuses to use an enum value added in the same batch, before anything runs', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': "CREATE TYPE mood AS ENUM ('ok');",
      '2_v.up.sql': "ALTER TYPE mood ADD VALUE 'sad';",
      '3_u.up.sql': "CREATE TABLE m (x mood DEFAULT 'sad');",
    });
    await expect(run(url, dir)).rejects.toThrow(/3_u\.up\.sql:1: uses enum value 'sad' added by 2_v\.up\.sql:1/);
    expect(await tableNames(url)).toEqual([]); // not even the ledger
  });

  test('two runners started together apply each migration exactly once', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);\nSELECT pg_sleep(0.2);',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
    });
    const [x, y] = await Promise.all([run(url, dir), run(url, dir)]);
    expect([x.error, y.error]).toEqual([undefined, undefined]);
    expect([...x.applied, ...y.applied].map((a) => a.version).sort()).toEqual([1n, 2n]);
    expect((await ledger(url)).map((r) => r.version)).toEqual([1, 2]);
  });
});

describe('down', () => {
  test('reverts with the down scripts stored in the ledger (no folder involved)', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '1_a.down.sql': 'DROP TABLE a;',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
      '2_b.down.sql': 'DROP TABLE b;',
    });
    await run(url, dir);
    const c = await client(url);
    const result = await down(c, { to: 0n }).finally(() => c.end());
    expect(result.error).toBeUndefined();
    expect(result.applied.map((a) => a.version)).toEqual([2n, 1n]);
    expect(result.toVersion).toBeNull();
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
    expect((await ledger(url)).map((r) => r.status)).toEqual(['reverted', 'reverted']);
    // and up again
    expect((await run(url, dir)).applied.map((a) => a.version)).toEqual([1n, 2n]);
  });

  test('a version without a down script is an error before anything runs', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '1_a.down.sql': 'DROP TABLE a;',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
    });
    await run(url, dir);
    const c = await client(url);
    await expect(down(c, { to: 0n }).finally(() => c.end())).rejects.toThrow(/no down script was stored for 2 \(b\)/);
    expect(await tableNames(url)).toEqual(['a', 'b', 'orion_schema_history']);
  });
});
