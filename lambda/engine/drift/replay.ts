/**
 * The reference a database is compared with: its migrations replayed into a scratch database, then
 * locked down as a deploy locks the live one down, then read (catalog.ts). The scratch database is
 * dropped afterwards, even on failure; one a killed run left behind is dropped by the next run.
 *
 * Works as RDS's master (NOSUPERUSER CREATEDB CREATEROLE, in rds_superuser): it creates a database
 * and, for the lockdown, three scratch roles standing in for the owner, group and application roles.
 * Scratch roles, not the live ones: the lockdown alters roles, which are the server's, not the
 * database's, and a drift check must change nothing that the live database sees. The reference
 * names them as the live roles.
 */
import { randomBytes } from 'node:crypto';
import type { Client, ClientBase } from 'pg';
import { quoteIdent as q } from '../db';
import { BadInputError } from '../errors';
import type { Migration } from '../files';
import { type LockdownRoles, lockdown } from '../lockdown';
import { migrate } from '../migrate';
import { type Catalog, readCatalog } from './catalog';

export const SCRATCH_PREFIX = 'orion_drift_';
/** The comment every scratch database carries: only a database marked so is ever dropped as a leftover. */
const MARKER = 'orion-db drift scratch database';
const SCRATCH_NAME = /^orion_drift_([0-9a-z]+)_[0-9a-f]{6}(?:_[oga])?$/;

export interface ReplayOptions {
  /**
   * Opens a connection to the server that hosts the scratch database: to `database`, or (undefined)
   * to the database its URL names. The user needs CREATEDB (and CREATEROLE when `roles` is given).
   */
  readonly connect: (database?: string) => Promise<Client>;
  /** The migrations to replay, all of them (e.g. those the live ledger records as applied). */
  readonly migrations: readonly Migration[];
  /**
   * The live database's owner, group and application roles. When given, the replay runs as a scratch
   * owner role and gets the lockdown, and the reference names the scratch roles as these. Without
   * them, the migrations run as the connecting user and no lockdown is applied.
   */
  readonly roles?: Omit<LockdownRoles, 'database'>;
  /** More role names to report under another name (the reference server's user as the live one's). */
  readonly roleNames?: ReadonlyMap<string, string>;
  /** The name the connecting user is reported under (the live database's user, when the reference is on `--dev-url`). */
  readonly connectingUserAs?: string;
  /** The live database's name, used in fix SQL. */
  readonly databaseName?: string;
  readonly schemas?: readonly string[];
  /** A scratch database older than this with nobody connected is a leftover, dropped. @default 10 minutes */
  readonly staleAfterMs?: number;
  readonly log?: (line: string) => void;
}

export interface Reference {
  readonly catalog: Catalog;
  /** The scratch database's name (dropped by now). */
  readonly database: string;
  readonly lockedDown: boolean;
}

export async function replayReference(options: ReplayOptions): Promise<Reference> {
  const log = options.log ?? (() => {});
  const admin = await options.connect();
  try {
    for (const dropped of await dropLeftovers(admin, options.staleAfterMs ?? 10 * 60_000))
      log(`dropped ${dropped}, left behind by an earlier drift check that did not finish`);
    const name = `${SCRATCH_PREFIX}${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
    const scratchRoles = options.roles ? { owner: `${name}_o`, group: `${name}_g`, app: `${name}_a` } : undefined;
    // A user who may not create the scratch database or roles is told what it needs, not a bare 42501.
    const mayNot = (what: string) => (err: any) => {
      if (err?.code !== '42501') throw err;
      throw new BadInputError(
        `the reference needs a scratch ${what} on the server, which ${err.message.replace(/^permission denied to /, 'this user may not: ')}; ` +
          `connect as a user with CREATEDB${options.roles ? ' and CREATEROLE (RDS: the master)' : ''}, or build it elsewhere with --dev-url`,
      );
    };
    const roleNames = new Map(options.roleNames);
    if (options.connectingUserAs)
      roleNames.set((await admin.query('SELECT current_user AS u')).rows[0].u, options.connectingUserAs);
    try {
      if (scratchRoles && options.roles) {
        await admin.query(`CREATE ROLE ${q(scratchRoles.owner)} NOLOGIN`).catch(mayNot('role'));
        await admin.query(`CREATE ROLE ${q(scratchRoles.group)} NOLOGIN`);
        await admin.query(`CREATE ROLE ${q(scratchRoles.app)} LOGIN`);
        // As bootstrap does: on 16 a creator's automatic membership has ADMIN only, not SET or INHERIT.
        const v16 = (await admin.query(`SELECT current_setting('server_version_num')::int >= 160000 AS v`)).rows[0].v;
        await admin.query(`GRANT ${q(scratchRoles.owner)} TO CURRENT_USER${v16 ? ' WITH INHERIT TRUE, SET TRUE' : ''}`);
        for (const k of ['owner', 'group', 'app'] as const) roleNames.set(scratchRoles[k], options.roles[k]);
      }
      log(`replaying ${options.migrations.length} migration(s) into the scratch database ${name}`);
      await admin.query(`CREATE DATABASE ${q(name)}`).catch(mayNot('database'));
      await admin.query(
        `COMMENT ON DATABASE ${q(name)} IS ${admin.escapeLiteral(`${MARKER}, created ${new Date().toISOString()}`)}`,
      );
      const scratch = await options.connect(name);
      try {
        if (scratchRoles) {
          // bootstrapSchema's grants: the owner role creates tables, schemas and trusted extensions.
          await scratch.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${q(scratchRoles.owner)}`);
          await scratch.query(`GRANT CREATE ON DATABASE ${q(name)} TO ${q(scratchRoles.owner)}`);
        }
        const result = await migrate(scratch, options.migrations, { role: scratchRoles?.owner, allowOutOfOrder: true });
        if (result.error) {
          throw new BadInputError(
            `the reference could not be built: replaying the applied migrations into a scratch database failed: ${result.error.message}`,
          );
        }
        if (scratchRoles) {
          await lockdown(scratch, { database: name, ...scratchRoles });
        }
        const catalog = await readCatalog(scratch, {
          roleNames,
          ignoreGrantees: scratchRoles && options.roles ? new Set(Object.values(options.roles)) : undefined,
          databaseName: options.databaseName,
          schemas: options.schemas,
        });
        return { catalog, database: name, lockedDown: Boolean(scratchRoles) };
      } finally {
        await scratch.end().catch(() => {});
      }
    } finally {
      await dropScratch(admin, name, scratchRoles ? Object.values(scratchRoles) : []);
    }
  } finally {
    await admin.end().catch(() => {});
  }
}

async function dropScratch(admin: ClientBase, name: string, roles: readonly string[]): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${q(name)} WITH (FORCE)`);
  for (const role of roles) await admin.query(`DROP ROLE IF EXISTS ${q(role)}`);
}

/**
 * Scratch databases (marked by their comment) and roles that a killed run left: older than
 * `staleAfterMs` by the time in their name, and with nobody connected (a running check stays
 * connected to its scratch database from creation to drop).
 */
async function dropLeftovers(admin: ClientBase, staleAfterMs: number): Promise<string[]> {
  const { rows: databases } = await admin.query(
    `SELECT d.datname FROM pg_database d
      WHERE d.datname LIKE 'orion\\_drift\\_%' AND shobj_description(d.oid, 'pg_database') LIKE $1
        AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`,
    [`${MARKER}%`],
  );
  const { rows: roles } = await admin.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE 'orion\\_drift\\_%'`);
  const now = Date.now();
  const stale = (n: string) => {
    const m = SCRATCH_NAME.exec(n);
    return m !== null && now - Number.parseInt(m[1], 36) >= staleAfterMs;
  };
  const dropped: string[] = [];
  for (const { datname } of databases) {
    if (!stale(datname)) continue;
    await admin.query(`DROP DATABASE IF EXISTS ${q(datname)} WITH (FORCE)`).catch(() => {});
    dropped.push(datname);
  }
  const existing = new Set(
    (await admin.query(`SELECT datname FROM pg_database WHERE datname LIKE 'orion\\_drift\\_%'`)).rows.map(
      (r) => r.datname,
    ),
  );
  for (const { rolname } of roles) {
    // A role goes once its database is gone; a role the master may not drop stays (never an error).
    if (!stale(rolname) || existing.has(rolname.slice(0, -2))) continue;
    await admin.query(`DROP ROLE IF EXISTS ${q(rolname)}`).catch(() => {});
  }
  return dropped;
}
