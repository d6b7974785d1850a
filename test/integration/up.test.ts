/**
 * `orion-db up` end to end, as `npm start` runs it: its own embedded PostgreSQL under .orion/.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { stopLocalServer } from '../../lambda/local/local-server';
import { runCli } from '../helpers/cli';
import { insertActivities, SHIPPED_MIGRATIONS } from '../helpers/db';

const project = mkdtempSync(join(tmpdir(), 'orion-up-'));
chmodSync(project, 0o755); // the server runs as user postgres when the tests run as root
cpSync(SHIPPED_MIGRATIONS, join(project, 'migrations'), { recursive: true });
/** Whatever the shipped folder holds today: this test must not change when a migration is added. */
const shippedVersions = readdirSync(SHIPPED_MIGRATIONS)
  .filter((f) => f.endsWith('.up.sql'))
  .map((f) => BigInt(f.split('_')[0]))
  .sort((a, b) => (a < b ? -1 : 1))
  .map(String);
const newest = shippedVersions.at(-1)!;

afterAll(async () => {
  await stopLocalServer(join(project, '.orion'));
});

describe('orion-db up (npm start)', () => {
  test('brings up the embedded database, applies the migrations, locks orion_app down; a second run is a no-op', async () => {
    const first = await runCli(['up', '--json'], { cwd: project });
    expect(first.code, first.stderr).toBe(0);
    const report = first.json();
    expect(report).toMatchObject({
      ok: true,
      command: 'up',
      from_version: null,
      to_version: newest,
      restored: false,
      errors: [],
    });
    expect(report.applied.map((a: any) => a.version)).toEqual(shippedVersions);
    expect(report.snapshot).toMatch(/^orion-local-pre-local-/);
    expect(report.lockdown.ok).toBe(true);
    expect(report.app_url).toMatch(/^postgres:\/\/orion_app@127\.0\.0\.1:\d+\/orion_prod$/);

    const secretsFile = join(project, '.orion', 'secrets.json');
    expect(statSync(secretsFile).mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(readFileSync(secretsFile, 'utf8'));

    const second = await runCli(['up'], { cwd: project });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`^ok: ${newest} → ${newest}, applied 0, pending 0$`, 'm'));
    expect(second.stdout).not.toMatch(/snapshot:/);
    expect(second.stdout).toMatch(
      /application connection: postgres:\/\/orion_app@127\.0\.0\.1:\d+\/orion_prod\n {2}password: .*secrets\.json \("appPassword"\)/,
    );
    for (const output of [first.stdout, first.stderr, second.stdout, second.stderr]) {
      expect(output).not.toContain(secrets.appPassword);
      expect(output).not.toContain(secrets.masterPassword);
    }
  });

  test('a port taken by another program moves the server to a free port instead of hanging', async () => {
    const state = join(project, '.orion', 'server.json');
    const { port } = JSON.parse(readFileSync(state, 'utf8'));
    expect(await stopLocalServer(join(project, '.orion'))).toBe(true);
    const squatter = createServer().listen(port, '127.0.0.1');
    await new Promise((r) => squatter.once('listening', r));
    try {
      const run = await runCli(['up', '--json'], { cwd: project });
      expect(run.code, run.stderr).toBe(0);
      expect(run.stderr).toMatch(
        new RegExp(`port ${port} is taken by another program; moving this project's server to port \\d+`),
      );
      expect(run.json()).toMatchObject({ ok: true, applied: [], snapshot: null });
      expect(JSON.parse(readFileSync(state, 'utf8')).port).not.toBe(port);
    } finally {
      squatter.close();
    }
  });

  test('a copy of the project folder (with .orion/) starts its own server, and stopping it never stops the original', async () => {
    const original = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8')).port;
    const copy = mkdtempSync(join(tmpdir(), 'orion-up-copy-'));
    chmodSync(copy, 0o755);
    execFileSync('cp', ['-a', `${project}/.`, copy]); // owners kept, and the running server's postmaster.pid comes along
    try {
      expect(await stopLocalServer(join(copy, '.orion'))).toBe(false);
      const again = await runCli(['up', '--json'], { cwd: project }); // the original's server still runs
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toMatch(/PostgreSQL started/);

      const ownRun = await runCli(['up', '--json'], { cwd: copy });
      expect(ownRun.code, ownRun.stderr + ownRun.stdout).toBe(0);
      expect(ownRun.stderr).toMatch(/copied from another project folder; starting its own server on port \d+/);
      const port = JSON.parse(readFileSync(join(copy, '.orion', 'server.json'), 'utf8')).port;
      expect(port).not.toBe(original);
      expect(ownRun.json().app_url).toContain(`:${port}/`);
    } finally {
      await stopLocalServer(join(copy, '.orion'));
    }
    const after = await runCli(['up', '--json'], { cwd: project });
    expect(after.code, after.stderr).toBe(0);
    expect(after.stderr).not.toMatch(/PostgreSQL started/);
  });

  test('verify compares two databases: equal data passes, a difference exits 1 naming the table', async () => {
    const port = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8')).port;
    const { masterPassword } = JSON.parse(readFileSync(join(project, '.orion', 'secrets.json'), 'utf8'));
    const url = (db: string) => `postgres://postgres:${masterPassword}@127.0.0.1:${port}/${db}`;
    const { Client } = await import('pg');
    const c = new Client({ connectionString: url('orion_prod') });
    await c.connect();
    await c.query(insertActivities('a', 'b'));
    await c.end();
    const admin = new Client({ connectionString: url('postgres') });
    await admin.connect();
    await admin.query(`CREATE DATABASE copy_of_prod TEMPLATE orion_prod`);
    await admin.end();
    const same = await runCli([
      'verify',
      '--from',
      url('orion_prod'),
      '--to',
      url('copy_of_prod'),
      '--sample',
      '1',
      '--json',
    ]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.json().tables.activities).toMatchObject({ from: { rows: 2 }, to: { rows: 2 } });
    const copy = new Client({ connectionString: url('copy_of_prod') });
    await copy.connect();
    await copy.query(`UPDATE activities SET title = 'changed' WHERE title = 'b'`);
    await copy.end();
    const changed = await runCli([
      'verify',
      '--from',
      url('orion_prod'),
      '--to',
      url('copy_of_prod'),
      '--sample',
      '1',
      '--json',
    ]);
    expect(changed.code).toBe(1);
    expect(changed.json().errors).toEqual([
      {
        message: expect.stringMatching(
          /^table activities: same row count \(2\) but the sampled rows differ: key id=[0-9a-f-]{36} differs in title$/,
        ),
      },
    ]);
    expect(changed.stdout).not.toContain(masterPassword);
  });
});
