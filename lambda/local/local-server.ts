/**
 * The embedded PostgreSQL behind `orion-db up`, kept under `.orion/` and left running between runs
 * (like `docker compose up -d`), so the printed connection string works afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { ConnectionError } from '../engine/errors';
import { freePort } from './embedded-server';
import { initdb, pgCtlStart, pgCtlStop, reachableByServer, serverUser, sharedRoot } from './postgres-programs';

export interface LocalServer {
  readonly port: number;
  /** Server URL without credentials. */
  readonly serverUrl: string;
  /** True when this call started it. */
  readonly started: boolean;
}

interface ServerState {
  port: number;
  /** Absent: `<stateDir>/data`. */
  dataDir?: string;
}

/** Where the data lives outside `.orion/` when the server's user cannot reach it. */
const SHARED_DATA_ROOT = '/var/tmp/orion-db/data';

/** The data directory of the server answering on `port` with this project's password, if one does. */
async function answeringDataDir(port: number, password: string): Promise<string | undefined> {
  const client = new Client({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    password,
    database: 'postgres',
    connectionTimeoutMillis: 2000,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.query<{ d: string }>(`SELECT current_setting('data_directory') AS d`)).rows[0].d;
  } catch (err: any) {
    if (err.code === '28P01')
      throw new ConnectionError(
        `a PostgreSQL on port ${port} refused the password in .orion/secrets.json: it is not this project's server; stop it or delete .orion/server.json to use another port`,
      );
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}

function readState(stateDir: string): ServerState | undefined {
  const path = join(stateDir, 'server.json');
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err: any) {
    throw new ConnectionError(`${path} is not valid JSON (${err.message}): delete it to start a new local server`);
  }
}

/**
 * `.orion/data`, or — as root, when the `postgres` user the server runs as cannot reach `.orion/`
 * (a home of mode 0700) — a folder of its own under /var/tmp, named after `.orion/`'s path. Found
 * there without a `.orion/server.json` naming it, it was left by an earlier clone at the same path
 * (whose password is gone with its `.orion/`): its server is stopped and the folder removed.
 */
function chooseDataDir(stateDir: string, log: (m: string) => void): string | undefined {
  if (reachableByServer(stateDir)) return undefined;
  const root = sharedRoot(SHARED_DATA_ROOT);
  if (!reachableByServer(root, serverUser()))
    throw new ConnectionError(
      `PostgreSQL runs as the postgres user here (we are root), who can reach neither ${stateDir} nor ${root}`,
    );
  const dir = join(root, createHash('sha256').update(stateDir).digest('hex').slice(0, 16));
  if (existsSync(dir)) {
    log(`removing ${dir}, the local PostgreSQL of an earlier copy of this project at the same path`);
    pgCtlStop(dir, 'immediate');
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.log`, { force: true });
  }
  return dir;
}

function sameDir(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  return real(a) === real(b);
}

/**
 * A `postmaster.pid` copied along with the project (`cp -a proj proj2`) names the other copy's server:
 * its second line is the data directory that server runs on. Such a lock file is removed, so this copy
 * neither uses nor stops the other's server. Returns true when it was foreign.
 */
function dropForeignLockFile(dataDir: string): boolean {
  const lockFile = join(dataDir, 'postmaster.pid');
  if (!existsSync(lockFile)) return false;
  if (sameDir(readFileSync(lockFile, 'utf8').split('\n')[1] ?? '', dataDir)) return false;
  rmSync(lockFile, { force: true });
  return true;
}

/** Starts (or finds running) the server whose state lives in `stateDir`. */
export async function ensureLocalServer(
  stateDir: string,
  masterPassword: string,
  log: (m: string) => void,
): Promise<LocalServer> {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const state: ServerState = readState(stateDir) ?? { port: await freePort(), dataDir: chooseDataDir(stateDir, log) };
  const dataDir = state.dataDir ?? join(stateDir, 'data');
  const logFile = state.dataDir ? `${dataDir}.log` : join(stateDir, 'server.log');
  const serverUrl = () => `postgres://127.0.0.1:${state.port}/postgres`;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL in ${dataDir}`);
    initdb(dataDir, masterPassword);
  } else {
    const answering = await answeringDataDir(state.port, masterPassword);
    if (answering !== undefined && sameDir(answering, dataDir)) {
      return { port: state.port, serverUrl: serverUrl(), started: false };
    }
    if (dropForeignLockFile(dataDir) || answering !== undefined) {
      // Copied from another project folder (`cp -a`): that port and lock file belong to its server.
      state.port = await freePort();
      log(`this folder's data was copied from another project folder; starting its own server on port ${state.port}`);
    }
  }
  for (let attempt = 0; ; attempt++) {
    const error = pgCtlStart({ dataDir, port: state.port, logFile });
    if (!error) break;
    if (/Address already in use|could not bind/.test(error) && attempt === 0) {
      const port = await freePort();
      log(`port ${state.port} is taken by another program; moving this project's server to port ${port}`);
      state.port = port;
      continue;
    }
    throw new ConnectionError(`the local PostgreSQL in ${dataDir} did not start: ${error}`);
  }
  writeFileSync(join(stateDir, 'server.json'), JSON.stringify(state) + '\n');
  log(`PostgreSQL started on port ${state.port}`);
  return { port: state.port, serverUrl: serverUrl(), started: true };
}

export async function stopLocalServer(stateDir: string): Promise<boolean> {
  const state = readState(stateDir);
  const dataDir = state?.dataDir ?? join(stateDir, 'data');
  if (dropForeignLockFile(dataDir)) return false; // another folder's server: never stop it from here
  return pgCtlStop(dataDir);
}
