/**
 * Pre-checks and bootstrap, as the master user on the server's maintenance database. Idempotent:
 * every step looks before it creates, and tolerates a concurrent run creating the same thing.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../engine/db';
import { BadInputError } from '../engine/errors';
import type { Migration } from '../engine/files';
import type { LockdownRoles } from '../engine/lockdown';
import type { Credentials } from './ports';
import { scramVerifier } from './scram';

export const SUPPORTED_MAJOR_VERSIONS = [15, 16];

/** Checks that change nothing; a failure here means nothing was touched. Returns the server version. */
export async function precheck(admin: ClientBase, migrations: readonly Migration[]): Promise<string> {
  const { rows } = await admin.query(
    `SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
            r.rolsuper, r.rolcreaterole, r.rolcreatedb
       FROM pg_roles r WHERE r.rolname = current_user`,
  );
  const server = rows[0];
  const major = Math.floor(server.num / 10000);
  if (!SUPPORTED_MAJOR_VERSIONS.includes(major)) {
    throw new BadInputError(
      `PostgreSQL ${server.version} is not supported: orion-db supports major versions ${SUPPORTED_MAJOR_VERSIONS.join(' and ')}`,
    );
  }
  if (!server.rolsuper && !(server.rolcreaterole && server.rolcreatedb)) {
    throw new BadInputError(
      'the master user needs CREATEDB and CREATEROLE (or superuser) to bootstrap the database and roles',
    );
  }
  const wanted = migrations.flatMap((m) =>
    m.up.directives.requiresExtensions.map((name) => ({ name, file: m.up.file })),
  );
  if (wanted.length) {
    const available = await admin.query(`SELECT name FROM pg_available_extensions WHERE name = ANY($1)`, [
      wanted.map((w) => w.name),
    ]);
    const have = new Set(available.rows.map((r) => r.name));
    const missing = wanted.find((w) => !have.has(w.name));
    if (missing)
      throw new BadInputError(`requires extension "${missing.name}", which this server does not offer`, {
        file: missing.file,
      });
  }
  return server.version;
}

export interface BootstrapOptions {
  /**
   * Set the application's password from the secret. `orion-db up` against a server it did not start
   * leaves passwords alone unless told to; a new app role then has none (it cannot log in yet).
   * @default true
   */
  readonly setAppPassword?: boolean;
  /**
   * Whether the application already logs in with the secret's password: then it is left alone, and a
   * deploy with nothing drifted sends no ALTER ROLE. @default - always set
   */
  readonly appPasswordWorks?: () => Promise<boolean>;
}

/**
 * Creates the database and roles that are missing and (unless told not to) sets the application's
 * password from the secret. Returns what it did, in words.
 *
 * Works as RDS's master: not a superuser, CREATEDB and CREATEROLE. On PostgreSQL 16 a role created by
 * such a user comes with a membership for its creator that has ADMIN only (no SET, no INHERIT), and
 * `pg_has_role(…, 'MEMBER')` counts it, so the check is for SET and the grant asks for both.
 */
export async function bootstrap(
  admin: ClientBase,
  roles: LockdownRoles,
  app: Credentials,
  options: BootstrapOptions = {},
): Promise<string[]> {
  const done: string[] = [];
  if (app.username !== roles.app && app.username !== `${roles.app}_clone`) {
    throw new BadInputError(
      `the application secret is for user "${app.username}", expected "${roles.app}" or "${roles.app}_clone"`,
    );
  }
  const ignoreDuplicate = (err: any) => {
    if (err.code !== '42P04' && err.code !== '42710') throw err; // created by a concurrent run
  };
  const exists = async (sql: string, name: string) => (await admin.query(sql, [name])).rows.length > 0;
  if (!(await exists('SELECT 1 FROM pg_database WHERE datname = $1', roles.database))) {
    await admin.query(`CREATE DATABASE ${q(roles.database)}`).catch(ignoreDuplicate);
    done.push(`created database ${roles.database}`);
  }
  const wanted: [string, string][] = [
    [roles.owner, 'NOLOGIN'],
    [roles.group, 'NOLOGIN'],
    [roles.app, 'LOGIN'],
    [app.username, 'LOGIN'],
  ];
  for (const [role, login] of wanted) {
    if (await exists('SELECT 1 FROM pg_roles WHERE rolname = $1', role)) continue;
    await admin.query(`CREATE ROLE ${q(role)} ${login}`).catch(ignoreDuplicate);
    if (login === 'LOGIN') await admin.query(`COMMENT ON ROLE ${q(role)} IS ${admin.escapeLiteral(MANAGED_LOGIN)}`);
    done.push(`created role ${role}`);
  }
  // The master runs migrations as the owner (SET ROLE) and grants on its objects (INHERIT).
  const v16 = (await admin.query(`SELECT current_setting('server_version_num')::int >= 160000 AS v`)).rows[0].v;
  if (!(await exists(`SELECT 1 WHERE pg_has_role(current_user, $1, '${v16 ? 'SET' : 'MEMBER'}')`, roles.owner))) {
    await admin.query(`GRANT ${q(roles.owner)} TO CURRENT_USER${v16 ? ' WITH INHERIT TRUE, SET TRUE' : ''}`);
  }
  if ((options.setAppPassword ?? true) && !(await options.appPasswordWorks?.().catch(() => false))) {
    if (await appLoginIsManaged(admin, app.username)) {
      // A SCRAM verifier, so the password itself never reaches the server (or its statement log).
      await admin.query(
        `ALTER ROLE ${q(app.username)} WITH LOGIN PASSWORD ${admin.escapeLiteral(scramVerifier(app.password))}`,
      );
    } else {
      done.push(
        `left ${app.username}'s password as it is: the role existed before this stack (the running application's ` +
          'login); the application moves to the app secret when its multi-user rotation first runs',
      );
    }
  }
  return done;
}

/** Marks the login roles bootstrap creates: their password is the app secret's to set. */
const MANAGED_LOGIN = 'orion-db: created by the deploy; its password is the application secret';

/**
 * Whether the deploy may set this login's password: a role it created. A role that existed before (a
 * hand-built database being adopted: the running application logs in with it) keeps its password, so
 * adopting never locks the application out.
 */
export async function appLoginIsManaged(admin: ClientBase, username: string): Promise<boolean> {
  // The clone is the multi-user rotation's (it creates it from the secret): the secret's by design.
  if (username.endsWith('_clone')) return true;
  const { rows } = await admin.query(
    `SELECT shobj_description(oid, 'pg_authid') IS NOT DISTINCT FROM $2 AS managed FROM pg_roles WHERE rolname = $1`,
    [username, MANAGED_LOGIN],
  );
  return rows[0]?.managed ?? true;
}

/**
 * In the target database: the owner role may create what migrations make — tables in `public`, and
 * schemas and trusted extensions (CREATE on the database). The application never gets either.
 */
export async function bootstrapSchema(target: ClientBase, roles: LockdownRoles): Promise<void> {
  // Read first: a deploy with nothing drifted writes nothing.
  const { rows } = await target.query(
    `SELECT has_schema_privilege($1, 'public', 'USAGE') AND has_schema_privilege($1, 'public', 'CREATE') AS schema,
            has_database_privilege($1, current_database(), 'CREATE') AS database`,
    [roles.owner],
  );
  if (!rows[0].schema) await target.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${q(roles.owner)}`);
  if (!rows[0].database) await target.query(`GRANT CREATE ON DATABASE ${q(roles.database)} TO ${q(roles.owner)}`);
}
