/**
 * The snapshot port for `orion-db up --database-url` against a server it did not start (a shared
 * staging server): a backup is `pg_dump --format=custom` into `.orion/backups/` — the SOP's own step
 * before a migration. It never ends other sessions (a template copy would), and it never restores by
 * itself: on such a server that is a person's decision, so `restore` answers `manual` and `keptAs`
 * gives the file and the command.
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { delimiter, join } from 'node:path';
import { redactUrl, withDatabase, withUser } from '../engine/db';
import { BadInputError } from '../engine/errors';
import type {
  Credentials,
  RestoreState,
  RestoreStatus,
  SnapshotInfo,
  SnapshotPort,
  SnapshotState,
} from '../lifecycle/ports';

export interface DumpSnapshotsOptions {
  /** The server, without credentials. */
  readonly serverUrl: string;
  readonly database: string;
  readonly master: Credentials;
  /** The server's major version: pg_dump refuses a server newer than itself. */
  readonly serverMajor: number;
  /** Where the dumps go (created 0700). */
  readonly dir: string;
  /** Where to look for pg_dump. @default $PATH, then Debian's /usr/lib/postgresql/N/bin */
  readonly searchPath?: readonly string[];
}

export interface PgDump {
  readonly path: string;
  readonly major: number;
}

/** Every pg_dump found, newest first. */
export function findPgDumps(searchPath: readonly string[] = defaultSearchPath()): PgDump[] {
  const found = new Map<string, PgDump>();
  for (const dir of searchPath) {
    const candidate = join(dir, 'pg_dump');
    if (!existsSync(candidate)) continue;
    const path = realpathSync(candidate); // /bin and /usr/bin are often one directory
    if (found.has(path)) continue;
    const out = spawnSync(path, ['--version'], { encoding: 'utf8' });
    const major = Number(/\(PostgreSQL\)\s+(\d+)/.exec(out.stdout ?? '')?.[1]);
    if (out.status === 0 && major) found.set(path, { path, major });
  }
  return [...found.values()].sort((a, b) => b.major - a.major);
}

function defaultSearchPath(): string[] {
  const debian = '/usr/lib/postgresql';
  const versions = existsSync(debian) ? readdirSync(debian).map((v) => join(debian, v, 'bin')) : [];
  return [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...versions];
}

export class DumpSnapshots implements SnapshotPort {
  constructor(private readonly options: DumpSnapshotsOptions) {}

  async ensure(id: string, tags: Readonly<Record<string, string>>): Promise<SnapshotState> {
    const file = this.file(id);
    if (existsSync(file)) return 'available';
    const { serverMajor, searchPath } = this.options;
    const all = findPgDumps(searchPath);
    const pgDump = all.find((d) => d.major >= serverMajor);
    if (!pgDump) {
      throw new BadInputError(
        `the pending migrations do not all run in one transaction, so orion-db up backs ${this.options.database} up first with ` +
          `pg_dump ${serverMajor} or newer (the server is PostgreSQL ${serverMajor}); found ` +
          `${all.length ? all.map((d) => `pg_dump ${d.major} (${d.path})`).join(', ') : 'no pg_dump'}. ` +
          `Install PostgreSQL ${serverMajor}'s client programs, or apply it with "orion-db migrate" (no backup)`,
      );
    }
    mkdirSync(this.options.dir, { recursive: true, mode: 0o700 });
    const partial = `${file}.partial`;
    // The password goes in the environment, never on the command line (visible in ps).
    const result = spawnSync(
      pgDump.path,
      ['--format=custom', '--no-password', `--file=${partial}`, `--dbname=${this.url()}`],
      {
        encoding: 'utf8',
        env: { ...process.env, PGPASSWORD: this.options.master.password, PGAPPNAME: 'orion-db up backup' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    if (result.status !== 0) {
      rmSync(partial, { force: true });
      const why = (result.error?.message ?? result.stderr ?? '').trim().split('\n').slice(-2).join(' ');
      throw new BadInputError(`pg_dump of ${this.options.database} failed, so nothing was migrated: ${why}`);
    }
    renameSync(partial, file);
    writeFileSync(
      `${file}.json`,
      JSON.stringify({ id, database: this.options.database, createdAt: new Date().toISOString(), ...tags }) + '\n',
      { mode: 0o600 },
    );
    return 'available';
  }

  async list(): Promise<SnapshotInfo[]> {
    if (!existsSync(this.options.dir)) return [];
    return readdirSync(this.options.dir)
      .filter((f) => f.endsWith('.dump.json'))
      .map((f) => JSON.parse(readFileSync(join(this.options.dir, f), 'utf8')))
      .filter((m) => m.database === this.options.database && existsSync(this.file(m.id)))
      .map((m) => ({ id: m.id as string, createdAt: statSync(this.file(m.id)).mtime }));
  }

  async delete(id: string): Promise<void> {
    rmSync(this.file(id), { force: true });
    rmSync(`${this.file(id)}.json`, { force: true });
  }

  async restore(): Promise<RestoreState> {
    return 'manual';
  }

  async restoreStatus(): Promise<RestoreStatus> {
    return { state: 'none' };
  }

  keptAs(id: string): string {
    return `${this.file(id)} (to restore it: pg_restore --clean --if-exists --single-transaction --dbname=${redactUrl(this.url())} ${this.file(id)})`;
  }

  private file(id: string): string {
    return join(this.options.dir, `${id}.dump`);
  }

  /** The master's URL for the database, without its password. */
  private url(): string {
    return withDatabase(withUser(this.options.serverUrl, this.options.master.username), this.options.database);
  }
}
