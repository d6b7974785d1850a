/**
 * Drift: is a live database what its migrations say? (No AWS, no CDK: the CLI, the deploy lifecycle
 * and adoption call this.)
 *
 *   readCatalog(client, { schemas?, roleNames?, databaseName? }) → Catalog
 *       The schema as comparable entries (catalog.ts): schemas, tables, columns, constraints, indexes,
 *       sequences, views, functions, triggers, enums, domains, extensions, RLS and policies, owners,
 *       grants and default privileges. Ledgers and extension members are left out.
 *   diffCatalogs(expected, actual, exceptions?) → Drift[]   ({ kind, object, expected, actual, fix? })
 *   replayReference({ connect, migrations, roles?, ... }) → { catalog, database, lockedDown }
 *       Replays `migrations` (all of them) into a scratch database on the server `connect` reaches,
 *       applies the lockdown when `roles` are given, reads the catalog, drops the scratch database.
 *   checkDrift({ client, connectReference, migrations, roles?, exceptions? }) → DriftResult
 *       All of it under the live database's migration lock: the ledger's applied versions (an edited
 *       or missing file is a BadInputError), their replay, the live catalog, the diff.
 *   loadExceptions(migrationsDir) → DriftException[]   (orion-drift.json; a bad file is a BadInputError)
 *
 * Adoption (`--baseline V`, a database with no ledger) compares against the migrations up to V:
 *
 *   const ref = await replayReference({ connect, migrations: migrations.filter((m) => m.version <= V), roles });
 *   const drift = diffCatalogs(ref.catalog, await readCatalog(client), await loadExceptions(dir));
 *
 * `roles` only when the live database was bootstrapped for the owner role (`isBootstrapped`): a
 * database the lifecycle never locked down is compared with a replay that was not locked down either.
 */
import type { Client, ClientBase } from 'pg';
import type { Migration } from '../files';
import type { LockdownRoles } from '../lockdown';
import { readPlan, withMigrationLock } from '../migrate';
import { readCatalog } from './catalog';
import { type Drift, diffCatalogs } from './diff';
import type { DriftException } from './exceptions';
import { replayReference } from './replay';

export type { Catalog, CatalogEntry, DriftKind } from './catalog';
export { IGNORED_TABLES, readCatalog } from './catalog';
export type { Drift } from './diff';
export { diffCatalogs } from './diff';
export type { DriftException } from './exceptions';
export { EXCEPTIONS_FILE, loadExceptions, parseExceptions } from './exceptions';
export type { Reference, ReplayOptions } from './replay';
export { replayReference } from './replay';

export interface CheckDriftOptions {
  /** The live database. Its migration lock is held for the whole check (exit 3 when it is not acquired). */
  readonly client: Client;
  /** Connections for the scratch database: the live server (another database on it), or `--dev-url`'s. */
  readonly connectReference: (database?: string) => Promise<Client>;
  /** The whole migrations folder; only the versions the ledger records as applied are replayed. */
  readonly migrations: readonly Migration[];
  /** The deploy's roles. Used when the live database was bootstrapped for `roles.owner`. */
  readonly roles?: Omit<LockdownRoles, 'database'>;
  readonly exceptions?: readonly DriftException[];
  readonly schemas?: readonly string[];
  /** @default 60 000 ms */
  readonly lockWaitMs?: number;
  readonly log?: (line: string) => void;
}

export interface DriftResult {
  readonly drift: Drift[];
  /** The live ledger's version. */
  readonly version: bigint | null;
  /** How many migrations the reference replayed. */
  readonly replayed: number;
  /** Whether the reference got the lockdown (the live database was bootstrapped for the owner role). */
  readonly lockedDown: boolean;
  /** Versions the ledger records as partly applied (non-transactional, interrupted): not replayed. */
  readonly incomplete: readonly bigint[];
  readonly ms: { readonly replay: number; readonly read: number };
}

/** The live database was bootstrapped for `owner` (as `orion-db up` and the Lambda do): it holds CREATE on `public`. */
export async function isBootstrapped(client: ClientBase, owner: string): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(n.nspacl) a
                     WHERE n.nspname = 'public' AND a.privilege_type = 'CREATE'
                       AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)) AS b`,
    [owner],
  );
  return rows[0].b;
}

/**
 * The lifecycle's roles, as a database it locked down shows them: `owner` (given), the group role its
 * default privileges grant tables to, and the LOGIN member of that group (not a rotation clone).
 * Undefined when the database was not bootstrapped for `owner`, or never locked down.
 */
export async function inferRoles(
  client: ClientBase,
  owner: string,
): Promise<Omit<LockdownRoles, 'database'> | undefined> {
  if (!(await isBootstrapped(client, owner))) return undefined;
  const { rows } = await client.query(
    `SELECT g.rolname AS "group",
            (SELECT m.rolname FROM pg_auth_members am JOIN pg_roles m ON m.oid = am.member
              WHERE am.roleid = g.oid AND m.rolcanlogin AND m.rolname NOT LIKE '%\\_clone' ORDER BY 1 LIMIT 1) AS app
       FROM pg_default_acl d, aclexplode(d.defaclacl) a, pg_roles g
      WHERE g.oid = a.grantee AND a.grantee <> d.defaclrole AND a.privilege_type = 'SELECT'
        AND d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND d.defaclnamespace = 0 AND d.defaclobjtype = 'r'
      ORDER BY 1 LIMIT 1`,
    [owner],
  );
  if (!rows[0]?.app) return undefined;
  return { owner, group: rows[0].group, app: rows[0].app };
}

export async function checkDrift(options: CheckDriftOptions): Promise<DriftResult> {
  const { client } = options;
  return withMigrationLock(client, { lockWaitMs: options.lockWaitMs }, async () => {
    const plan = await readPlan(client, options.migrations, { allowOutOfOrder: true });
    const applied = new Set(plan.applied.map((r) => r.version));
    const migrations = options.migrations.filter((m) => applied.has(m.version));
    const roles = options.roles && (await isBootstrapped(client, options.roles.owner)) ? options.roles : undefined;
    const { rows } = await client.query('SELECT current_user AS u, current_database() AS d');
    const started = Date.now();
    const reference = await replayReference({
      connect: options.connectReference,
      migrations,
      roles,
      connectingUserAs: rows[0].u,
      databaseName: rows[0].d,
      schemas: options.schemas,
      log: options.log,
    });
    const replayed = Date.now();
    const actual = await readCatalog(client, { schemas: options.schemas });
    return {
      drift: diffCatalogs(reference.catalog, actual, options.exceptions),
      version: plan.currentVersion,
      replayed: migrations.length,
      lockedDown: reference.lockedDown,
      incomplete: plan.pending.filter((p) => p.incompleteId !== undefined).map((p) => p.migration.version),
      ms: { replay: replayed - started, read: Date.now() - replayed },
    };
  });
}
