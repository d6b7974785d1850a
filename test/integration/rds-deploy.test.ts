/**
 * The deploy lifecycle as it runs on RDS, where the master is not a superuser: extensions and
 * schemas created by migrations, what only a superuser master can do, and a lockdown that fails after
 * the migrations committed.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { BadInputError } from '../../lambda/engine/errors';
import { adminQuery, client, migrationsDir, query } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';

let fixture: DeployFixture;
afterEach(async () => {
  await fixture?.cleanup();
});

async function complete(f: DeployFixture, dir: string, overrides = {}) {
  const outcome = await f.deploy(dir, overrides);
  expect(outcome.status).toBe('complete');
  return outcome.report;
}

const withSchema = {
  '1_extension.up.sql': 'CREATE EXTENSION IF NOT EXISTS pgcrypto;',
  '2_reporting.up.sql': `CREATE SCHEMA reporting;
CREATE TABLE reporting.daily (id bigserial PRIMARY KEY, day date NOT NULL, digest bytea DEFAULT digest('x', 'sha256'));`,
};

describe.each(['rds', 'superuser'] as const)('as the %s master', (master) => {
  test('a trusted extension and a new schema: created as the owner role, locked down like public', async () => {
    fixture = deployFixture({ master });
    const { roles } = fixture;
    const report = await complete(fixture, migrationsDir(withSchema));
    expect(report).toMatchObject({ ok: true, to_version: '2', errors: [] });
    expect(report.lockdown!.checks.map((c) => c.name)).toContain(
      `${roles.group} can read and write every application table (schemas public, reporting)`,
    );
    expect(
      await query(
        fixture.targetUrl,
        `SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'reporting') AS schema,
                (SELECT tableowner FROM pg_tables WHERE tablename = 'daily') AS tab,
                (SELECT extowner::regrole::text FROM pg_extension WHERE extname = 'pgcrypto') AS ext`,
      ),
    ).toEqual([{ schema: roles.owner, tab: roles.owner, ext: roles.owner }]);

    const app = await fixture.appClient();
    try {
      await app.query(`INSERT INTO reporting.daily (day) VALUES ('2026-11-24')`); // table, sequence and pgcrypto
      expect((await app.query(`SELECT length(digest) AS n FROM reporting.daily`)).rows).toEqual([{ n: 32 }]);
      for (const sql of ['CREATE TABLE reporting.mine (id int)', 'CREATE SCHEMA mine', 'TRUNCATE reporting.daily']) {
        await expect(app.query(sql), sql).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await app.end();
    }
    const owned = await query(
      fixture.targetUrl,
      `SELECT count(*)::int AS n FROM pg_class WHERE relowner = $1::regrole
       UNION ALL SELECT count(*)::int FROM pg_namespace WHERE nspowner = $1::regrole`,
      [roles.app],
    );
    expect(owned).toEqual([{ n: 0 }, { n: 0 }]);
  });
});

describe('extensions and schemas on RDS', () => {
  test('drift in a schema the migrations created is found, corrected and reported', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, migrationsDir(withSchema));
    await fixture.asMaster(
      `GRANT CREATE ON SCHEMA reporting TO "${roles.app}"; GRANT TRUNCATE ON reporting.daily TO "${roles.app}";
       REVOKE INSERT ON reporting.daily FROM "${roles.group}"`,
    );
    const report = await complete(fixture, migrationsDir(withSchema));
    expect(report.lockdown!.ok).toBe(true);
    expect(report.lockdown!.corrected).toEqual([
      `${roles.app} had direct grants: reporting.daily TRUNCATE`,
      `${roles.app} had CREATE on schema reporting`,
    ]);
    const app = await fixture.appClient();
    try {
      await expect(app.query('CREATE TABLE reporting.mine (id int)')).rejects.toMatchObject({ code: '42501' });
      await app.query(`INSERT INTO reporting.daily (day) VALUES ('2026-11-24')`);
    } finally {
      await app.end();
    }
  });

  test('an untrusted extension: the RDS-like master may not create it, and says so before anything runs', async () => {
    fixture = deployFixture();
    const dir = migrationsDir({
      '1_ok.up.sql': 'CREATE TABLE first (id int);',
      '2_dblink.up.sql': '-- orion:requires-extension dblink\nCREATE EXTENSION IF NOT EXISTS dblink;',
    });
    const err = await fixture.deploy(dir).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(
      /^2_dblink\.up\.sql: requires extension "dblink", which orion_test_master may not create here \(SQLSTATE 42501: permission denied to create extension "dblink"; Must be superuser to create this extension\.\)$/,
    );
    expect(await query(fixture.targetUrl, `SELECT to_regclass('first') AS t`)).toEqual([{ t: null }]);
  });

  test('an untrusted extension declared by its migration is created by a master allowed to (on RDS, rds_superuser)', async () => {
    fixture = deployFixture({ master: 'superuser' });
    const dir = migrationsDir({
      '1_dblink.up.sql': '-- orion:requires-extension dblink\nCREATE EXTENSION IF NOT EXISTS dblink;',
    });
    expect(await complete(fixture, dir)).toMatchObject({ ok: true, to_version: '1' });
    // Without the directive, the owner role the migration runs as may not create it.
    const undeclared = deployFixture({ master: 'superuser' });
    try {
      const report = await complete(
        undeclared,
        migrationsDir({ '1_dblink.up.sql': 'CREATE EXTENSION IF NOT EXISTS dblink;' }),
      );
      expect(report.errors).toEqual([
        {
          file: '1_dblink.up.sql',
          line: 1,
          sqlstate: '42501',
          // The server's HINT says why: only a superuser (on RDS, rds_superuser) may.
          message: 'permission denied to create extension "dblink" (HINT: Must be superuser to create this extension)',
        },
      ]);
    } finally {
      await undeclared.cleanup();
    }
  });
});

describe('a lockdown that fails after the migrations committed', () => {
  test('is reported in one sentence with its SQLSTATE; the versions and what was applied come from the ledger', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);' }));
    await query(fixture.targetUrl, `ALTER TABLE a OWNER TO "${roles.app}"`); // drift: the lockdown must take it back
    const holder = await client(fixture.targetUrl);
    try {
      await holder.query('BEGIN; LOCK TABLE a IN ACCESS SHARE MODE'); // a long transaction on that table
      const report = await complete(
        fixture,
        migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '2_b.up.sql': 'CREATE TABLE b (id int);' }),
        // No template-database snapshot: taking one ends the other sessions of the database.
        { run: { defaultLockTimeoutMs: 200 }, snapshotWhen: 'non-transactional' },
      );
      expect(report).toMatchObject({ ok: false, from_version: '1', to_version: '2', restored: false });
      expect(report.applied).toEqual([{ version: '2', name: 'b', ms: expect.any(Number) }]);
      expect(report.errors).toEqual([
        { sqlstate: '55P03', message: 'lockdown failed: canceling statement due to lock timeout' },
      ]);
      expect(report.lockdown).toMatchObject({ ok: false });
    } finally {
      await holder.end();
    }
    expect(
      await query(fixture.targetUrl, `SELECT version::int FROM orion_schema_history WHERE status = 'applied'`),
    ).toEqual([{ version: 1 }, { version: 2 }]);
    // Once the lock is gone, the next deploy finishes the lockdown.
    const again = await complete(
      fixture,
      migrationsDir({ '1_a.up.sql': 'CREATE TABLE a (id int);', '2_b.up.sql': 'CREATE TABLE b (id int);' }),
    );
    expect(again.lockdown).toMatchObject({ ok: true, corrected: [`${roles.app} owned table a`] });
  });
});

test('rds_superuser really is what the deploys above ran as', async () => {
  fixture = deployFixture();
  const master = await fixture.master();
  expect(await adminQuery(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [master.username])).toEqual([
    { rolsuper: false },
  ]);
});
