/**
 * The custom-resource handler through its whole event life cycle, on real PostgreSQL, with the
 * snapshot port backed by template databases and CloudFormation mocked at the SDK boundary.
 */

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { type DBInstance, DescribeDBInstancesCommand, ModifyDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { Client } from 'pg';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { MIGRATION_LOCK_KEY } from '../../lambda/engine/lock';
import { snapshotId } from '../../lambda/lifecycle/deploy';
import type { SnapshotPort } from '../../lambda/lifecycle/ports';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import type { ProviderEvent } from '../../lambda/schema-migrator/handler';
import type { SchemaMigrationsProperties } from '../../lambda/schema-migrator/properties';
import { lastPollAfter } from '../../lib/schema-migrations';
import {
  FULL_INVOCATION,
  type LogLine,
  providerEvent,
  resourceProperties,
  STACK_ID,
  testHandlers,
  untilComplete,
} from '../helpers/custom-resource';
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
import { gatedPort } from '../helpers/gated-port';
import { CREATE_FAILED_PHYSICAL_ID_MARKER, provider } from '../helpers/provider-framework';
import { cuttingProxy } from '../helpers/proxy';

const cfn = mockClient(CloudFormationClient);
const rds = mockClient(RDSClient);
const STACK_CREATED = new Date('2026-11-02T10:00:00Z');
const context = FULL_INVOCATION;

let fixture: DeployFixture;
let admin: Client;
let logs: LogLine[];
let metrics: Record<string, number>;

beforeEach(async () => {
  fixture = deployFixture();
  admin = await client(adminUrl());
  logs = [];
  metrics = {};
  cfn.reset();
  rds.reset();
  stackStatus('UPDATE_IN_PROGRESS');
  instance({ DeletionProtection: false, InstanceCreateTime: new Date('2026-11-02T10:05:00Z') });
  rds.on(ModifyDBInstanceCommand).resolves({});
});
afterEach(async () => {
  await admin.end();
  await fixture.cleanup();
});

function stackStatus(status: string) {
  cfn
    .on(DescribeStacksCommand, { StackName: STACK_ID })
    .resolves({ Stacks: [{ StackName: 'Orion-test', StackStatus: status as any, CreationTime: STACK_CREATED }] });
}

/** The RDS instance `orion-test`, as DescribeDBInstances reports it. */
function instance(state: Partial<DBInstance>) {
  rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: 'orion-test' }).resolves({
    DBInstances: [{ DBInstanceIdentifier: 'orion-test', DBInstanceStatus: 'available', ...state }],
  });
}

const protectionChanges = () =>
  rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input.DeletionProtection);

/** A handler as one Lambda bundle would be: its own migrations folder. */
function handlers(dir: string, serverUrl?: string, snapshots?: SnapshotPort, lastPollAfterMs?: number) {
  return testHandlers({ fixture, admin, migrationsDir: dir, metrics, logs, serverUrl, snapshots, lastPollAfterMs });
}

const properties = (deployId: string) => resourceProperties(fixture, deployId);

function event(type: 'Create' | 'Update' | 'Delete', deployId: string, oldDeployId?: string): ProviderEvent {
  return providerEvent(fixture, type, deployId, { oldDeployId });
}

/** The event with other (the previous template's) properties, e.g. the rollback policy. */
function withProps(e: ProviderEvent, extra: Partial<SchemaMigrationsProperties>): ProviderEvent {
  return { ...e, ResourceProperties: { ...e.ResourceProperties, ...extra } } as ProviderEvent;
}

/** onEvent, then isComplete polled until done, as the Provider framework does. */
function deploy(dir: string, e: ProviderEvent, h = handlers(dir)) {
  return untilComplete(h, e, context);
}

function sopPlus(extra: Record<string, string> = {}): string {
  const files: Record<string, string> = {};
  for (const f of [
    '000001_init_schema.up.sql',
    '000001_init_schema.down.sql',
    '000002_activities_start_time_speaker_idx.up.sql',
    '000002_activities_start_time_speaker_idx.down.sql',
  ]) {
    files[f] = readFileSync(join(SOP_MIGRATIONS, f), 'utf8');
  }
  return migrationsDir({ ...files, ...extra });
}

const SPEAKERS_UP = { '000003_speakers.up.sql': 'CREATE TABLE speakers (id int);' };
const SPEAKERS = { ...SPEAKERS_UP, '000003_speakers.down.sql': 'DROP TABLE speakers;' };

/**
 * The set-up of a stack rollback: d1 deploys the SOP's migrations, d2 adds `files` (its folder is
 * returned), then a resource after ours fails and CloudFormation rolls the stack back.
 */
async function deployedThenRollingBack(files: Record<string, string>): Promise<string> {
  await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
  const dir = sopPlus(files);
  await deploy(dir, event('Update', 'd2', 'd1'));
  stackStatus('UPDATE_ROLLBACK_IN_PROGRESS');
  return dir;
}

/** The rollback's request: d1's properties (with `extra`, e.g. its policy) replacing d2's. */
function rollbackEvent(extra: Partial<SchemaMigrationsProperties> = {}): ProviderEvent {
  return withProps(event('Update', 'd1', 'd2'), extra);
}

/**
 * The template-database snapshot port, but once a restore is done the gate in front of the server
 * closes (for `reopenAfterMs`, or for good), as an RDS endpoint stops resolving after the rename.
 */
function closingAfterRestore(gate: { close(reopenAfterMs?: number): Promise<void> }, reopenAfterMs?: number) {
  const local = new TemplateDatabaseSnapshots(admin, fixture.roles.database);
  const port: SnapshotPort = {
    ensure: (id, tags) => local.ensure(id, tags),
    list: () => local.list(),
    delete: (id) => local.delete(id),
    restoreStatus: (id) => local.restoreStatus(id),
    keptAs: (id) => local.keptAs(id),
    async restore(id, reason) {
      const state = await local.restore(id, reason);
      if (state === 'done') await gate.close(reopenAfterMs);
      return state;
    },
  };
  return port;
}

/** `open` (the cutting proxy or the gate) in front of the test server, and the fixture's server URL through it. */
async function inFrontOfServer<T extends { port: number }>(
  open: (target: { host: string; port: number }) => Promise<T>,
) {
  const server = new URL(adminUrl());
  const it = await open({ host: server.hostname, port: Number(server.port) });
  const url = new URL(fixture.serverUrl);
  url.host = `127.0.0.1:${it.port}`;
  return { it, url: url.toString() };
}

async function ledger() {
  return query(fixture.targetUrl, `SELECT version::int, status, deploy_id FROM orion_schema_history ORDER BY id`);
}

describe('Custom::SchemaMigrations handler', () => {
  test('Create applies the migrations; a no-op Update applies nothing and takes no snapshot; an Update with a new migration applies it', async () => {
    const created = await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    expect(created).toMatchObject({
      PhysicalResourceId: `orion-test/${fixture.roles.database}`,
      IsComplete: true,
      Data: { FromVersion: 'none', ToVersion: '2', Applied: '2' },
    });
    expect(await tableNames(fixture.targetUrl)).toContain('activities');

    const noop = await deploy(SOP_MIGRATIONS, event('Update', 'd2', 'd1'));
    expect(noop.Data).toEqual({ FromVersion: '2', ToVersion: '2', Applied: '0', Snapshot: 'none' });
    expect(await fixture.snapshotDatabases()).toHaveLength(1);

    const dir = sopPlus({
      '000003_speakers.up.sql': 'CREATE TABLE speakers (id int PRIMARY KEY);',
      '000003_speakers.down.sql': 'DROP TABLE speakers;',
    });
    const updated = await deploy(dir, event('Update', 'd3', 'd2'));
    expect(updated.Data).toEqual({
      FromVersion: '2',
      ToVersion: '3',
      Applied: '1',
      Snapshot: snapshotId(fixture.prefix, 'd3'),
    });
    expect(metrics.MigrationsApplied).toBe(3);

    // A retry of the same request (the Provider re-invoking) is idempotent.
    const retried = await deploy(dir, event('Update', 'd3', 'd2'));
    expect(retried.Data).toMatchObject({ ToVersion: '3', Applied: '0' });
    expect((await ledger()).filter((r) => r.version === 3)).toHaveLength(1);
  });

  test('the server’s DETAIL (which row: here a token) is neither logged nor shown to CloudFormation', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const dir = sopPlus({
      '000003_tokens.up.sql':
        "CREATE TABLE tokens (id text PRIMARY KEY);\nCREATE TABLE uses (token text REFERENCES tokens);\nINSERT INTO uses VALUES ('sk_live_4242');",
    });
    await expect(deploy(dir, event('Update', 'd2', 'd1'))).rejects.toThrow(
      'Schema migration failed: 000003_tokens.up.sql:3 SQLSTATE 23503: insert or update on table "uses" violates foreign key constraint "uses_token_fkey". The database was left unchanged at version 2.',
    );
    expect(logs.some((l) => l.message === 'deploy report')).toBe(true);
    expect(JSON.stringify(logs)).not.toContain('sk_live_4242');
  });

  test('a failing transactional migration fails the resource naming file, line and SQLSTATE, and leaves the database unchanged', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const dir = sopPlus({
      '000003_ok.up.sql': 'CREATE TABLE fine (id int);',
      '000004_broken.up.sql': 'SELECT 1;\nINSERT INTO nowhere VALUES (1);',
    });
    await expect(deploy(dir, event('Update', 'd2', 'd1'))).rejects.toThrow(
      'Schema migration failed: 000004_broken.up.sql:2 SQLSTATE 42P01: relation "nowhere" does not exist. The database was left unchanged at version 2.',
    );
    expect(await tableNames(fixture.targetUrl)).not.toContain('fine');
    expect(metrics.MigrationFailures).toBe(1);
    expect(metrics.Restores).toBeUndefined();
  });

  test('a failing non-transactional migration after a committed one restores the snapshot, and a retry says so again', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await query(fixture.targetUrl, insertActivities('dup', 'dup'));
    const dir = sopPlus({
      ...SPEAKERS_UP,
      '000004_unique_title.up.sql':
        '-- orion:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_title ON activities (title);',
    });
    const id = snapshotId(fixture.prefix, 'd2');
    const message = new RegExp(
      `^Schema migration failed: 000004_unique_title\\.up\\.sql:2 SQLSTATE 23505: could not create unique index "activities_title"\\. The database was restored from snapshot ${id} \\(version 2\\); the failed instance is kept as ${fixture.roles.database}_failed_[0-9a-f]{8}\\.$`,
    );
    await expect(deploy(dir, event('Update', 'd2', 'd1'))).rejects.toThrow(message);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect(await query(fixture.targetUrl, 'SELECT count(*)::int AS n FROM activities')).toEqual([{ n: 2 }]);
    expect(metrics).toMatchObject({ MigrationFailures: 1, Restores: 1 });

    await expect(deploy(dir, event('Update', 'd2', 'd1'))).rejects.toThrow(/restored from snapshot/);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
  });

  test('a stack rollback after a later resource failed reverts the failed deploy with its stored down scripts', async () => {
    await deployedThenRollingBack(SPEAKERS);
    expect(await tableNames(fixture.targetUrl)).toContain('speakers');
    const rolledBack = await deploy(SOP_MIGRATIONS, rollbackEvent({ Rollback: 'down-scripts' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect((await ledger()).find((r) => r.version === 3)).toMatchObject({ status: 'reverted', deploy_id: 'd2' });
    expect(metrics.RollbackProblems).toBeUndefined();
  });

  test('a rollback whose down script fails never fails the stack, and its log holds no secret the server echoed', async () => {
    const master = (await fixture.secrets.master()).password;
    await deployedThenRollingBack({
      ...SPEAKERS_UP,
      '000003_speakers.down.sql': `SELECT '${master}'::int;`, // fails, quoting the secret back
    });
    const rolledBack = await deploy(SOP_MIGRATIONS, rollbackEvent({ Rollback: 'down-scripts' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(metrics).toMatchObject({ RollbackProblems: 1 });
    expect(metrics.Restores).toBeUndefined(); // a failing down script is no reason to restore
    const problem = logs.find((l) => l.level === 'error');
    expect(JSON.stringify(problem)).toMatch(/22P02.*invalid input syntax for type integer: \\"\*\*\*\\"/);
    expect(JSON.stringify(logs)).not.toContain(master);
  });

  test('rollback policy restore restores the failed deploy’s snapshot; down-scripts with a script missing restores nothing and raises the alarm', async () => {
    const dir = await deployedThenRollingBack(SPEAKERS_UP);
    const keptAhead = await deploy(dir, rollbackEvent({ Rollback: 'down-scripts', SchemaVersion: '2' }));
    expect(keptAhead.IsComplete).toBe(true);
    expect(await tableNames(fixture.targetUrl)).toContain('speakers');
    expect(metrics).toMatchObject({ SchemaAhead: 1, MigrationFailures: 1 });
    expect(metrics.Restores).toBeUndefined();
    expect(JSON.stringify(logs)).toMatch(
      /the schema is left ahead of the stack: 3 \(speakers\) stay applied \(rollback policy down-scripts: cannot revert to 2: no down script was stored for 3 \(speakers\)\)/,
    );

    const rolledBack = await deploy(dir, rollbackEvent({ Rollback: 'restore', SchemaVersion: '2' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect(metrics.Restores).toBe(1);
    expect(logs.some((l) => l.level === 'warn' && /rollback policy restore/.test(l.message))).toBe(true);
  });

  test('a keep rollback run by the previous code (its folder lacks what the failed deploy applied) still re-asserts the lockdown', async () => {
    await deployedThenRollingBack(SPEAKERS_UP);
    await query(fixture.targetUrl, `GRANT ALL ON speakers TO "${fixture.roles.app}"`);
    // CloudFormation rolls the function back first: the rollback runs the previous bundle and migrations.
    const rolledBack = await deploy(SOP_MIGRATIONS, rollbackEvent({ SchemaVersion: '2' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(metrics.RollbackProblems).toBeUndefined();
    expect(JSON.stringify(logs)).not.toMatch(/file is missing from the migrations folder/);
    expect(
      await query(
        fixture.targetUrl,
        `SELECT privilege_type FROM information_schema.role_table_grants WHERE table_name = 'speakers' AND grantee = $1`,
        [fixture.roles.app],
      ),
    ).toEqual([]);
  });

  test('by default (policy keep) a rollback leaves what the deploy applied, raises the alarm and loses no write made since', async () => {
    const dir = await deployedThenRollingBack(SPEAKERS);
    await query(fixture.targetUrl, 'INSERT INTO speakers VALUES (1)'); // written after the deploy
    const rolledBack = await deploy(dir, rollbackEvent({ SchemaVersion: '2' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(await query(fixture.targetUrl, 'SELECT id FROM speakers')).toEqual([{ id: 1 }]);
    expect(metrics).toMatchObject({ SchemaAhead: 1, MigrationFailures: 1 });
    expect(JSON.stringify(logs)).toMatch(/left ahead of the stack: 3 \(speakers\) stay applied \(rollback policy keep/);
  });

  test('a rollback never applies a pending migration, though the function still carries the new ones', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const dir = sopPlus(SPEAKERS_UP);
    stackStatus('UPDATE_ROLLBACK_IN_PROGRESS'); // the deploy of d2 never reached our resource
    const rolledBack = await deploy(dir, rollbackEvent({ SchemaVersion: '2' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect((await ledger()).map((r) => r.version)).toEqual([1, 2]);
    expect(metrics.SchemaAhead).toBeUndefined();
  });

  test('a stored down script the parser rejects is not read as "no down script": nothing is restored, the alarm is raised', async () => {
    const dir = await deployedThenRollingBack({ ...SPEAKERS_UP, '000003_speakers.down.sql': 'DROP TABL speakers;' });
    const rolledBack = await deploy(dir, rollbackEvent({ Rollback: 'down-scripts', SchemaVersion: '2' }));
    expect(rolledBack.IsComplete).toBe(true);
    expect(await tableNames(fixture.targetUrl)).toContain('speakers');
    expect(metrics.Restores).toBeUndefined();
    expect(metrics).toMatchObject({ SchemaAhead: 1, MigrationFailures: 1 });
    expect(JSON.stringify(logs)).toMatch(/a stored down script cannot be run: .*syntax error/);
  });

  test('a rollback that finds the migration lock held polls again instead of reporting complete', async () => {
    const dir = await deployedThenRollingBack(SPEAKERS);
    const holder = await client(fixture.targetUrl);
    try {
      await holder.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
      const h = handlers(dir);
      const e = rollbackEvent({ Rollback: 'down-scripts', SchemaVersion: '2' });
      await h.onEvent(e);
      const shortContext = { getRemainingTimeInMillis: () => 8_000 }; // waits 2 s for the lock
      await expect(h.isComplete(e, shortContext)).resolves.toEqual({ IsComplete: false });
      expect(await tableNames(fixture.targetUrl)).toContain('speakers');
      await holder.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
      await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: true });
      expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
      expect(metrics.RollbackProblems).toBeUndefined();
    } finally {
      await holder.end();
    }
  });

  test('a rollback that left the database at the previous version only re-asserts the lockdown', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await adminQuery(`ALTER ROLE "${fixture.roles.app}" CREATEDB`);
    stackStatus('UPDATE_ROLLBACK_IN_PROGRESS');
    const rolledBack = await deploy(SOP_MIGRATIONS, event('Update', 'd1', 'd2'));
    expect(rolledBack.IsComplete).toBe(true);
    expect(
      (await adminQuery(`SELECT rolcreatedb FROM pg_roles WHERE rolname = $1`, [fixture.roles.app]))[0].rolcreatedb,
    ).toBe(false);
    expect((await ledger()).map((r) => r.status)).toEqual(['applied', 'applied']);
  });

  test('a rollback never fails, even when it cannot do its work: it reports through logs and the metric', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    stackStatus('UPDATE_ROLLBACK_IN_PROGRESS');
    fixture.secrets.masterCredentials = { ...(await fixture.secrets.master()), password: 'wrong-password-for-test' };
    const bad = { ...event('Update', 'd1', 'd2') };
    const rolledBack = await deploy(SOP_MIGRATIONS, bad);
    expect(rolledBack.IsComplete).toBe(true);
    expect(metrics).toMatchObject({ RollbackProblems: 1, MigrationFailures: 1 });
    expect(JSON.stringify(logs)).not.toContain('wrong-password-for-test');
    // Malformed properties during a rollback: still no failure.
    const h = handlers(SOP_MIGRATIONS);
    const malformed = { ...bad, ResourceProperties: { ServiceToken: 'x' } } as ProviderEvent;
    await expect(h.onEvent(malformed)).resolves.toBeDefined();
    await expect(h.isComplete(malformed, context)).resolves.toEqual({ IsComplete: true });
  });

  test('a rollback’s failed check is logged scrubbed, like every other error: a secret the server’s words contain is ***', async () => {
    // The application's password is its role's name, which the failed check names: the message carries it.
    fixture.secrets.appCredentials = { username: fixture.roles.app, password: fixture.roles.app };
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await adminQuery(`ALTER ROLE "${fixture.roles.app}" REPLICATION`); // only a superuser may clear it: the check fails
    stackStatus('UPDATE_ROLLBACK_IN_PROGRESS');
    expect((await deploy(SOP_MIGRATIONS, event('Update', 'd1', 'd2'))).IsComplete).toBe(true);
    const problem = logs.find((l) => l.message === 'rollback: the previous schema is back but a check failed');
    expect(JSON.stringify(problem?.extra)).toMatch(/\*\*\* has no SUPERUSER.*only a superuser can clear it/);
    expect(JSON.stringify(problem?.extra)).not.toContain(fixture.roles.app);
    expect(metrics).toMatchObject({ RollbackProblems: 1 });
  });

  test('without DescribeStacks, deploy ids that are not synth times never decide rollback or deploy: it polls again', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const next = sopPlus(SPEAKERS_UP);
    const h = handlers(next);
    // Build numbers: Date.parse reads "1" and "2" as 2001-01-01 and 2001-02-01, which looked like a rollback.
    const e = event('Update', '1', '2');
    const answer = await h.onEvent(e);
    expect(await h.isComplete({ ...e, ...answer }, context)).toEqual({ IsComplete: false });
    expect(logs.map((l) => l.message)).toContain(
      'DescribeStacks failed and the deploy ids are not synth times: polling again to tell a rollback from a deploy',
    );
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers'); // neither applied nor judged
    // DescribeStacks answers again: a deploy.
    stackStatus('UPDATE_IN_PROGRESS');
    expect(await h.isComplete({ ...e, ...answer }, context)).toMatchObject({ IsComplete: true });
    expect(await tableNames(fixture.targetUrl)).toContain('speakers');
    // The construct's own deploy ids, synth times, still decide: the earlier one is a rollback's.
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const rollback = withProps(event('Update', '2026-12-01T10:00:00.000Z', '2026-12-04T10:00:00.000Z'), {
      SchemaVersion: '2',
    });
    expect(await handlers(SOP_MIGRATIONS).isComplete({ ...rollback, ...answer }, context)).toEqual({
      IsComplete: true,
    });
    expect(await tableNames(fixture.targetUrl)).toContain('speakers'); // policy keep: left ahead, with the alarm
    expect(metrics).toMatchObject({ SchemaAhead: 1 });
  });

  test('Delete never drops anything, including after a failed Create (the Provider framework’s marker id)', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const h = handlers(SOP_MIGRATIONS);
    await expect(h.onEvent(event('Delete', 'd1'))).resolves.toEqual({
      PhysicalResourceId: `orion-test/${fixture.roles.database}`,
    });
    await expect(h.isComplete(event('Delete', 'd1'), context)).resolves.toEqual({ IsComplete: true });
    const afterFailedCreate = {
      ...event('Delete', 'd0'),
      PhysicalResourceId: 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED',
    } as ProviderEvent;
    await expect(h.onEvent(afterFailedCreate)).resolves.toEqual({
      PhysicalResourceId: 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED',
    });
    expect(await tableNames(fixture.targetUrl)).toContain('activities');
  });

  test('malformed properties fail the resource with a message naming the property', async () => {
    const e = {
      ...event('Create', 'd1'),
      ResourceProperties: { ServiceToken: 'x', ...properties('d1'), RestoreMultiAz: 'yes' },
    } as ProviderEvent;
    await expect(handlers(SOP_MIGRATIONS).onEvent(e)).rejects.toThrow(
      'Custom::SchemaMigrations property RestoreMultiAz must be "true" or "false", got "yes"',
    );
  });

  test('a Lambda killed mid-migration (its process SIGKILLed) is re-invoked and completes, applying each migration once', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await query(fixture.targetUrl, 'CREATE TABLE slow_marker (id int)');
    const dir = sopPlus({
      '000003_slow.up.sql': `CREATE TABLE speakers (id int);\nSELECT pg_sleep(CASE WHEN to_regclass('public.slow_marker') IS NULL THEN 0 ELSE 60 END);`,
    });
    const e = event('Update', 'd2', 'd1');
    const answer = await handlers(dir).onEvent(e);
    const master = await fixture.secrets.master();
    // One process (tsx as a loader, not its CLI, which would run the script in a child of its own).
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '..', 'helpers', 'invocation.ts')], {
      env: {
        ...process.env,
        ORION_INVOCATION: JSON.stringify({
          adminUrl: adminUrl(),
          serverUrl: fixture.serverUrl,
          database: fixture.roles.database,
          master,
          app: fixture.secrets.appCredentials,
          migrationsDir: dir,
          event: { ...e, ...answer },
        }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Killed as Lambda kills at its timeout, while the migration's statement runs.
      for (let i = 0; ; i++) {
        const running = await adminQuery(
          `SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(CASE%' AND state = 'active' AND pid <> pg_backend_pid()`,
        );
        if (running.length) break;
        if (i > 600 || child.exitCode !== null)
          throw new Error(`the invocation never reached the migration (${child.exitCode})`);
        await new Promise((r) => setTimeout(r, 100));
      }
      child.kill('SIGKILL');
      expect(await exited).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    await query(fixture.targetUrl, 'DROP TABLE slow_marker');
    // The server ends the dead session within a second (client_connection_check_interval) and frees the lock.
    const resumed = await deploy(dir, e);
    expect(resumed.Data).toMatchObject({ FromVersion: '2', ToVersion: '3', Applied: '1' });
    expect((await ledger()).filter((r) => r.version === 3 && r.status === 'applied')).toHaveLength(1);
  });

  test('as the Provider framework runs it: a thrown isComplete fails at once, a false one is polled until the waiter gives up', async () => {
    const waiter = { maxAttempts: 3 };
    // A throw on the first poll: FAILED with our message, never a second poll.
    rds.on(ModifyDBInstanceCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    const denied = await provider(handlers(SOP_MIGRATIONS), event('Create', 'd1'), context, waiter);
    expect(denied).toMatchObject({
      Status: 'FAILED',
      Reason: 'Schema migrations did not start: not authorized. Nothing was changed.',
      PhysicalResourceId: CREATE_FAILED_PHYSICAL_ID_MARKER,
      polls: 1,
    });
    rds.on(ModifyDBInstanceCommand).resolves({});
    const created = await provider(handlers(SOP_MIGRATIONS), event('Create', 'd1'), context, waiter);
    expect(created).toMatchObject({ Status: 'SUCCESS', Data: { ToVersion: '2', Applied: '2' }, polls: 1 });
    // A snapshot that never becomes available: IsComplete false (without Data) each time, then the waiter's end.
    const local = new TemplateDatabaseSnapshots(admin, fixture.roles.database);
    const stuck: SnapshotPort = {
      ensure: async () => 'creating',
      list: () => local.list(),
      delete: (id) => local.delete(id),
      restoreStatus: (id) => local.restoreStatus(id),
      keptAs: (id) => local.keptAs(id),
      restore: (id, reason) => local.restore(id, reason),
    };
    const dir = sopPlus(SPEAKERS_UP);
    const waited = await provider(handlers(dir, undefined, stuck), event('Update', 'd2', 'd1'), context, waiter);
    expect(waited).toMatchObject({ Status: 'FAILED', Reason: 'Operation timed out', polls: 4 });
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
  });

  test('a connection lost for good mid-migration fails the resource without claiming nothing changed', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const { it: proxy, url: viaProxy } = await inFrontOfServer(cuttingProxy);
    try {
      proxy.cutAfter(/CREATE TABLE cut_b/, 2); // the batch, and the run that follows the reconnection
      const h = handlers(sopPlus({ '000003_cut.up.sql': 'CREATE TABLE cut_b (id int);' }), viaProxy);
      const e = event('Update', 'd2', 'd1');
      await h.onEvent(e);
      const err = await h.isComplete(e, context).catch((x) => x);
      expect(proxy.cuts).toBe(2);
      expect(err.message).toMatch(
        /^Schema migration failed: the connection to the database was lost during the migration \(.*\): whether the last batch committed is unknown/,
      );
      expect(err.message).not.toMatch(/did not start|Nothing was changed/);
      expect(metrics.MigrationFailures).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  test('a connection cut in the lockdown after the migrations committed says the versions from the ledger, never "nothing was changed"', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const { it: proxy, url: viaProxy } = await inFrontOfServer(cuttingProxy);
    try {
      proxy.cutAfter(/SELECT rolname FROM pg_roles WHERE rolname = ANY/); // the lockdown's first read
      const dir = sopPlus(SPEAKERS_UP);
      const err = await deploy(dir, event('Update', 'd2', 'd1'), handlers(dir, viaProxy)).catch((x) => x);
      expect(proxy.cuts).toBe(1);
      expect(err.message).toMatch(
        /^Schema migration failed: lockdown failed: .*\. Version 2 before this deploy, 3 now \(read from the ledger\)\. Nothing was restored\. The privilege lockdown did not complete; the next deploy re-asserts it\.$/,
      );
      expect(err.message).not.toMatch(/did not start|Nothing was changed/);
      expect(await tableNames(fixture.targetUrl)).toContain('speakers');
    } finally {
      await proxy.close();
    }
  });

  test('when the restored database cannot be reached, the message says the restore happened and the version is unread', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await query(fixture.targetUrl, insertActivities('dup', 'dup'));
    const { it: gate, url: viaGate } = await inFrontOfServer(gatedPort);
    try {
      const unreachable = closingAfterRestore(gate); // and never answers again
      const dir = sopPlus({
        ...SPEAKERS_UP,
        '000004_unique_title.up.sql':
          '-- orion:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_title ON activities (title);',
      });
      const h = handlers(dir, viaGate, unreachable);
      const e = event('Update', 'd2', 'd1');
      await h.onEvent(e);
      const shortContext = { getRemainingTimeInMillis: () => 12_000 }; // reconnects for 4 s
      const err = await h.isComplete(e, shortContext).catch((x) => x);
      expect(err.message).toMatch(
        /^Schema migration failed: connecting to the restored database failed after the migrations had committed: (cannot|could not) connect .*\. Version 2 before this deploy, unknown now \(the ledger could not be read\)\. The database was restored from snapshot .*; the failed one is kept as .*_failed_[0-9a-f]{8}\.$/,
      );
      expect(err.message).not.toMatch(/did not start|Nothing was changed/);
    } finally {
      await gate.dispose();
    }
  });

  test('pruning old snapshots is best-effort: a snapshot that cannot be deleted never fails the deploy', async () => {
    const local = new TemplateDatabaseSnapshots(admin, fixture.roles.database);
    const undeletable: SnapshotPort = {
      ensure: (id, tags) => local.ensure(id, tags),
      list: () => local.list(),
      delete: async () => {
        throw Object.assign(new Error('not authorized to delete the snapshot'), { name: 'AccessDenied' });
      },
      restoreStatus: (id) => local.restoreStatus(id),
      keptAs: (id) => local.keptAs(id),
      restore: (id, reason) => local.restore(id, reason),
    };
    const keepOne = (e: ProviderEvent) =>
      ({ ...e, ResourceProperties: { ...e.ResourceProperties, SnapshotRetention: '1' } }) as ProviderEvent;
    await deploy(SOP_MIGRATIONS, keepOne(event('Create', 'd1')), handlers(SOP_MIGRATIONS, undefined, undeletable));
    const dir = sopPlus(SPEAKERS_UP);
    const done = await deploy(dir, keepOne(event('Update', 'd2', 'd1')), handlers(dir, undefined, undeletable));
    expect(done.Data).toMatchObject({ FromVersion: '2', ToVersion: '3', Applied: '1' });
    expect(JSON.stringify(logs)).toMatch(
      /old snapshots were not all deleted \(.*: not authorized to delete the snapshot\)/,
    );
    expect(await fixture.snapshotDatabases()).toHaveLength(2);
  });

  test('the prune never deletes a snapshot still being taken, and one failed delete does not stop the others', async () => {
    const local = new TemplateDatabaseSnapshots(admin, fixture.roles.database);
    const asked: string[] = [];
    let refused: string | undefined;
    const creating = `${fixture.prefix}-pre-still-being-taken`;
    const port: SnapshotPort = {
      ensure: (id, tags) => local.ensure(id, tags),
      // RDS lists a snapshot being taken without a creation time: it looked like the oldest.
      list: async () => [...(await local.list()), { id: creating, createdAt: new Date(0), creating: true }],
      delete: async (id) => {
        asked.push(id);
        if (!refused) {
          refused = id;
          throw Object.assign(new Error('the snapshot is busy'), { name: 'InvalidDBSnapshotStateFault' });
        }
        await local.delete(id);
      },
      restoreStatus: (id) => local.restoreStatus(id),
      keptAs: (id) => local.keptAs(id),
      restore: (id, reason) => local.restore(id, reason),
    };
    const keep = (n: number, e: ProviderEvent) =>
      ({ ...e, ResourceProperties: { ...e.ResourceProperties, SnapshotRetention: String(n) } }) as ProviderEvent;
    await deploy(SOP_MIGRATIONS, keep(5, event('Create', 'd1')), handlers(SOP_MIGRATIONS, undefined, port));
    const three = sopPlus(SPEAKERS_UP);
    await deploy(three, keep(5, event('Update', 'd2', 'd1')), handlers(three, undefined, port));
    const four = sopPlus({ ...SPEAKERS_UP, '000004_talks.up.sql': 'CREATE TABLE talks (id int);' });
    const done = await deploy(four, keep(1, event('Update', 'd3', 'd2')), handlers(four, undefined, port));
    expect(done.Data).toMatchObject({ ToVersion: '4' });
    expect(asked).not.toContain(creating);
    expect(asked).toHaveLength(2); // both older ones were tried, the refusal notwithstanding
    expect(JSON.stringify(logs)).toContain(`old snapshots were not all deleted (${refused}: the snapshot is busy)`);
    expect(await fixture.snapshotDatabases()).toHaveLength(2); // the newest, and the one refused
  });

  test('a no-op deploy sends no GRANT, REVOKE or ALTER: the lockdown and the bootstrap read first and write only drift', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const { it: proxy, url: viaProxy } = await inFrontOfServer(cuttingProxy);
    try {
      const h = handlers(SOP_MIGRATIONS, viaProxy);
      const noop = await deploy(SOP_MIGRATIONS, event('Update', 'd2', 'd1'), h);
      expect(noop.Data).toMatchObject({ FromVersion: '2', ToVersion: '2', Applied: '0' });
      // A message's length bytes come right before its SQL, hence no \b. The probe as the application
      // tries CREATE DATABASE/ROLE/SCHEMA/TABLE, which must be refused: not ours.
      const writes = (text: string) =>
        (text.match(/(GRANT|REVOKE|ALTER|REASSIGN|CREATE|DROP)\s[^\0]*/g) ?? []).filter((t) => !/orion_probe_/.test(t));
      expect(proxy.sent.flatMap(writes)).toEqual([]);
      // Drift is still found and corrected, with only the statements it needs.
      await adminQuery(`ALTER ROLE "${fixture.roles.app}" CREATEDB`);
      proxy.clearSent();
      await deploy(SOP_MIGRATIONS, event('Update', 'd3', 'd2'), h);
      expect(proxy.sent.flatMap(writes)).toEqual([
        `ALTER ROLE "${fixture.roles.app}" NOCREATEDB NOCREATEROLE INHERIT LOGIN`,
      ]);
    } finally {
      await proxy.close();
    }
  });

  test('a poll while the snapshot is being taken scans no table; the migrating invocation counts them, bounded', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const { it: proxy, url: viaProxy } = await inFrontOfServer(cuttingProxy);
    try {
      const local = new TemplateDatabaseSnapshots(admin, fixture.roles.database);
      let polls = 0;
      const slow: SnapshotPort = {
        ensure: async (id, tags) => (++polls < 3 ? 'creating' : local.ensure(id, tags)), // as RDS: minutes
        list: () => local.list(),
        delete: (id) => local.delete(id),
        restoreStatus: (id) => local.restoreStatus(id),
        keptAs: (id) => local.keptAs(id),
        restore: (id, reason) => local.restore(id, reason),
      };
      const dir = sopPlus(SPEAKERS_UP);
      const h = handlers(dir, viaProxy, slow);
      const e = event('Update', 'd2', 'd1');
      await h.onEvent(e);
      proxy.clearSent();
      await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: false });
      const scans = (text: string) => /count\(\*\)/i.test(text);
      expect(proxy.sent.filter(scans)).toEqual([]);
      await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: false });
      expect(proxy.sent.filter(scans)).toEqual([]);
      const done = await h.isComplete(e, context);
      expect(done).toMatchObject({ IsComplete: true, Data: { Applied: '1' } });
      expect(proxy.sent.filter(scans).length).toBeGreaterThan(0); // the invocation that migrates counts
      expect(proxy.sent.some((t) => /SET LOCAL statement_timeout = 10000/.test(t))).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  test('a migration that cannot finish in the invocation’s time fails saying so, and how to run it instead', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const dir = sopPlus({ '000003_slow.up.sql': 'CREATE TABLE speakers (id int);\nSELECT pg_sleep(30);' });
    const h = handlers(dir);
    const e = event('Update', 'd2', 'd1');
    const answer = await h.onEvent(e);
    const nearlyOver = { getRemainingTimeInMillis: () => 63_000 }; // 3 s left for the statements
    const err = await h.isComplete({ ...e, ...answer }, nearlyOver).catch((x) => x);
    expect(err.message).toMatch(
      /^Schema migration failed: 000003_slow\.up\.sql:\d+ SQLSTATE 57014: canceling statement due to statement timeout\. The database was left unchanged at version 2\. It could not finish within one invocation of the migration function .*: run it with `orion-db up` from inside the VPC .*, or split the migration/,
    );
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
  });

  test('no poll starts after 45 minutes: the request fails saying why, before CloudFormation’s hour, and touches nothing', async () => {
    const h = handlers(SOP_MIGRATIONS);
    const e = event('Create', 'd1');
    const answer = await h.onEvent(e);
    expect(Date.parse(String(answer.StartedAt))).toBeGreaterThan(Date.now() - 60_000);
    const late = {
      ...e,
      ...answer,
      StartedAt: new Date(Date.now() - lastPollAfter().toMilliseconds() - 1_000).toISOString(),
    };
    await expect(h.isComplete(late, context)).rejects.toThrow(
      /^Schema migrations stopped waiting after 45 minutes, before CloudFormation's one-hour limit .* `orion-db up` from inside the VPC/,
    );
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [fixture.roles.database])).toEqual([]);
    // A rollback that late completes (it must never fail), leaving the database alone, with the alarm.
    stackStatus('UPDATE_ROLLBACK_IN_PROGRESS');
    const lateRollback = { ...event('Update', 'd1', 'd2'), StartedAt: late.StartedAt };
    await expect(h.isComplete(lateRollback, context)).resolves.toEqual({ IsComplete: true });
    expect(metrics).toMatchObject({ RollbackProblems: 1 });
  });

  test('a rollback that cannot be told from a deploy is not polled past the hour: it ends naming DescribeStacks’ error', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    cfn.on(DescribeStacksCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));
    const h = handlers(sopPlus(SPEAKERS_UP));
    const e = event('Update', '1', '2'); // build numbers, not synth times: they decide nothing
    const late = {
      ...e,
      ...(await h.onEvent(e)),
      StartedAt: new Date(Date.now() - lastPollAfter().toMilliseconds() - 1_000).toISOString(),
    };
    await expect(h.isComplete(late, context)).rejects.toThrow(
      /^Schema migrations stopped waiting after 45 minutes, before CloudFormation's one-hour limit: whether the stack is rolling back could not be told \(DescribeStacks failed: Rate exceeded;/,
    );
    expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    expect(metrics).toMatchObject({ MigrationFailures: 1 });
  });

  test('the last poll start is the one the stack passes (its time budget), not a number of its own', async () => {
    const h = handlers(SOP_MIGRATIONS, fixture.serverUrl, undefined, 10 * 60_000);
    const e = event('Create', 'd1');
    const late = { ...e, ...(await h.onEvent(e)), StartedAt: new Date(Date.now() - 11 * 60_000).toISOString() };
    await expect(h.isComplete(late, context)).rejects.toThrow(/^Schema migrations stopped waiting after 10 minutes/);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [fixture.roles.database])).toEqual([]);
  });

  test('no secret appears in any log line or failure message, even where the server or the parser echoes it', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    const app = fixture.secrets.appCredentials.password;
    const master = (await fixture.secrets.master()).password;
    // PostgreSQL quotes the bad input back: invalid input syntax for type integer: "<secret>".
    const failed = await deploy(
      sopPlus({ '000003_leak.up.sql': `SELECT '${app}'::int;\nSELECT '${master}'::int;` }),
      event('Update', 'd2', 'd1'),
    ).catch((e) => e);
    expect(failed.message).toMatch(
      /^Schema migration failed: 000003_leak\.up\.sql:1 SQLSTATE 22P02: invalid input syntax/,
    );
    expect(failed.message).toContain('"***"');
    // The parser quotes the token it stops at, before anything runs: syntax error at or near "'<secret>'".
    const refused = await deploy(
      sopPlus({ '000003_leak.up.sql': `SELECT 1 '${master}';` }),
      event('Update', 'd3', 'd1'),
    ).catch((e) => e);
    expect(refused.message).toMatch(/^Schema migrations did not start: .*syntax error at or near "'\*\*\*'"/);
    const logged = JSON.stringify(logs);
    expect(logged).toMatch(/deploy report/);
    for (const text of [logged, failed.message, refused.message]) {
      expect(text).not.toContain(app);
      expect(text).not.toContain(master);
    }
  });
  test('after an in-place restore the endpoint answers only later: the deploy waits for it and reports the restore', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    await query(fixture.targetUrl, insertActivities('dup', 'dup'));
    const { it: gate, url: viaGate } = await inFrontOfServer(gatedPort);
    try {
      // As RDS: once the restored instance has taken the name, the name does not resolve for a while.
      const renaming = closingAfterRestore(gate, 1_500);
      const dir = sopPlus({
        ...SPEAKERS_UP,
        '000004_unique_title.up.sql':
          '-- orion:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS activities_title ON activities (title);',
      });
      const err = await deploy(dir, event('Update', 'd2', 'd1'), handlers(dir, viaGate, renaming)).catch((e) => e);
      expect(err.message).toMatch(/SQLSTATE 23505.*The database was restored from snapshot .* \(version 2\)/);
      expect(err.message).not.toMatch(/did not start|could not connect/);
      expect(await tableNames(fixture.targetUrl)).not.toContain('speakers');
    } finally {
      await gate.dispose();
    }
  });

  test('a deploy applies the configured deletion protection to the instance before it migrates', async () => {
    await deploy(SOP_MIGRATIONS, event('Create', 'd1'));
    expect(protectionChanges()).toEqual([true]); // RestoreDeletionProtection: 'true'
    instance({ DeletionProtection: true, InstanceCreateTime: new Date('2026-11-02T10:05:00Z') });
    await deploy(SOP_MIGRATIONS, event('Update', 'd2', 'd1'));
    expect(protectionChanges()).toEqual([true]); // already on: left alone
    rds.on(ModifyDBInstanceCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDenied' }));
    instance({ DeletionProtection: false });
    await expect(deploy(SOP_MIGRATIONS, event('Update', 'd3', 'd2'))).rejects.toThrow(
      /^Schema migrations did not start: not authorized\. Nothing was changed\.$/,
    );
  });

  test('a Delete while the stack’s creation rolls back lifts deletion protection of the instance it created, and waits for it', async () => {
    stackStatus('ROLLBACK_IN_PROGRESS');
    instance({ DeletionProtection: true, InstanceCreateTime: new Date('2026-11-02T10:05:00Z') });
    const h = handlers(SOP_MIGRATIONS);
    const e = event('Delete', 'd1');
    await h.onEvent(e);
    expect(protectionChanges()).toEqual([false]);
    const created = new Date('2026-11-02T10:05:00Z');
    instance({ DeletionProtection: false, DBInstanceStatus: 'modifying', InstanceCreateTime: created });
    await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: false });
    instance({ DeletionProtection: false, DBInstanceStatus: 'available', InstanceCreateTime: created });
    await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: true });
    expect(protectionChanges()).toEqual([false]);
  });

  test('Delete leaves deletion protection alone when the stack is deleted, or the instance is older than the stack', async () => {
    const h = handlers(SOP_MIGRATIONS);
    stackStatus('DELETE_IN_PROGRESS');
    instance({ DeletionProtection: true, InstanceCreateTime: new Date('2026-11-02T10:05:00Z') });
    await h.onEvent(event('Delete', 'd1'));
    await expect(h.isComplete(event('Delete', 'd1'), context)).resolves.toEqual({ IsComplete: true });
    stackStatus('ROLLBACK_IN_PROGRESS');
    instance({ DeletionProtection: true, InstanceCreateTime: new Date('2026-01-01T00:00:00Z') }); // adopted
    await h.onEvent(event('Delete', 'd1'));
    expect(protectionChanges()).toEqual([]);
    // Whatever goes wrong, a Delete completes: a failure would leave the rollback stuck.
    cfn.on(DescribeStacksCommand).rejects(new Error('DescribeStacks is not allowed'));
    await expect(h.isComplete(event('Delete', 'd1'), context)).resolves.toEqual({ IsComplete: true });
    expect(metrics.RollbackProblems).toBe(1);
  });

  test('an adopted instance (AdoptedInstance "true"): protection is turned on, never off, not even by a failed create’s rollback', async () => {
    const adopted = (e: ProviderEvent, protect: 'true' | 'false') =>
      withProps(e, { AdoptedInstance: 'true', RestoreDeletionProtection: protect });
    // An environment configured without protection deploys, and the protected instance keeps it.
    instance({ DeletionProtection: true, InstanceCreateTime: new Date('2026-11-02T10:05:00Z') });
    await deploy(SOP_MIGRATIONS, adopted(event('Create', 'd1'), 'false'));
    expect(protectionChanges()).toEqual([]);
    // The stack's first create rolls back: the Delete completes at once and changes nothing.
    stackStatus('ROLLBACK_IN_PROGRESS');
    const h = handlers(SOP_MIGRATIONS);
    const e = adopted(event('Delete', 'd1'), 'true');
    await h.onEvent(e);
    await expect(h.isComplete(e, context)).resolves.toEqual({ IsComplete: true });
    expect(protectionChanges()).toEqual([]);
    // Configured on, an unprotected adopted instance is protected.
    stackStatus('UPDATE_IN_PROGRESS');
    instance({ DeletionProtection: false });
    await deploy(SOP_MIGRATIONS, adopted(event('Update', 'd2', 'd1'), 'true'));
    expect(protectionChanges()).toEqual([true]);
  });
});
