/**
 * The statements PostgreSQL refuses inside a transaction block (its PreventInTransactionBlock
 * callers) are recognised from the parse tree before anything runs — and the server agrees: each
 * one really fails with 25001 inside BEGIN, each look-alike does not.
 */
import type { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadMigrations } from '../../lambda/engine/files';
import { client, createDatabase, migrationsDir } from '../helpers/db';

// statement, what the refusal names
const REFUSED: [string, RegExp][] = [
  ['CREATE INDEX CONCURRENTLY i ON t (x)', /CREATE INDEX CONCURRENTLY/],
  ['DROP INDEX CONCURRENTLY IF EXISTS i', /DROP INDEX CONCURRENTLY/],
  ['REINDEX (CONCURRENTLY) TABLE t', /REINDEX CONCURRENTLY/],
  ['REINDEX TABLE CONCURRENTLY t', /REINDEX CONCURRENTLY/],
  ['REINDEX SCHEMA public', /REINDEX SCHEMA/],
  ['REINDEX SYSTEM current_db', /REINDEX SYSTEM/], // PostgreSQL 15 needs the name: the test's database
  ['REINDEX DATABASE current_db', /REINDEX DATABASE/],
  ['VACUUM t', /VACUUM/],
  ['VACUUM (ANALYZE) t', /VACUUM/],
  ['CLUSTER', /CLUSTER without a table/],
  ['ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY', /DETACH PARTITION … CONCURRENTLY/],
  ["ALTER SYSTEM SET work_mem = '8MB'", /ALTER SYSTEM/],
  ['CREATE DATABASE orion_never', /CREATE DATABASE/],
  ['DROP DATABASE IF EXISTS orion_never', /DROP DATABASE/],
  ['ALTER DATABASE orion_never SET TABLESPACE pg_default', /ALTER DATABASE … SET TABLESPACE/],
  ["CREATE TABLESPACE ts LOCATION '/nonexistent'", /CREATE TABLESPACE/],
  ['DROP TABLESPACE IF EXISTS ts', /DROP TABLESPACE/],
  ["CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p", /CREATE SUBSCRIPTION/],
  ['DISCARD ALL', /DISCARD ALL/],
];

/** Refused by the server only for objects that exist (it looks them up first): recognised all the same. */
const REFUSED_FOR_EXISTING: [string, RegExp][] = [
  ['ALTER SUBSCRIPTION s REFRESH PUBLICATION', /REFRESH PUBLICATION/],
  ['ALTER SUBSCRIPTION s SET PUBLICATION p', /PUBLICATION with refresh/],
  ['ALTER SUBSCRIPTION s ADD PUBLICATION p WITH (refresh = true)', /PUBLICATION with refresh/],
  ['DROP SUBSCRIPTION IF EXISTS s', /DROP SUBSCRIPTION/],
];

/** Look-alikes that do run in a transaction. */
const ALLOWED = [
  'CREATE INDEX i ON t (x)',
  'REINDEX TABLE t',
  'ANALYZE t',
  'CLUSTER t USING t_x',
  'ALTER TABLE p DETACH PARTITION p1',
  'ALTER DATABASE orion_never SET search_path = public',
  "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p WITH (connect = false)",
  "CREATE SUBSCRIPTION s CONNECTION 'host=127.0.0.1 port=1' PUBLICATION p WITH (create_slot = off, enabled = false)",
  'ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false)',
  'DISCARD PLANS',
];

async function loadOne(sql: string, noTransaction = false) {
  const header = noTransaction ? '-- orion:no-transaction\n' : '';
  return loadMigrations(migrationsDir({ '1_m.up.sql': `${header}SELECT 1;\n${sql};` }));
}

let db: Client;
let dbName: string;
beforeAll(async () => {
  const created = await createDatabase();
  dbName = created.name;
  db = await client(created.url);
  await db.query(`CREATE TABLE t (x int); CREATE INDEX t_x ON t (x);
    CREATE TABLE p (x int) PARTITION BY RANGE (x); CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)`);
});
afterAll(async () => {
  await db.end();
});

/** The SQLSTATE the server answers `sql` with inside a transaction block (undefined: it ran). */
async function inTransaction(sql: string): Promise<string | undefined> {
  await db.query('BEGIN');
  try {
    await db.query(sql.replace('current_db', `"${dbName}"`));
    return undefined;
  } catch (err: any) {
    return err.code;
  } finally {
    await db.query('ROLLBACK');
  }
}

describe('statements that cannot run in a transaction', () => {
  test.each(REFUSED)('%s: refused before anything runs unless marked, and by the server in BEGIN', async (sql, why) => {
    await expect(loadOne(sql)).rejects.toThrow(
      new RegExp(`^1_m\\.up\\.sql:2: .*${why.source}.* cannot run inside a transaction: put it in its own file`),
    );
    await expect(loadOne(sql, true)).resolves.toHaveLength(1);
    expect(await inTransaction(sql)).toBe('25001');
  });

  test.each(REFUSED_FOR_EXISTING)('%s: refused before anything runs unless marked', async (sql, why) => {
    await expect(loadOne(sql)).rejects.toThrow(why);
    await expect(loadOne(sql, true)).resolves.toHaveLength(1);
  });

  test.each(ALLOWED)('%s: runs in the deploy transaction (the server does not answer 25001)', async (sql) => {
    await expect(loadOne(sql)).resolves.toHaveLength(1);
    expect(await inTransaction(sql)).not.toBe('25001');
  });
});
