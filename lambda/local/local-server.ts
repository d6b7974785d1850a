/**
 * The embedded PostgreSQL behind `orion-db up`, kept under `.orion/` and left running between runs
 * (like `docker compose up -d`), so the printed connection string works afterwards.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

async function answers(port: number, password: string): Promise<boolean> {
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
    return true;
  } catch (err: any) {
    if (err.code === '28P01')
      throw new ConnectionError(
        `a PostgreSQL on port ${port} refused the password in .orion/secrets.json: it is not this project's server; stop it or delete .orion/server.json to use another port`,
      );
    return false;
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
  } else if (await answers(state.port, masterPassword)) {
    return { port: state.port, serverUrl: serverUrl(), started: false };
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
  return pgCtlStop(state?.dataDir ?? join(stateDir, 'data'));
}
