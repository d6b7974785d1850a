/**
 * The CLI beside `npm start`'s local server (issue #22): the admin URL it prints, the commands that use
 * that server when given no URL, the application role's URL refused in one sentence, readable lockdown
 * lines, lint warnings on up, and a restored deploy that says so.
 */
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MAX_LINE } from '../../cli/text';
import { stopLocalServer } from '../../lambda/local/local-server';
import { runCli } from '../helpers/cli';
import { query, SHIPPED_MIGRATIONS } from '../helpers/db';

const project = mkdtempSync(join(tmpdir(), 'orion-cli-local-'));
chmodSync(project, 0o755); // the server runs as user postgres when the tests run as root
const migrations = join(project, 'migrations');
cpSync(SHIPPED_MIGRATIONS, migrations, { recursive: true });
const inProject = { cwd: project };

let port: number;
let secrets: { masterPassword: string; appPassword: string };
const masterUrl = () => `postgres://postgres:${secrets.masterPassword}@127.0.0.1:${port}/orion_prod`;
const noSecrets = (...outputs: string[]) => {
  for (const o of outputs) {
    expect(o).not.toContain(secrets.masterPassword);
    expect(o).not.toContain(secrets.appPassword);
  }
};

beforeAll(async () => {
  const first = await runCli(['up'], inProject);
  expect(first.code, first.stderr).toBe(0);
  port = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8')).port;
  secrets = JSON.parse(readFileSync(join(project, '.orion', 'secrets.json'), 'utf8'));
});

afterAll(async () => {
  await stopLocalServer(join(project, '.orion'));
  rmSync(project, { recursive: true, force: true });
});

describe('the CLI beside npm start', () => {
  test('npm start prints the admin URL too, and where its password is, never the password', async () => {
    const run = await runCli(['up'], inProject);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(
      `admin connection (status, plan, migrate, down): postgres://postgres@127.0.0.1:${port}/orion_prod\n` +
        `  password: ${join(project, '.orion', 'secrets.json')} ("masterPassword")`,
    );
    noSecrets(run.stdout, run.stderr);
  });

  test('status, plan, migrate and down use the local server when given no URL, and say which', async () => {
    const used = `using the local server in .orion/: postgres://postgres@127.0.0.1:${port}/orion_prod`;
    for (const args of [['status'], ['plan'], ['migrate'], ['down', '--to', '999999999', '--dry-run']]) {
      const run = await runCli([...args, '--json'], inProject);
      expect(run.code, `${args[0]}: ${run.stderr}`).toBe(0);
      expect(run.json().ok).toBe(true);
      expect(run.stderr).toContain(used);
      noSecrets(run.stdout, run.stderr);
    }
    // DATABASE_URL still wins over the local default.
    const env = await runCli(['status'], { ...inProject, env: { DATABASE_URL: 'postgres://u:p@127.0.0.1:1/db' } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/^error: could not connect to 127\.0\.0\.1:1: connection refused/m);
  });

  test("the application role's URL gets one sentence naming the admin URL, not a stack trace", async () => {
    const appUrl = `postgres://orion_app:${secrets.appPassword}@127.0.0.1:${port}/orion_prod`;
    for (const command of ['status', 'plan', 'migrate']) {
      const run = await runCli([command, '--database-url', appUrl], inProject);
      expect(run.code, command).toBe(2);
      expect(run.stderr).toMatch(
        /^error: orion_app is the application role, which may not read the ledger \(orion_schema_history\): use the admin URL instead/m,
      );
      expect(run.stderr).not.toMatch(/internal error|\n\s+at |SQLSTATE|current version/);
      noSecrets(run.stdout, run.stderr);
    }
  });

  test('up warns on stderr about statements cdk synth refuses, and still deploys', async () => {
    writeFileSync(join(migrations, '90000001_notes.up.sql'), 'CREATE TABLE notes (id bigint, body varchar(20));');
    writeFileSync(join(migrations, '90000001_notes.down.sql'), 'DROP TABLE notes;');
    writeFileSync(
      join(migrations, '90000002_notes_body.up.sql'),
      'ALTER TABLE notes ALTER COLUMN body TYPE varchar(10);',
    );
    writeFileSync(
      join(migrations, '90000002_notes_body.down.sql'),
      'ALTER TABLE notes ALTER COLUMN body TYPE varchar(20);',
    );
    const run = await runCli(['up'], inProject);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(
      /^warning: 90000002_notes_body\.up\.sql:1: changing-column-type: [\s\S]+?\n {2}cdk synth refuses this; instead: /m,
    );
    expect(run.stdout).toMatch(/^ok: .* → 90000002, applied 2, pending 0$/m);
  });

  test('the lockdown lists every correction, one per line, each line readable', async () => {
    await query(
      masterUrl(),
      `GRANT ALL ON DATABASE orion_prod TO orion_app; GRANT ALL ON SCHEMA public TO orion_app;
       GRANT ALL ON ALL TABLES IN SCHEMA public TO orion_app`,
    );
    const run = await runCli(['up'], inProject);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^lockdown: ok \(\d+ checks\), corrected \d+:$/m);
    for (const line of ['CREATE on database', 'TEMPORARY on database', 'CREATE on schema public'])
      expect(run.stdout).toContain(`  corrected: orion_app had ${line}\n`);
    expect(run.stdout).toMatch(/^ {2}corrected: orion_app had direct grants: .*\(--json lists all\)$/m);
    expect(`${run.stdout}\n${run.stderr}`.split('\n').filter((l) => l.length > MAX_LINE)).toEqual([]);
  });

  test('a restored deploy says restored, not applied, and where the failed copy is kept', async () => {
    // A non-transactional step commits; the next file fails; the snapshot is restored.
    writeFileSync(
      join(migrations, '90000003_notes_idx.up.sql'),
      '-- orion:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS notes_id ON notes (id);',
    );
    writeFileSync(join(migrations, '90000003_notes_idx.down.sql'), 'DROP INDEX IF EXISTS notes_id;');
    writeFileSync(join(migrations, '90000004_bad.up.sql'), 'CREATE TABLE doomed (id int);\nSELECT 1/0;');
    writeFileSync(join(migrations, '90000004_bad.down.sql'), 'DROP TABLE doomed;');
    const run = await runCli(['up'], inProject);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^FAILED: restored to version 90000002 from the snapshot taken before \(undoing 90000003\), pending 2$/m,
    );
    expect(run.stderr).toMatch(/^the failed database is kept as orion_prod_failed_[0-9a-f]{8}, to inspect/m);
    expect(run.stderr).toMatch(/^error: 90000004_bad\.up\.sql:2: SQLSTATE 22012: division by zero$/m);
    expect(run.stderr).not.toMatch(/^(ok|FAILED): .*applied \d/m);
    const json = await runCli(['up', '--json'], inProject);
    expect(json.json()).toMatchObject({
      restored: true,
      to_version: '90000002',
      pending: [{ version: '90000003' }, { version: '90000004' }],
      applied: [],
      undone: [{ version: '90000003', name: 'notes_idx' }],
      kept_as: expect.stringMatching(/^orion_prod_failed_/),
    });
  });

  test('with the local server stopped, the commands say so and how to start it', async () => {
    expect(await stopLocalServer(join(project, '.orion'))).toBe(true);
    const run = await runCli(['status'], inProject);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /^error: no database given, and the local server in \.orion\/ \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/orion_prod\) is not running: start it with "npm start"/m,
    );
  });
});
