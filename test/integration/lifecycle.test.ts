import { afterEach, describe, expect, test } from 'vitest';
import { BadInputError, OutcomeUnknownError } from '../../lambda/engine/errors';
import type { RunEvent } from '../../lambda/engine/migrate';
import { boundedRowCounts } from '../../lambda/engine/row-counts';
import { snapshotId } from '../../lambda/lifecycle/deploy';
import {
  adminQuery,
  adminUrl,
  client,
  insertActivities,
  migrationsDir,
  query,
  SOP_MIGRATIONS,
  tableNames,
} from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { cuttingProxy } from '../helpers/proxy';

let fixture: DeployFixture;
afterEach(async () => {
  await fixture?.cleanup();
});

async function complete(f: DeployFixture, dir: string, overrides = {}) {
  const outcome = await f.deploy(dir, overrides);
  expect(outcome.status).toBe('complete');
  return outcome.report;
}

async function roleAttributes(role: string) {
  return (
    await adminQuery(
      `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1`,
      [role],
    )
  )[0];
}

describe('deploy lifecycle', () => {
  test('bootstraps, snapshots, migrates as the owner, locks down and verifies; a second run is a no-op', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    const first = await complete(fixture, SOP_MIGRATIONS);
    expect(first).toMatchObject({ ok: true, from_version: null, to_version: '2', restored: false, errors: [] });
    expect(first.bootstrap).toEqual([
      `created database ${roles.database}`,
      `created role ${roles.owner}`,
      `created role ${roles.group}`,
      `created role ${roles.app}`,
    ]);
    expect(first.snapshot).toMatch(new RegExp(`^${fixture.prefix}-pre-test-`));
    expect(await fixture.snapshotDatabases()).toHaveLength(1);
    expect(first.lockdown!.ok).toBe(true);
    expect(first.lockdown!.checks.length).toBeGreaterThanOrEqual(10);
    expect(first.row_counts).toEqual({ before: {}, after: { activities: 0, activity_tokens: 0, viewer_entries: 0 } });
    const owners = await query(
      fixture.targetUrl,
      `SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'orion_schema_history'`,
    );
    expect(owners).toEqual([{ tableowner: roles.owner }]);
    expect(await roleAttributes(roles.app)).toEqual({
      rolcanlogin: true,
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
      rolbypassrls: false,
    });

    await query(fixture.targetUrl, insertActivities('a', { title: 'b', inputLanguage: 'de' }));
    const second = await complete(fixture, SOP_MIGRATIONS);
    expect(second).toMatchObject({
      ok: true,
      from_version: '2',
      to_version: '2',
      applied: [],
      snapshot: null,
      bootstrap: [],
    });
    expect(second.lockdown!.corrected).toEqual([]);
    expect(second.row_counts).toEqual({
      before: { activities: 2, activity_tokens: 0, viewer_entries: 0 },
      after: { activities: 2, activity_tokens: 0, viewer_entries: 0 },
    });
    expect(await fixture.snapshotDatabases()).toHaveLength(1); // a no-op deploy takes no snapshot
  });

  test('the app role is really refused CREATE DATABASE / ROLE / TABLE and the ledger, and can read and write', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    const app = await fixture.appClient();
    try {
      for (const sql of [
        'CREATE DATABASE nope',
        'CREATE ROLE nope',
        'CREATE TABLE public.nope (id int)',
        'SELECT * FROM orion_schema_history',
      ]) {
        await expect(app.query(sql), sql).rejects.toMatchObject({ code: '42501' });
      }
      await app.query(insertActivities('t'));
      await app.query(`UPDATE activities SET title = 'u'`);
      expect((await app.query('SELECT title FROM activities')).rows).toEqual([{ title: 'u' }]);
      await app.query('DELETE FROM activities');
      await expect(app.query('TRUNCATE activities')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }
  });

  test('tables created by later migrations are covered by the default privileges', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    const more = migrationsDir({
      '000001_init_schema.up.sql': await readFixture('000001_init_schema.up.sql'),
      '000002_activities_start_time_speaker_idx.up.sql': await readFixture(
        '000002_activities_start_time_speaker_idx.up.sql',
      ),
      '000003_later.up.sql': 'CREATE TABLE later (id serial primary key, v text);',
    });
    expect((await complete(fixture, more)).applied).toEqual([{ version: '3', name: 'later', ms: expect.any(Number) }]);
    const app = await fixture.appClient();
    try {
      await app.query(`INSERT INTO later (v) VALUES ('x')`); // table and its sequence
      expect((await app.query('SELECT v FROM later')).rows).toEqual([{ v: 'x' }]);
    } finally {
      await app.end();
    }
  });

  test('hand-made drift is corrected on the next run and reported', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    // What anyone holding the master secret could do on RDS.
    await fixture.asMaster(`ALTER ROLE "${roles.app}" CREATEDB CREATEROLE`);
    await fixture.asMaster(`GRANT "${roles.owner}" TO "${roles.app}"`);
    await fixture.asMaster(
      `GRANT TRUNCATE ON viewer_entries TO "${roles.app}"; GRANT SELECT ON orion_schema_history TO "${roles.group}"; GRANT CREATE ON SCHEMA public TO PUBLIC`,
    );
    await query(fixture.targetUrl, `ALTER TABLE activities OWNER TO "${roles.app}"`);
    const report = await complete(fixture, SOP_MIGRATIONS);
    expect(report.lockdown!.ok).toBe(true);
    expect(report.lockdown!.corrected).toEqual(
      expect.arrayContaining([
        `${roles.app} had CREATEDB`,
        `${roles.app} had CREATEROLE`,
        `${roles.app} owned table activities`,
        expect.stringMatching(new RegExp(`^${roles.app} had direct grants: .*viewer_entries TRUNCATE`)),
        `${roles.group} had SELECT on the ledger`,
        'PUBLIC had CREATE on schema public',
        `${roles.app} was a member of ${roles.owner}`,
      ]),
    );
    expect(await adminQuery(`SELECT pg_has_role($1, $2, 'MEMBER') AS m`, [roles.app, roles.owner])).toEqual([
      { m: false },
    ]);
    expect(await roleAttributes(roles.app)).toMatchObject({ rolcreatedb: false, rolcreaterole: false });
    expect(await query(fixture.targetUrl, `SELECT tableowner FROM pg_tables WHERE tablename = 'activities'`)).toEqual([
      { tableowner: roles.owner },
    ]);
    const again = await complete(fixture, SOP_MIGRATIONS);
    expect(again.lockdown!.corrected).toEqual([]);
  });

  test('a login that existed before the stack (adoption) keeps its password: the running application is not locked out', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await fixture.asMaster(`CREATE ROLE "${roles.app}" LOGIN PASSWORD 'the-apps-own-password'`, [], 'postgres');
    const outcome = await fixture.deploy(SOP_MIGRATIONS);
    expect(outcome.report.bootstrap).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^left ${roles.app}'s password as it is: the role existed`)),
      ]),
    );
    const own = await fixture.appClient('the-apps-own-password');
    await own.query('SELECT 1 FROM activities LIMIT 1');
    await own.end();
    // A login the deploy created is the secret's: its password is set, and probed.
    const managed = deployFixture();
    try {
      const report = (await managed.deploy(SOP_MIGRATIONS)).report;
      expect(report.bootstrap).not.toEqual(expect.arrayContaining([expect.stringMatching(/^left /)]));
      await (await managed.appClient()).end();
    } finally {
      await managed.cleanup();
    }
  });

  test('hand-made column grants (on an application table, on the ledger) are revoked like table grants', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    await fixture.asMaster(
      `GRANT UPDATE (title), REFERENCES (id) ON activities TO "${roles.app}"; GRANT SELECT (version, name) ON orion_schema_history TO "${roles.app}"`,
    );
    const report = await complete(fixture, SOP_MIGRATIONS);
    expect(report.lockdown!.ok).toBe(true);
    const columnGrants = await query(
      fixture.targetUrl,
      `SELECT c.relname, t.attname FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid, aclexplode(t.attacl) a
        WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [roles.app],
    );
    expect(columnGrants).toEqual([]);
  });

  test('a hand-made GRANT ALL on the database and schema is corrected and every revoked privilege listed', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    for (const who of [roles.app, roles.group])
      await fixture.asMaster(`GRANT ALL ON DATABASE "${roles.database}" TO "${who}"`);
    await fixture.asMaster(`GRANT ALL ON SCHEMA public TO "${roles.app}", "${roles.group}"`);
    const report = await complete(fixture, SOP_MIGRATIONS);
    expect(report.lockdown!.ok).toBe(true);
    expect(report.lockdown!.corrected).toEqual(
      expect.arrayContaining([
        `${roles.app} had CONNECT on database`,
        `${roles.app} had CREATE on database`,
        `${roles.app} had TEMPORARY on database`,
        `${roles.app} had CREATE on schema public`,
        `${roles.app} had USAGE on schema public`,
        `${roles.group} had CREATE on database`,
        `${roles.group} had TEMPORARY on database`,
        `${roles.group} had CREATE on schema public`,
      ]),
    );
    const privileges = await query(
      fixture.targetUrl,
      `SELECT has_database_privilege($1, current_database(), 'CREATE') AS db_create,
              has_database_privilege($1, current_database(), 'TEMPORARY') AS db_temp,
              has_schema_privilege($1, 'public', 'CREATE') AS schema_create`,
      [roles.app],
    );
    expect(privileges).toEqual([{ db_create: false, db_temp: false, schema_create: false }]);
    expect((await complete(fixture, SOP_MIGRATIONS)).lockdown!.corrected).toEqual([]);
  });

  test('drift only a superuser can undo (REPLICATION, BYPASSRLS) is reported, not attempted, and fails the deploy', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    await adminQuery(`ALTER ROLE "${roles.app}" REPLICATION BYPASSRLS`);
    // The password still works, so bootstrap alters nothing (on 15 any ALTER ROLE of a REPLICATION role by a
    // non-superuser is refused): the lockdown reports it, on 15 as on 16.
    {
      const report = await complete(fixture, SOP_MIGRATIONS);
      expect(report).toMatchObject({ ok: false, from_version: '2', to_version: '2', lockdown: { ok: false } });
      const attributes = report.lockdown!.checks.find((c) => c.name.startsWith(`${roles.app} has no SUPERUSER`));
      expect(attributes).toMatchObject({
        ok: false,
        detail: `REPLICATION, BYPASSRLS: only a superuser can clear them (ALTER ROLE ${roles.app} NOREPLICATION NOBYPASSRLS)`,
      });
      expect(report.errors).toEqual([
        {
          message: expect.stringMatching(
            /^lockdown check failed: .* has no SUPERUSER.*only a superuser can clear them/,
          ),
        },
      ]);
    }
    expect(await roleAttributes(roles.app)).toMatchObject({ rolreplication: true, rolbypassrls: true });

    await adminQuery(`ALTER ROLE "${roles.app}" NOREPLICATION NOBYPASSRLS`); // the administrator's fix
    expect((await complete(fixture, SOP_MIGRATIONS)).lockdown!.ok).toBe(true);
  });

  test('a membership the master may not revoke is reported with the reason, not thrown', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    // A superuser's grant: on RDS, rdsadmin's. PostgreSQL 16 lets only the grantor (or its ADMINs) revoke it.
    await adminQuery(`GRANT pg_read_all_data TO "${roles.app}"`);
    const report = await complete(fixture, SOP_MIGRATIONS);
    const member = (await adminQuery(`SELECT pg_has_role($1, 'pg_read_all_data', 'MEMBER') AS m`, [roles.app]))[0].m;
    // 15: CREATEROLE may revoke any non-superuser role. 16: not without ADMIN on pg_read_all_data.
    expect(member).toBe((await serverMajor()) >= 16);
    if (member) {
      expect(report.ok).toBe(false);
      expect(report.lockdown!.checks).toContainEqual({
        name: 'every drift found was corrected',
        ok: false,
        detail: expect.stringContaining(`${roles.app} was a member of pg_read_all_data`),
      });
    } else {
      expect(report.lockdown!.corrected).toContain(`${roles.app} was a member of pg_read_all_data`);
      expect(report.ok).toBe(true);
    }
  });

  test('a failing transactional migration restores nothing and leaves the pre-deploy version', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    const dir = migrationsDir({
      '000001_init_schema.up.sql': await readFixture('000001_init_schema.up.sql'),
      '000002_activities_start_time_speaker_idx.up.sql': await readFixture(
        '000002_activities_start_time_speaker_idx.up.sql',
      ),
      '000003_new_table.up.sql': 'CREATE TABLE speakers (id int);',
      '000004_broken.up.sql': 'ALTER TABLE activities ADD COLUMN x int;\nALTER TABLE nope ADD COLUMN y int;',
    });
    const report = await complete(fixture, dir);
    expect(report).toMatchObject({ ok: false, from_version: '2', to_version: '2', restored: false, lockdown: null });
    expect(report.errors).toEqual([
      { file: '000004_broken.up.sql', line: 2, sqlstate: '42P01', message: 'relation "nope" does not exist' },
    ]);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
  });

  test('a failing non-transactional migration after a committed one restores the snapshot', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    await query(fixture.targetUrl, insertActivities('before the deploy'));
    const dir = migrationsDir({
      '000001_init_schema.up.sql': await readFixture('000001_init_schema.up.sql'),
      '000002_activities_start_time_speaker_idx.up.sql': await readFixture(
        '000002_activities_start_time_speaker_idx.up.sql',
      ),
      '000003_speakers.up.sql': `CREATE TABLE speakers (id int);\n${insertActivities('during')};`,
      '000004_unique_title.up.sql':
        '-- orion:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_title ON activities (title);\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_lang ON activities (input_language);',
    });
    const report = await complete(fixture, dir);
    expect(report).toMatchObject({ ok: false, restored: true, from_version: '2', to_version: '2' });
    expect(report.snapshot).toMatch(new RegExp(`^${fixture.prefix}-pre-`));
    expect(report.errors[0]).toMatchObject({ file: '000004_unique_title.up.sql', line: 3, sqlstate: '23505' });
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect(await query(fixture.targetUrl, 'SELECT title FROM activities')).toEqual([{ title: 'before the deploy' }]);
    const kept = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
      `${fixture.roles.database}_failed_%`,
    ]);
    expect(kept).toHaveLength(1); // the failed database is kept for inspection
    expect(await tableNames(withDb(kept[0].datname))).toContain('speakers');
  });

  test('a batch split at an enum value: a failure after the first part committed restores the snapshot', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    const dir = migrationsDir({
      '000001_init_schema.up.sql': await readFixture('000001_init_schema.up.sql'),
      '000002_activities_start_time_speaker_idx.up.sql': await readFixture(
        '000002_activities_start_time_speaker_idx.up.sql',
      ),
      '000003_visibility.up.sql':
        "CREATE TYPE visibility AS ENUM ('Public');\nALTER TABLE activities ADD COLUMN vis visibility;",
      '000004_private.up.sql': "ALTER TYPE visibility ADD VALUE 'Private';",
      '000005_private_view.up.sql':
        "CREATE VIEW private_activities AS SELECT id FROM activities WHERE vis = 'Private';\nALTER TABLE nope ADD COLUMN y int;",
    });
    const report = await complete(fixture, dir);
    expect(report.batch_splits).toEqual([
      { after: '4', before: '5', reason: expect.stringContaining("may use enum value 'Private'") },
    ]);
    expect(report).toMatchObject({ ok: false, restored: true, from_version: '2', to_version: '2' });
    expect(report.errors[0]).toMatchObject({ file: '000005_private_view.up.sql', line: 2, sqlstate: '42P01' });
    expect(await query(fixture.targetUrl, `SELECT to_regtype('visibility') AS t`)).toEqual([{ t: null }]);
    expect(
      (
        await query(
          fixture.targetUrl,
          `SELECT max(version)::int AS v FROM orion_schema_history WHERE status = 'applied'`,
        )
      )[0].v,
    ).toBe(2);
  });

  test('a batch split at an enum value applies whole through the lifecycle, the report saying where', async () => {
    fixture = deployFixture();
    const dir = migrationsDir({
      '000001_visibility.up.sql':
        "CREATE TYPE visibility AS ENUM ('Public');\nCREATE TABLE docs (id int, vis visibility);",
      '000002_private.up.sql': "ALTER TYPE visibility ADD VALUE 'Private';",
      '000003_private_view.up.sql': "CREATE VIEW private_docs AS SELECT id FROM docs WHERE vis = 'Private';",
    });
    const report = await complete(fixture, dir);
    expect(report).toMatchObject({ ok: true, from_version: null, to_version: '3', restored: false, errors: [] });
    expect(report.batch_splits).toEqual([{ after: '2', before: '3', reason: expect.any(String) }]);
    expect(report.lockdown!.ok).toBe(true);
  });

  test('keeps the newest N pre-migration snapshots', async () => {
    fixture = deployFixture();
    const files: Record<string, string> = {};
    const taken: string[] = [];
    for (let i = 1; i <= 4; i++) {
      files[`${i}_t${i}.up.sql`] = `CREATE TABLE t${i} (id int);`;
      const report = await complete(fixture, migrationsDir(files), { snapshotRetention: 2 });
      taken.push(report.snapshot as string);
    }
    const expected = taken
      .slice(-2)
      .map((id) => id.replace(/-/g, '_'))
      .sort();
    expect(await fixture.snapshotDatabases()).toEqual(expected);
  });

  test('the secret is the source of truth: a rotated password works, the old one no longer does', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    const old = fixture.secrets.appCredentials.password;
    fixture.secrets.appCredentials = { ...fixture.secrets.appCredentials, password: 'rotated-Password-123' };
    await complete(fixture, SOP_MIGRATIONS);
    const app = await fixture.appClient('rotated-Password-123');
    await app.end();
    await expect(fixture.appClient(old)).rejects.toMatchObject({ code: '28P01' });
  });

  test('multi-user rotation: the clone named by the secret gets the password and the same lockdown', async () => {
    fixture = deployFixture();
    const { roles } = fixture;
    await complete(fixture, SOP_MIGRATIONS);
    // As the multi-user rotation Lambda does (with the master secret), plus drift.
    await fixture.asMaster(`CREATE ROLE "${roles.app}_clone" LOGIN CREATEDB`, [], 'postgres');
    fixture.secrets.appCredentials = { username: `${roles.app}_clone`, password: 'clone-Password-456' };
    const report = await complete(fixture, SOP_MIGRATIONS);
    expect(report.lockdown!.ok).toBe(true);
    expect(report.lockdown!.corrected).toContain(`${roles.app}_clone had CREATEDB`);
    const clone = await fixture.appClient('clone-Password-456');
    try {
      await clone.query(insertActivities('c'));
      await expect(clone.query('CREATE TABLE x (id int)')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await clone.end();
    }
  });

  test.each([
    ['database', 'x"; DROP DATABASE postgres; --'],
    ['app', 'Robert); DROP'],
    ['owner', 'pg_owner'],
    ['group', 'a'.repeat(64)],
  ])('an invalid %s name is a clear error and nothing is created', async (key, value) => {
    fixture = deployFixture();
    const roles = { ...fixture.roles, [key]: value };
    const err = await fixture.deploy(SOP_MIGRATIONS, { roles }).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(new RegExp(`${key === 'database' ? 'database name' : `${key} role`}`));
    expect(await adminQuery(`SELECT 1 FROM pg_database WHERE datname = $1`, [fixture.roles.database])).toEqual([]);
  });

  test('a migration that requires a missing extension fails the pre-check and changes nothing', async () => {
    fixture = deployFixture();
    const dir = migrationsDir({ '1_ext.up.sql': '-- orion:requires-extension no_such_extension\nSELECT 1;' });
    await expect(fixture.deploy(dir)).rejects.toThrow(/1_ext\.up\.sql: requires extension "no_such_extension"/);
    expect(await adminQuery(`SELECT 1 FROM pg_database WHERE datname = $1`, [fixture.roles.database])).toEqual([]);
    expect(await adminQuery(`SELECT 1 FROM pg_roles WHERE rolname = $1`, [fixture.roles.app])).toEqual([]);
  });

  test('no secret appears in the report', async () => {
    fixture = deployFixture();
    const report = await complete(fixture, SOP_MIGRATIONS);
    const text = JSON.stringify(report);
    expect(text).not.toContain(fixture.secrets.appCredentials.password);
    expect(text).not.toContain((await fixture.secrets.master()).password);
  });
});

describe('a connection lost during the migration (a proxy cuts it)', () => {
  /** Deploys through a proxy that cuts the connection at the first matching message once a batch has started (the first batch, or `every` batch). */
  async function deployCut(dir: string, cutAt: RegExp, { every = false } = {}) {
    const server = new URL(adminUrl());
    const proxy = await cuttingProxy({ host: server.hostname, port: Number(server.port) });
    const viaProxy = new URL(fixture.serverUrl);
    viaProxy.host = `127.0.0.1:${proxy.port}`;
    try {
      const report = await complete(fixture, dir, {
        serverUrl: viaProxy.toString(),
        run: {
          onEvent: (e: RunEvent) => e.type === 'batch-start' && (every || proxy.cuts === 0) && proxy.cutAfter(cutAt),
        },
      });
      expect(proxy.cuts).toBe(1);
      return report;
    } finally {
      await proxy.close();
    }
  }
  const files = { '1_a.up.sql': 'CREATE TABLE cut_a (id int);', '2_b.up.sql': 'CREATE TABLE cut_b (id int);' };

  test('right after COMMIT was sent: the ledger shows the batch committed, and the deploy completes', async () => {
    fixture = deployFixture();
    const report = await deployCut(migrationsDir(files), /COMMIT/);
    expect(report).toMatchObject({ ok: true, from_version: null, to_version: '2', restored: false, errors: [] });
    expect(report.applied.map((a) => a.version)).toEqual(['1', '2']);
    expect(report.lockdown!.ok).toBe(true);
    expect(await query(fixture.targetUrl, `SELECT version::int, status FROM orion_schema_history ORDER BY id`)).toEqual(
      [
        { version: 1, status: 'applied' },
        { version: 2, status: 'applied' },
      ],
    );
  });

  test('mid-batch: nothing committed, the second run applies everything once, the cut attempt stays on record', async () => {
    fixture = deployFixture();
    const report = await deployCut(migrationsDir(files), /CREATE TABLE cut_b/);
    expect(report).toMatchObject({ ok: true, from_version: null, to_version: '2', restored: false, errors: [] });
    expect(report.applied.map((a) => a.version)).toEqual(['1', '2']);
    expect(await tableNames(fixture.targetUrl)).toEqual(expect.arrayContaining(['cut_a', 'cut_b']));
    expect(
      await query(fixture.targetUrl, `SELECT version::int, status, message FROM orion_schema_history ORDER BY id`),
    ).toEqual([
      { version: 1, status: 'failed', message: expect.stringMatching(/^interrupted/) },
      { version: 1, status: 'applied', message: null },
      { version: 2, status: 'applied', message: null },
    ]);
  });

  test('lost again on the second run: the deploy fails saying the outcome is unknown, and restores nothing', async () => {
    fixture = deployFixture();
    const err = await deployCut(migrationsDir(files), /CREATE TABLE cut_b/, { every: true }).catch((e) => e);
    expect(err).toBeInstanceOf(OutcomeUnknownError);
    expect(err.exitCode).toBe(1); // something may have run: not "bad input, nothing ran"
    expect(err.message).toMatch(
      /^the connection to the database was lost during the migration \(.*Connection terminated unexpectedly.*; then, on the resumed run: .* may be half-applied; the ledger has this deploy's applied versions \[\]\): whether the last batch committed is unknown/,
    );
    expect(await fixture.snapshotDatabases()).toHaveLength(1); // taken, not restored
    expect(
      await query(fixture.targetUrl, `SELECT status, count(*)::int AS n FROM orion_schema_history GROUP BY status`),
    ).toEqual([{ status: 'failed', n: 2 }]);
    expect(await tableNames(fixture.targetUrl)).toEqual(['orion_schema_history']);
  });
});

describe('snapshotId', () => {
  test('is deterministic, a valid RDS identifier, and distinct per deploy', () => {
    const a = snapshotId('orion-prod', 'arn:aws:cloudformation:eu-west-1:123:stack/Orion/abc--2026-11-23T20:15:00Z');
    expect(a).toBe(
      snapshotId('orion-prod', 'arn:aws:cloudformation:eu-west-1:123:stack/Orion/abc--2026-11-23T20:15:00Z'),
    );
    expect(a).toMatch(/^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$/);
    expect(a.length).toBeLessThanOrEqual(255);
    expect(snapshotId('orion-prod', 'deploy-2')).not.toBe(snapshotId('orion-prod', 'deploy-3'));
    expect(() => snapshotId('Orion_Prod', 'x')).toThrow(/snapshot prefix/);
  });
});

async function serverMajor(): Promise<number> {
  return Math.floor((await adminQuery(`SELECT current_setting('server_version_num')::int AS n`))[0].n / 10000);
}

async function readFixture(file: string): Promise<string> {
  const { readFileSync } = await import('node:fs');
  return readFileSync(`${SOP_MIGRATIONS}/${file}`, 'utf8');
}

function withDb(name: string): string {
  return fixture.targetUrl.replace(/\/[^/?]+(\?|$)/, `/${name}$1`);
}

describe('row counts in the deploy report', () => {
  test('exact below the size threshold, pg_class.reltuples above it, and the report says which', async () => {
    fixture = deployFixture();
    await complete(fixture, SOP_MIGRATIONS);
    await query(fixture.targetUrl, insertActivities('a', 'b', 'c'));
    await query(fixture.targetUrl, 'ANALYZE activities');
    const c = await client(fixture.targetUrl);
    try {
      const tables = ['activities', 'viewer_entries'];
      expect(await boundedRowCounts(c, tables)).toEqual({
        counts: { activities: 3, viewer_entries: 0 },
        estimated: [],
      });
      // Every table "large": nothing is counted, the estimates are named as such.
      const big = await boundedRowCounts(c, tables, { exactBelowBytes: 0 });
      expect(big).toEqual({ counts: { activities: 3, viewer_entries: 0 }, estimated: tables });
    } finally {
      await c.end();
    }
  });
});
