/**
 * The privilege lockdown of the application role, re-asserted on every deploy: drift is detected,
 * corrected and reported, then the result is read back. Runs as the master user on the target
 * database. Role names are validated identifiers (identifiers.ts) and always quoted.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from './db';
import { LEDGER_TABLE } from './ledger';
import type { LockdownReport } from './report';

export interface LockdownRoles {
  readonly database: string;
  /** NOLOGIN role that owns the schema objects (migrations run as it). */
  readonly owner: string;
  /** NOLOGIN role holding the application's privileges. */
  readonly group: string;
  /** The application's LOGIN role. */
  readonly app: string;
}

const FORBIDDEN_ATTRIBUTES = ['rolsuper', 'rolcreatedb', 'rolcreaterole', 'rolreplication', 'rolbypassrls'] as const;
const ATTRIBUTE_NAMES: Record<(typeof FORBIDDEN_ATTRIBUTES)[number], string> = {
  rolsuper: 'SUPERUSER',
  rolcreatedb: 'CREATEDB',
  rolcreaterole: 'CREATEROLE',
  rolreplication: 'REPLICATION',
  rolbypassrls: 'BYPASSRLS',
};
const APP_TABLE_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE';

/** The app role and, when multi-user rotation created it, its clone. */
export async function loginRoles(client: ClientBase, app: string): Promise<string[]> {
  const { rows } = await client.query(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`, [
    [app, `${app}_clone`],
  ]);
  return rows.map((r) => r.rolname);
}

export async function lockdown(client: ClientBase, roles: LockdownRoles): Promise<LockdownReport> {
  const logins = await loginRoles(client, roles.app);
  const memberships = await otherMemberships(client, roles, logins);
  const corrected = [
    ...memberships.map((m) => `${m.member} was a member of ${m.role}`),
    ...(await findDrift(client, roles, logins)),
  ];
  await correct(
    client,
    roles,
    logins,
    memberships,
    corrected.some((d) => d.includes(' owned ')),
  );
  const checks = await readBack(client, roles, logins);
  return { ok: checks.every((c) => c.ok), checks, corrected };
}

/** What differs from the locked-down state, in words, before anything is changed. */
async function findDrift(client: ClientBase, roles: LockdownRoles, logins: string[]): Promise<string[]> {
  const drift: string[] = [];
  const attrs = await client.query(
    `SELECT rolname, ${FORBIDDEN_ATTRIBUTES.join(', ')} FROM pg_roles WHERE rolname = ANY($1)`,
    [logins],
  );
  for (const r of attrs.rows) {
    for (const a of FORBIDDEN_ATTRIBUTES) if (r[a]) drift.push(`${r.rolname} had ${ATTRIBUTE_NAMES[a]}`);
  }
  const owned = await client.query(
    `SELECT r.rolname, c.relname, c.relkind FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
      WHERE r.rolname = ANY($1) AND c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`,
    [logins],
  );
  for (const r of owned.rows) drift.push(`${r.rolname} owned ${r.relkind === 'S' ? 'sequence' : 'table'} ${r.relname}`);
  const direct = await client.query(
    `SELECT grantee, string_agg(DISTINCT table_name || ' ' || privilege_type, ', ' ORDER BY table_name || ' ' || privilege_type) AS grants
       FROM information_schema.role_table_grants WHERE grantee = ANY($1) AND table_schema = 'public' GROUP BY grantee`,
    [logins],
  );
  for (const r of direct.rows) drift.push(`${r.grantee} had direct grants: ${r.grants}`);
  const publicAcl = await client.query(
    `SELECT 'database' AS what, a.privilege_type FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee = 0
     UNION ALL
     SELECT 'schema public', a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'`,
  );
  for (const r of publicAcl.rows) drift.push(`PUBLIC had ${r.privilege_type} on ${r.what}`);
  const ledger = await client.query(
    `SELECT grantee, privilege_type FROM information_schema.role_table_grants
      WHERE table_schema = 'public' AND table_name = 'orion_schema_history' AND grantee = ANY($1)`,
    [[...logins, roles.group, 'PUBLIC']],
  );
  for (const r of ledger.rows) drift.push(`${r.grantee} had ${r.privilege_type} on the ledger`);
  return drift;
}

/** Roles the app (or its clone) belongs to besides the group role: each is drift. */
async function otherMemberships(
  client: ClientBase,
  roles: LockdownRoles,
  logins: string[],
): Promise<{ member: string; role: string }[]> {
  const { rows } = await client.query(
    `SELECT m.rolname AS member, g.rolname AS role FROM pg_auth_members am
       JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.roleid
      WHERE m.rolname = ANY($1) AND g.rolname <> $2`,
    [logins, roles.group],
  );
  return rows;
}

async function correct(
  client: ClientBase,
  roles: LockdownRoles,
  logins: string[],
  memberships: readonly { member: string; role: string }[],
  reassign: boolean,
): Promise<void> {
  const owner = q(roles.owner);
  const group = q(roles.group);
  const db = q(roles.database);
  const statements: string[] = [];
  for (const login of logins.map(q)) {
    statements.push(
      `ALTER ROLE ${login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT LOGIN`,
      `REVOKE ALL ON DATABASE ${db} FROM ${login}`,
      `REVOKE ALL ON SCHEMA public FROM ${login}`,
      `REVOKE ALL ON ALL TABLES IN SCHEMA public FROM ${login}`,
      `REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM ${login}`,
      `GRANT ${group} TO ${login}`,
    );
  }
  for (const m of memberships) statements.push(`REVOKE ${q(m.role)} FROM ${q(m.member)}`);
  statements.push(
    `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
    `GRANT CONNECT ON DATABASE ${db} TO ${group}`,
    `REVOKE ALL ON SCHEMA public FROM PUBLIC`,
    `GRANT USAGE, CREATE ON SCHEMA public TO ${owner}`,
    `GRANT USAGE ON SCHEMA public TO ${group}`,
    `REVOKE CREATE ON SCHEMA public FROM ${group}`,
    `GRANT ${APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO ${group}`,
    `REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM ${group}`,
    `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${group}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT ${APP_TABLE_PRIVILEGES} ON TABLES TO ${group}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${group}`,
  );
  const ledgerExists = (await client.query(`SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS e`)).rows[0].e;
  if (ledgerExists)
    statements.push(`REVOKE ALL ON ${LEDGER_TABLE} FROM PUBLIC, ${group}, ${logins.map(q).join(', ') || group}`);
  await client.query('BEGIN');
  try {
    for (const s of statements) await client.query(s);
    if (reassign) {
      // REASSIGN OWNED needs the privileges of the old owner; hold them only for this statement.
      for (const login of logins.map(q)) {
        await client.query(`GRANT ${login} TO CURRENT_USER`);
        await client.query(`REASSIGN OWNED BY ${login} TO ${owner}`);
        await client.query(`REVOKE ${login} FROM CURRENT_USER`);
      }
      // The reassigned objects get the group's privileges like every other table.
      await client.query(`GRANT ${APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO ${group}`);
      await client.query(`GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${group}`);
      if (ledgerExists) await client.query(`REVOKE ALL ON ${LEDGER_TABLE} FROM PUBLIC, ${group}`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Reads the catalog back: every check must hold after `correct`. */
async function readBack(client: ClientBase, roles: LockdownRoles, logins: string[]): Promise<LockdownReport['checks']> {
  const checks: { name: string; ok: boolean; detail?: string }[] = [];
  if (!logins.includes(roles.app)) checks.push({ name: `role ${roles.app} exists`, ok: false });
  for (const login of logins) {
    const { rows } = await client.query(
      `SELECT ${FORBIDDEN_ATTRIBUTES.map((a) => `r.${a}`).join(', ')},
              pg_has_role(r.oid, $2, 'USAGE') AS in_group,
              has_database_privilege(r.oid, current_database(), 'CREATE') AS db_create,
              has_schema_privilege(r.oid, 'public', 'CREATE') AS schema_create,
              (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid AND c.relnamespace = 'public'::regnamespace) AS owned,
              CASE WHEN to_regclass('${LEDGER_TABLE}') IS NULL THEN false
                   ELSE has_table_privilege(r.oid, '${LEDGER_TABLE}', 'SELECT') END AS ledger_select
         FROM pg_roles r WHERE r.rolname = $1`,
      [login, roles.group],
    );
    const r = rows[0];
    const granted = FORBIDDEN_ATTRIBUTES.filter((a) => r[a]).map((a) => ATTRIBUTE_NAMES[a]);
    checks.push({
      name: `${login} has no SUPERUSER/CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS`,
      ok: granted.length === 0,
      detail: granted.join(', ') || undefined,
    });
    checks.push({ name: `${login} is a member of ${roles.group}`, ok: r.in_group });
    checks.push({
      name: `${login} cannot create in database ${roles.database} or schema public`,
      ok: !r.db_create && !r.schema_create,
    });
    checks.push({
      name: `${login} owns nothing in schema public`,
      ok: r.owned === 0,
      detail: r.owned ? `${r.owned} object(s)` : undefined,
    });
    checks.push({ name: `${login} cannot read the ledger`, ok: !r.ledger_select });
  }
  const missing = await client.query(
    `SELECT c.relname FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'orion_schema_history'
        AND NOT (has_table_privilege($1, c.oid, 'SELECT') AND has_table_privilege($1, c.oid, 'INSERT')
             AND has_table_privilege($1, c.oid, 'UPDATE') AND has_table_privilege($1, c.oid, 'DELETE'))`,
    [roles.group],
  );
  checks.push({
    name: `${roles.group} can read and write every application table`,
    ok: missing.rows.length === 0,
    detail: missing.rows.map((r) => r.relname).join(', ') || undefined,
  });
  const defaults = await client.query(
    `SELECT count(*)::int AS n FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole
      WHERE r.rolname = $1 AND d.defaclnamespace = 'public'::regnamespace`,
    [roles.owner],
  );
  checks.push({
    name: `tables created later by ${roles.owner} are granted to ${roles.group}`,
    ok: defaults.rows[0].n >= 2,
  });
  return checks;
}

/**
 * Connects as the application and tries what it must not do and what it must be able to do.
 * Writes are real statements that match no rows, inside a transaction that is rolled back.
 */
export async function probeAppRole(app: ClientBase, database: string): Promise<LockdownReport['checks']> {
  const checks: { name: string; ok: boolean; detail?: string }[] = [];
  const refused = async (name: string, sql: string) => {
    try {
      await app.query('BEGIN');
      await app.query(sql);
      checks.push({ name, ok: false, detail: 'was allowed' });
    } catch (err: any) {
      checks.push({
        name,
        ok: err.code === '42501',
        detail: err.code === '42501' ? undefined : `${err.code}: ${err.message}`,
      });
    } finally {
      await app.query('ROLLBACK').catch(() => {});
    }
  };
  // CREATE DATABASE cannot run in a transaction block; its privilege check comes first regardless.
  try {
    await app.query(`CREATE DATABASE ${q(`orion_probe_${process.pid}`)}`);
    checks.push({ name: 'app connection is refused CREATE DATABASE', ok: false, detail: 'was allowed' });
    await app.query(`DROP DATABASE ${q(`orion_probe_${process.pid}`)}`).catch(() => {});
  } catch (err: any) {
    checks.push({
      name: 'app connection is refused CREATE DATABASE',
      ok: err.code === '42501',
      detail: err.code === '42501' ? undefined : err.message,
    });
  }
  await refused('app connection is refused CREATE ROLE', `CREATE ROLE ${q(`orion_probe_${process.pid}`)}`);
  await refused(
    'app connection is refused CREATE TABLE',
    `CREATE TABLE public.${q(`orion_probe_${process.pid}`)} (id int)`,
  );
  await refused('app connection is refused reading the ledger', `SELECT 1 FROM ${LEDGER_TABLE} LIMIT 0`);
  // One writable column per table: statements that match no rows still pass the privilege checks.
  const tables = await app.query(
    `SELECT quote_ident(c.relname) AS t,
            (SELECT quote_ident(attname) FROM pg_attribute
              WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum LIMIT 1) AS col
       FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname <> 'orion_schema_history'
      ORDER BY c.relname`,
  );
  const failures: string[] = [];
  for (const { t, col } of tables.rows) {
    try {
      await app.query('BEGIN');
      await app.query(`SELECT 1 FROM public.${t} LIMIT 1`);
      if (col) {
        await app.query(
          `INSERT INTO public.${t} (${col}) OVERRIDING SYSTEM VALUE SELECT ${col} FROM public.${t} WHERE false`,
        );
        await app.query(`UPDATE public.${t} SET ${col} = ${col} WHERE false`);
      }
      await app.query(`DELETE FROM public.${t} WHERE false`);
    } catch (err: any) {
      failures.push(`${t}: ${err.message}`);
    } finally {
      await app.query('ROLLBACK').catch(() => {});
    }
  }
  checks.push({
    name: `app connection reads and writes the ${tables.rows.length} application table(s) of ${database}`,
    ok: failures.length === 0,
    detail: failures.join('; ') || undefined,
  });
  return checks;
}
