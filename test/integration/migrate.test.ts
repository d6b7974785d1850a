import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { closeQuietly, connect } from '../../lambda/engine/db';
import { loadMigrations } from '../../lambda/engine/files';
import { CREATE_LEDGER } from '../../lambda/engine/ledger';
import { down, migrate } from '../../lambda/engine/migrate';
import { runCli } from '../helpers/cli';
import { client, createDatabase, migrationsDir, query, SOP_MIGRATIONS, tableNames } from '../helpers/db';
import { cuttingProxy } from '../helpers/proxy';

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

  test("the CLI shows the server's DETAIL (which key); the error's message, which CloudFormation shows, keeps the HINT and not the row", async () => {
    const { url } = await createDatabase();
    const fk = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE parent (id text PRIMARY KEY);\nCREATE TABLE child (token text REFERENCES parent);',
      '2_b.up.sql': "INSERT INTO child VALUES ('sk_live_4242');",
    });
    const cli = await runCli(['migrate', '--database-url', url, '--migrations', fk, '--json']);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout).errors[0]).toMatchObject({
      file: '2_b.up.sql',
      sqlstate: '23503',
      message: 'insert or update on table "child" violates foreign key constraint "child_token_fkey"',
      detail: 'Key (token)=(sk_live_4242) is not present in table "parent".',
    });
    const text = await runCli(['migrate', '--database-url', url, '--migrations', fk]);
    expect(text.stderr).toContain(
      'violates foreign key constraint "child_token_fkey"\n  DETAIL: Key (token)=(sk_live_4242) is not present in table "parent".',
    );
    const engine = await run((await createDatabase()).url, fk);
    expect(engine.error).toMatchObject({ file: '2_b.up.sql', sqlstate: '23503' });
    expect(engine.error!.message).not.toContain('sk_live_4242');
    const hint = await run(url, migrationsDir({ '1_h.up.sql': 'SELECT nosuchfunction(1);' }));
    expect(hint.error!.message).toMatch(
      /does not exist \(HINT: No function matches the given name and argument types\. .*casts\)$/,
    );
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
    expect(await tableNames(url)).toEqual([]); // not even the ledger: a dry run never writes
  });

  test('a statement ending in a comment (no ";", or ";" on the next line) runs once, on the fast path', async () => {
    const { url } = await createDatabase();
    // The ledger first: objects in a database without one are a hand-built schema, refused without --baseline.
    await query(url, `${CREATE_LEDGER}; CREATE SEQUENCE runs`); // nextval is not rolled back: it counts every execution
    const dir = migrationsDir({
      '1_count.up.sql': "SELECT nextval('runs');",
      // Larger than one joined query: the batch goes to the server in more than one.
      '2_pad.up.sql': `SELECT '${'x'.repeat(70_000)}' AS pad;`,
      '3_a.up.sql': 'CREATE TABLE a (id int)\n-- the last statement has no semicolon',
      '4_b.up.sql': 'CREATE TABLE b (id int) -- a comment before the semicolon\n;\nCREATE TABLE c (id int);',
    });
    const events: string[] = [];
    const result = await run(url, dir, { onEvent: (e) => events.push(e.type) });
    expect(result.error).toBeUndefined();
    expect(await query(url, `SELECT last_value::int AS n FROM runs`)).toEqual([{ n: 1 }]);
    expect(events).not.toContain('retry');
    expect(await tableNames(url)).toEqual(['a', 'b', 'c', 'orion_schema_history']);
  });

  test('ledger row ids beyond 32 bits are kept whole: attempts are cleared, progress and reverts hit their own rows', async () => {
    const { url } = await createDatabase();
    await run(url, migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '1_a.down.sql': 'DROP TABLE a;' }));
    // 2^32 + 1: `id | 0` would make it 1, the row of version 1.
    await query(url, `ALTER TABLE orion_schema_history ALTER COLUMN id RESTART WITH 4294967297`);
    const dir = migrationsDir({
      '1_a.up.sql': 'CREATE TABLE a (id int);',
      '1_a.down.sql': 'DROP TABLE a;',
      '2_b.up.sql': 'CREATE TABLE b (id int);',
      '2_b.down.sql': 'DROP TABLE b;',
      '3_c.up.sql':
        '-- orion:no-transaction\nCREATE TABLE IF NOT EXISTS c (id int);\nCREATE TABLE IF NOT EXISTS d (id int);',
      '3_c.down.sql': 'DROP TABLE c, d;',
    });
    expect((await run(url, dir)).error).toBeUndefined();
    const rows = () =>
      query(
        url,
        `SELECT id > 4294967296 AS wide, version::int, status, statements_done FROM orion_schema_history ORDER BY id`,
      );
    // No attempt row left behind, the progress counted on the non-transactional file's own row.
    expect(await rows()).toEqual([
      { wide: false, version: 1, status: 'applied', statements_done: null },
      { wide: true, version: 2, status: 'applied', statements_done: null },
      { wide: true, version: 3, status: 'applied', statements_done: 2 },
    ]);
    const c = await client(url);
    const reverted = await down(c, { to: 1n }).finally(() => c.end());
    expect(reverted.error).toBeUndefined();
    expect((await rows()).map((r) => r.status)).toEqual(['applied', 'reverted', 'reverted']);
    expect(await tableNames(url)).toEqual(['a', 'orion_schema_history']);
  });

  test('a non-transactional file resumes where it stopped and drops the INVALID index a failed build left', async () => {
    const { url } = await createDatabase();
    await query(url, `${CREATE_LEDGER}; CREATE TABLE t (x int); INSERT INTO t VALUES (1), (1)`);
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
    await query(url, `${CREATE_LEDGER}; CREATE TABLE busy (id int)`);
    const holder = await client(url);
    await holder.query('BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE');
    try {
      const retries: number[] = [];
      const reasons: string[] = [];
      const result = await run(
        url,
        migrationsDir({
          '1_a.up.sql': '-- orion:lock-timeout 100ms\nALTER TABLE busy ADD COLUMN x int;',
          '2_b.up.sql': 'CREATE TABLE other (id int);',
        }),
        {
          lockRetries: 2,
          onEvent: (e) => e.type === 'retry' && retries.push(e.delayMs) && reasons.push(e.reason),
        },
      );
      expect(retries).toEqual([200, 400]);
      // The server's lock timeout rolled the batch back: never "it either committed or not".
      for (const reason of reasons) expect(reason).not.toMatch(/either committed/);
      expect(result.error).toMatchObject({ file: '1_a.up.sql', line: 2, sqlstate: '55P03' });
      expect(result.error!.message).toMatch(/lock timeout/);
    } finally {
      await holder.end();
    }
    expect(
      (await query(url, `SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'busy'`))[0].n,
    ).toBe(1);
  });

  test('an enum value used after the migration that adds it: the batch commits there and goes on, and says so', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': "CREATE TYPE visibility AS ENUM ('Public');\nCREATE TABLE docs (id int, vis visibility);",
      '2_v.up.sql': "ALTER TYPE visibility ADD VALUE 'Private';",
      '3_w.up.sql': 'CREATE TABLE other (id int);',
      '4_u.up.sql': "CREATE VIEW private_docs AS SELECT id FROM docs WHERE vis = 'Private';",
    });
    const events: string[] = [];
    const result = await run(url, dir, {
      onEvent: (e) => e.type === 'batch-start' && events.push(e.versions.join(',')),
    });
    expect(result.error).toBeUndefined();
    expect(events).toEqual(['1,2', '3,4']);
    expect(result.splits).toEqual([
      {
        after: 2n,
        before: 3n,
        reason: expect.stringMatching(
          /^4_u\.up\.sql:1 may use enum value 'Private' of visibility, added by 2_v\.up\.sql:1/,
        ),
      },
    ]);
    expect(result.applied.map((a) => a.version)).toEqual([1n, 2n, 3n, 4n]);
    expect(await query(url, `SELECT count(*)::int AS n FROM private_docs`)).toEqual([{ n: 0 }]);
  });

  test('a label equal to an added one but of another enum type stays in one batch (a real Prisma history)', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '20230101000000_init.up.sql':
        'CREATE TYPE "FieldType" AS ENUM (\'TEXT\');\nCREATE TABLE "Field" (id int, type "FieldType" NOT NULL);',
      '20230601000000_email_field.up.sql': 'ALTER TYPE "FieldType" ADD VALUE \'EMAIL\';',
      '20240601000000_distribution.up.sql': [
        "CREATE TYPE \"DistributionMethod\" AS ENUM ('EMAIL', 'NONE');",
        'CREATE TABLE "Survey" (id int, "distributionMethod" "DistributionMethod" NOT NULL DEFAULT \'EMAIL\');',
        'INSERT INTO "Survey" (id) VALUES (1);',
      ].join('\n'),
    });
    const batches: string[] = [];
    const result = await run(url, dir, {
      onEvent: (e) => e.type === 'batch-start' && batches.push(e.versions.join(',')),
    });
    expect(result.error).toBeUndefined();
    expect(batches).toHaveLength(1);
    expect(result.splits).toEqual([]);
    expect(await query(url, `SELECT "distributionMethod"::text AS m FROM "Survey"`)).toEqual([{ m: 'EMAIL' }]);
  });

  const HOPPSCOTCH = join(__dirname, '..', '..', '..', 'shared', 'corpora', 'hoppscotch-prisma', 'migrations');
  test.skipIf(!existsSync(HOPPSCOTCH))(
    'a real Prisma history (hoppscotch, ../shared/corpora; skipped where absent) with enum renames applies as one batch',
    async () => {
      const { url } = await createDatabase();
      const files: Record<string, string> = {};
      for (const d of readdirSync(HOPPSCOTCH).filter((d) => /^\d{14}_/.test(d)))
        files[`${d}.up.sql`] = readFileSync(join(HOPPSCOTCH, d, 'migration.sql'), 'utf8');
      const result = await run(url, migrationsDir(files));
      expect(result.error).toBeUndefined();
      expect(result.splits).toEqual([]);
      expect(result.applied).toHaveLength(Object.keys(files).length);
      expect(
        await query(url, `SELECT enumlabel FROM pg_enum WHERE enumtypid = '"TeamAccessRole"'::regtype ORDER BY 1`),
      ).toEqual([{ enumlabel: 'EDITOR' }, { enumlabel: 'OWNER' }, { enumlabel: 'VIEWER' }]);
      expect((await tableNames(url)).length).toBe(23 + 1); // and the ledger
    },
  );

  test('a use the parse tree cannot see: the server refuses it (55P04), and the batch is split there and run again', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': "CREATE TYPE mood AS ENUM ('ok');\nCREATE TABLE m (x mood);",
      '2_v.up.sql': "ALTER TYPE mood ADD VALUE 'sad';",
      // The label is built at run time: no literal says 'sad'.
      '3_u.up.sql': "INSERT INTO m VALUES (('s' || 'ad')::mood);",
    });
    const events: string[] = [];
    const result = await run(url, dir, {
      onEvent: (e) => e.type === 'batch-start' && events.push(e.versions.join(',')),
    });
    expect(result.error).toBeUndefined();
    expect(events).toEqual(['1,2,3', '1,2', '3']);
    expect(result.splits).toEqual([
      { after: 2n, before: 3n, reason: expect.stringMatching(/^3_u\.up\.sql:1: unsafe use of new value "sad".*55P04/) },
    ]);
    expect(await query(url, `SELECT x::text FROM m`)).toEqual([{ x: 'sad' }]);
    expect((await ledger(url)).map((r) => `${r.version}:${r.status}`)).toEqual(['1:applied', '2:applied', '3:applied']);
  });

  test('a migration that adds a value and uses it itself fails, saying why; nothing else of the batch stays', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': "CREATE TYPE mood AS ENUM ('ok');",
      '2_v.up.sql': "ALTER TYPE mood ADD VALUE 'sad';\nSELECT 'sad'::mood;",
    });
    const result = await run(url, dir);
    expect(result.error).toMatchObject({ file: '2_v.up.sql', line: 2, sqlstate: '55P04' });
    expect(result.error!.message).toMatch(/added in this same migration; add it in an earlier migration/);
    expect(result.partiallyApplied).toBe(false);
    expect(await tableNames(url)).toEqual(['orion_schema_history']);
  });

  test('--dry-run rehearses up to the first commit boundary and reports the rest as skipped', async () => {
    const { url } = await createDatabase();
    const dir = migrationsDir({
      '1_t.up.sql': "CREATE TYPE visibility AS ENUM ('Public');\nCREATE TABLE docs (id int, vis visibility);",
      '2_v.up.sql': "ALTER TYPE visibility ADD VALUE 'Private';",
      '3_u.up.sql': "INSERT INTO docs VALUES (1, 'Private');",
    });
    const result = await run(url, dir, { dryRun: true });
    expect(result.error).toBeUndefined();
    expect(result.applied.map((a) => a.version)).toEqual([1n, 2n]);
    expect(result.skipped).toEqual([
      { version: 3n, name: 'u', reason: expect.stringMatching(/^would run after 2 commits/) },
    ]);
    expect(await query(url, `SELECT to_regtype('visibility') AS t`)).toEqual([{ t: null }]);
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

describe('a deadline (the Lambda’s end) caps each statement with the time left when it starts', () => {
  const recorded = `INSERT INTO seen SELECT setting::int FROM pg_settings WHERE name = 'statement_timeout'`;
  for (const [path, header] of [
    ['the joined transactional batch', ''],
    ['a non-transactional file, statement by statement', '-- orion:no-transaction\n'],
  ] as const) {
    test(path, async () => {
      const db = await createDatabase();
      const c = await client(db.url);
      try {
        await c.query(`${CREATE_LEDGER}; CREATE TABLE seen (ms int)`); // the ledger first: objects without one are a hand-built schema
        const dir = migrationsDir({
          '000001_slow.up.sql': `${header}${recorded};\nSELECT pg_sleep(1.5);\n${recorded};`,
        });
        const result = await migrate(c, await loadMigrations(dir), { deadlineAt: Date.now() + 60_000 });
        expect(result.error).toBeUndefined();
        const [first, second] = (await c.query('SELECT ms FROM seen')).rows.map((r) => r.ms);
        expect(first).toBeLessThanOrEqual(60_000);
        expect(first - second).toBeGreaterThanOrEqual(1_500); // the sleep's time is gone from the second's cap
      } finally {
        await c.end();
      }
    });
  }
});

describe('a socket gone silent (a hard Multi-AZ failover)', () => {
  test('a query gets no answer: the client gives up after its query timeout, the run reports the connection lost, and the dead socket is closed without waiting for it', async () => {
    const db = await createDatabase();
    const server = new URL(db.url);
    const proxy = await cuttingProxy({ host: server.hostname, port: Number(server.port) });
    try {
      const via = new URL(db.url);
      via.host = `127.0.0.1:${proxy.port}`;
      const c = await connect(via.toString(), { queryTimeoutMs: 1_500 });
      proxy.silenceAt(/CREATE TABLE silent_b/);
      const dir = migrationsDir({ '000001_silent.up.sql': 'CREATE TABLE silent_b (id int);' });
      const result = await migrate(c, await loadMigrations(dir));
      expect(result.error?.message).toMatch(/read timeout/i);
      expect(result.connectionLost).toBe(true); // so the lifecycle reconnects and reads the ledger
      const started = Date.now();
      await closeQuietly(c, 500);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await proxy.close();
    }
  });
});
