/**
 * The CI's own gates (issue #21): each script .ci/run relies on must fail when what it checks fails.
 * The scripts run for real, each in a throwaway copy of the project where the program it drives is
 * a stand-in that succeeds or fails on demand.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';

const ROOT = join(__dirname, '..', '..');

/** A throwaway project holding `scripts/<script>` and the given files. */
function project(script: string, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'orion-gate-'));
  for (const [name, content] of Object.entries({ ...files })) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  mkdirSync(join(dir, 'scripts'), { recursive: true });
  copyFileSync(join(ROOT, 'scripts', script), join(dir, 'scripts', script));
  return dir;
}

const bash = (dir: string, script: string, args: string[] = []) =>
  spawnSync('bash', [join(dir, 'scripts', script), ...args], { cwd: dir, encoding: 'utf8' });

describe('scripts/check-test-gate.sh (the proof that a failing test fails the suite)', () => {
  const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  /**
   * vitest replaced by a stand-in that prints `output`, maybe leaves the server's directory or a process
   * running on it (a postgres command line, pid in server.pid), and exits `code`.
   */
  const withVitest = (output: string, code: number, leave: { dir?: boolean; server?: boolean } = {}) => {
    const dir = project('check-test-gate.sh', {
      'node_modules/vitest/vitest.mjs': `
          import { spawn } from 'node:child_process';
          import { mkdirSync, writeFileSync } from 'node:fs';
          const data = ${JSON.stringify(shm)} + '/orion-test-' + process.pid + '-left';
          console.log(${JSON.stringify(output)});
          if (${!!leave.dir}) mkdirSync(data);
          if (${!!leave.server}) {
            const p = spawn('bash', ['-c', 'exec -a "postgres -D ' + data + '/data" sleep 120'], { detached: true, stdio: 'ignore' });
            p.unref();
            writeFileSync('server.pid', String(p.pid));
          }
          process.exit(${code});`,
    });
    const run = bash(dir, 'check-test-gate.sh');
    if (existsSync(join(dir, 'server.pid'))) process.kill(Number(readFileSync(join(dir, 'server.pid'), 'utf8')));
    return run;
  };
  const failed = 'FAIL the gate can fail: expected this test to be deliberately failing\n Tests  1 failed (1)';

  test('passes when the deliberately failing test fails the run and the server is cleaned up', () => {
    const run = withVitest(failed, 1);
    expect(run.stdout).toMatch(/test gate ok: a failing test exits 1/);
    expect(run.status).toBe(0);
  });

  test('fails when a failing test exits 0, when the failure is not reported, or when the server or its directory is left', () => {
    const exit0 = withVitest(failed, 0);
    expect(exit0.status).toBe(1);
    expect(exit0.stderr).toMatch(/a failing test made vitest exit 0/);
    const crashed = withVitest('Error: cannot start PostgreSQL', 1);
    expect(crashed.status).toBe(1);
    expect(crashed.stderr).toMatch(/without reporting the deliberate failure/);
    const running = withVitest(failed, 1, { server: true });
    expect(running.status).toBe(1);
    expect(running.stderr).toMatch(/the embedded PostgreSQL is still running: pid \d+/);
    const left = withVitest(failed, 1, { dir: true });
    for (const d of readdirSync(shm).filter((d) => /^orion-test-\d+-left$/.test(d)))
      rmSync(join(shm, d), { recursive: true, force: true });
    expect(left.status).toBe(1);
    expect(left.stderr).toMatch(/directory was left behind/);
  });
});

describe('scripts/with-pg15.sh (the PostgreSQL 15 run)', () => {
  const pg15 = existsSync('/usr/lib/postgresql/15/bin/initdb');
  test.skipIf(!pg15)('hands the command a PostgreSQL 15 and exits with the command’s own status', () => {
    const run = spawnSync(
      'bash',
      [
        join(ROOT, 'scripts', 'with-pg15.sh'),
        'bash',
        '-c',
        'psql "$ORION_TEST_DATABASE_URL" -XtAc "SHOW server_version_num" && exit 3',
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(run.stdout).toMatch(/^15\d{4}$/m);
    expect(run.status).toBe(3);
  });
});

describe('scripts/check-private-home.sh (the README commands as root from a private folder)', () => {
  const root = process.getuid?.() === 0;
  /** A git project whose npm scripts exit with the given codes; node_modules present, so no npm ci. */
  const withNpm = (codes: { start: number; stop: number; test: number }) => {
    const scripts = Object.fromEntries(
      Object.entries(codes).map(([name, code]) => [name, `node -e "process.exit(${code})"`]),
    );
    const dir = project('check-private-home.sh', {
      'package.json': JSON.stringify({ name: 'gate', private: true, scripts }),
      'node_modules/.keep': '',
    });
    execFileSync('git', ['init', '-q'], { cwd: dir });
    execFileSync('git', ['add', 'package.json', 'scripts'], { cwd: dir });
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'gate'], { cwd: dir });
    return bash(dir, 'check-private-home.sh');
  };

  test.skipIf(!root)('passes when both commands work, fails when npm start or npm test fails there', () => {
    expect(withNpm({ start: 0, stop: 0, test: 0 }).status).toBe(0);
    expect(withNpm({ start: 4, stop: 0, test: 0 }).status).not.toBe(0);
    expect(withNpm({ start: 0, stop: 0, test: 5 }).status).not.toBe(0);
  });
});

describe('the suite interrupted (Ctrl-C, a CI timeout)', () => {
  test('its embedded PostgreSQL is stopped and its directory removed, not left running', async () => {
    const shm = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    const marker = join(mkdtempSync(join(tmpdir(), 'orion-interrupt-')), 'started');
    const vitest = spawn(
      process.execPath,
      [join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', '--config', 'test/gate/interrupted.config.mts'],
      {
        cwd: ROOT,
        env: { ...process.env, ORION_INTERRUPT_MARKER: marker, ORION_TEST_DATABASE_URL: '' },
        stdio: 'ignore',
      },
    );
    const exited = new Promise<number | null>((resolve) =>
      vitest.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))),
    );
    const started = Date.now();
    while (!existsSync(marker) && Date.now() - started < 90_000) await new Promise((r) => setTimeout(r, 200));
    expect(existsSync(marker)).toBe(true);
    const dirs = () => readdirSync(shm).filter((d) => d.startsWith(`orion-test-${vitest.pid}-`));
    expect(dirs()).toHaveLength(1);
    vitest.kill('SIGINT'); // the vitest process alone, as `timeout -s INT` does (Ctrl-C signals the whole group)
    await exited;
    const running = spawnSync('pgrep', ['-f', `-D ${shm}/orion-test-${vitest.pid}-`], {
      encoding: 'utf8',
    }).stdout.trim();
    expect(running).toBe('');
    expect(dirs()).toEqual([]);
  }, 150_000);
});
