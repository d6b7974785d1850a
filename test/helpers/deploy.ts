/**
 * Builders for the deploy lifecycle on the test server: unique names per test (roles are
 * cluster-wide), in-memory secrets, the template-database snapshot port. The lifecycle connects as
 * the master the fixture is given: RDS-like (test/helpers/rds.ts) or the superuser.
 */
import type { Client } from 'pg';
import { withDatabase } from '../../lambda/engine/db';
import type { LockdownRoles } from '../../lambda/engine/lockdown';
import { type DeployConfig, runDeploy } from '../../lambda/lifecycle/deploy';
import type { Credentials, SecretsPort } from '../../lambda/lifecycle/ports';
import { generatePassword } from '../../lambda/local/secrets';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import { adminUrl, client, query, uniqueName } from './db';
import { type Master, prepareRdsMaster, rdsMaster, superuserMaster } from './rds';

export class MemorySecrets implements SecretsPort {
  /** Set to replace the fixture's master (e.g. a wrong password). */
  masterCredentials?: Credentials;
  constructor(
    private readonly defaultMaster: () => Promise<Credentials>,
    public appCredentials: Credentials,
  ) {}
  async master() {
    return this.masterCredentials ?? (await this.defaultMaster());
  }
  async app() {
    return this.appCredentials;
  }
}

export interface DeployFixture {
  readonly roles: LockdownRoles;
  readonly secrets: MemorySecrets;
  readonly serverUrl: string;
  readonly prefix: string;
  /** The master the lifecycle connects as. */
  master(): Promise<Master>;
  /** Runs SQL as that master, on the target database unless `database` says otherwise. */
  asMaster<T = any>(sql: string, params?: unknown[], database?: string): Promise<T[]>;
  /** Superuser URL of the target database. */
  readonly targetUrl: string;
  deploy(migrationsDir: string, overrides?: Partial<DeployConfig>): ReturnType<typeof runDeploy>;
  appClient(password?: string): Promise<Client>;
  snapshotDatabases(): Promise<string[]>;
  cleanup(): Promise<void>;
}

let deploys = 0;

export interface DeployFixtureOptions {
  /** Who the lifecycle connects as ('rds': NOSUPERUSER CREATEDB CREATEROLE, in rds_superuser). @default 'rds' */
  readonly master?: 'rds' | 'superuser';
  /** A superuser URL of another server (a private one the test may restart). @default the test server */
  readonly adminUrl?: string;
}

export function deployFixture(options: DeployFixtureOptions = {}): DeployFixture {
  const base = uniqueName('o');
  const roles: LockdownRoles = {
    database: `${base}_db`,
    owner: `${base}_owner`,
    group: `${base}_rw`,
    app: `${base}_app`,
  };
  const admin = options.adminUrl ?? adminUrl();
  const adminQuery = (sql: string, params: unknown[] = []) => query(admin, sql, params);
  let privateMaster: Promise<Master> | undefined;
  const rds = () => {
    if (!options.adminUrl) return rdsMaster();
    privateMaster ??= prepareRdsMaster(admin);
    return privateMaster;
  };
  const master = async () => ((options.master ?? 'rds') === 'rds' ? rds() : superuserMaster(admin));
  const secrets = new MemorySecrets(master, { username: roles.app, password: generatePassword() });
  const server = new URL(admin);
  server.username = server.password = '';
  const prefix = base.replace(/_/g, '-');
  const fixture: DeployFixture = {
    roles,
    secrets,
    serverUrl: server.toString(),
    prefix,
    master,
    async asMaster(sql, params = [], database = roles.database) {
      return query(withDatabase((await master()).url(), database), sql, params);
    },
    targetUrl: withDatabase(admin, roles.database),
    async deploy(migrationsDir, overrides = {}) {
      // The snapshot port stands in for RDS's API (not SQL): it keeps the superuser.
      const c = await client(admin);
      c.on('error', () => {}); // a test may restart the server under it
      try {
        return await runDeploy(
          { secrets, snapshots: new TemplateDatabaseSnapshots(c, roles.database) },
          {
            serverUrl: fixture.serverUrl,
            roles,
            migrationsDir,
            deployId: `test-${++deploys}-${Date.now()}`,
            snapshotPrefix: prefix,
            ...overrides,
          },
        );
      } finally {
        await c.end();
      }
    },
    async appClient(password = secrets.appCredentials.password) {
      const url = new URL(withDatabase(admin, roles.database));
      url.username = secrets.appCredentials.username;
      url.password = password;
      return client(url.toString());
    },
    async snapshotDatabases() {
      const rows = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname`, [
        `${prefix.replace(/-/g, '_')}_pre_%`,
      ]);
      return rows.map((r) => r.datname);
    },
    async cleanup() {
      const dbs = await adminQuery(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${base}%`]);
      for (const { datname } of dbs) await adminQuery(`DROP DATABASE "${datname}" WITH (FORCE)`);
      for (const role of [`${roles.app}_clone`, roles.app, roles.group, roles.owner]) {
        await adminQuery(`DROP ROLE IF EXISTS "${role}"`).catch(() => {});
      }
    },
  };
  return fixture;
}
