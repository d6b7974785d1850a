/**
 * The privilege lockdown of the application role, re-asserted on every deploy: drift is detected,
 * corrected and reported, then the result is read back. Runs as the master user on the target
 * database. Role names are validated identifiers (identifiers.ts) and always quoted.
 *
 * The master is RDS's: not a superuser. So the lockdown only issues what such a user may change
 * (CREATEDB, CREATEROLE, grants, memberships of roles it administers, ownership it holds), and reads
 * back what it may not (SUPERUSER, REPLICATION, BYPASSRLS): those are reported, never attempted.
 * A correction the server refuses (42501) is reported in the read-back, not thrown.
 *
 * It covers every application schema: `public` and each schema the owner role owns (those the
 * migrations created).
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
type Attribute = (typeof FORBIDDEN_ATTRIBUTES)[number];
const ATTRIBUTE_NAMES: Record<Attribute, string> = {
  rolsuper: 'SUPERUSER',
  rolcreatedb: 'CREATEDB',
  rolcreaterole: 'CREATEROLE',
  rolreplication: 'REPLICATION',
  rolbypassrls: 'BYPASSRLS',
};
/** Only a superuser may clear these (on RDS, nobody the master can act as). */
const SUPERUSER_ONLY: readonly Attribute[] = ['rolsuper', 'rolreplication', 'rolbypassrls'];
const APP_TABLE_PRIVILEGES = 'SELECT, INSERT, UPDATE, DELETE';
const RELATION_KINDS = `('r', 'p', 'v', 'm', 'S', 'f')`;

/** The app role and, when multi-user rotation created it, its clone. */
export async function loginRoles(client: ClientBase, app: string): Promise<string[]> {
  const { rows } = await client.query(`SELECT rolname FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`, [
    [app, `${app}_clone`],
  ]);
  return rows.map((r) => r.rolname);
}

/** `public` and every schema the owner role owns, by name. */
export async function applicationSchemas(client: ClientBase, owner: string): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT nspname FROM pg_namespace
      WHERE nspname = 'public' OR (nspowner = (SELECT oid FROM pg_roles WHERE rolname = $1) AND nspname NOT LIKE 'pg\\_%')
      ORDER BY nspname = 'public' DESC, nspname`,
    [owner],
  );
  return rows.map((r) => r.nspname);
}

export interface LockdownOptions {
  /**
   * `lock_timeout` of the corrections: giving a table back to the owner role needs an exclusive lock,
   * and a deploy must not queue the application's queries behind it for long. @default 5 000 ms
   */
  readonly lockTimeoutMs?: number;
}

export async function lockdown(
  client: ClientBase,
  roles: LockdownRoles,
  options: LockdownOptions = {},
): Promise<LockdownReport> {
  const logins = await loginRoles(client, roles.app);
  const before = await findDrift(client, roles, logins);
  const refused = await correct(client, roles, logins, before, options.lockTimeoutMs ?? 5_000);
  const after = await findDrift(client, roles, logins);
  const remaining = new Set(after.map((d) => d.text));
  const uncorrected = after.filter((d) => !d.superuserOnly).map((d) => d.text);
  const checks = await readBack(client, roles, logins);
  if (uncorrected.length > 0 || refused.length > 0) {
    checks.push({
      name: 'every drift found was corrected',
      ok: uncorrected.length === 0,
      detail: [...uncorrected, ...refused].join('; '),
    });
  }
  return {
    ok: checks.every((c) => c.ok),
    checks,
    corrected: before.filter((d) => !remaining.has(d.text)).map((d) => d.text),
  };
}

interface Drift {
  readonly text: string;
  /** A membership to revoke. */
  readonly membership?: { member: string; role: string };
  /** Objects the app owns: REASSIGN OWNED fixes them. */
  readonly owned?: boolean;
  /** An attribute only a superuser can clear: never attempted, reported by the attribute check. */
  readonly superuserOnly?: boolean;
}

/** What differs from the locked-down state, in words. */
async function findDrift(client: ClientBase, roles: LockdownRoles, logins: string[]): Promise<Drift[]> {
  const drift: Drift[] = [];
  const { rows: memberships } = await client.query(
    `SELECT m.rolname AS member, g.rolname AS role FROM pg_auth_members am
       JOIN pg_roles m ON m.oid = am.member JOIN pg_roles g ON g.oid = am.roleid
      WHERE m.rolname = ANY($1) AND g.rolname <> $2 ORDER BY 1, 2`,
    [logins, roles.group],
  );
  for (const m of memberships) drift.push({ text: `${m.member} was a member of ${m.role}`, membership: m });
  const attrs = await client.query(
    `SELECT rolname, ${FORBIDDEN_ATTRIBUTES.join(', ')} FROM pg_roles WHERE rolname = ANY($1)`,
    [logins],
  );
  for (const r of attrs.rows) {
    for (const a of FORBIDDEN_ATTRIBUTES) {
      if (r[a])
        drift.push({ text: `${r.rolname} had ${ATTRIBUTE_NAMES[a]}`, superuserOnly: SUPERUSER_ONLY.includes(a) });
    }
  }
  const schemas = await applicationSchemas(client, roles.owner);
  const owned = await client.query(
    `SELECT r.rolname, c.relname, c.relkind, n.nspname FROM pg_class c
       JOIN pg_roles r ON r.oid = c.relowner JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE r.rolname = ANY($1) AND n.nspname = ANY($2) AND c.relkind IN ${RELATION_KINDS}
     UNION ALL
     SELECT r.rolname, n.nspname, 'n', n.nspname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner
      WHERE r.rolname = ANY($1)
      ORDER BY 1, 4, 2`,
    [logins, schemas],
  );
  for (const r of owned.rows) {
    const what = r.relkind === 'n' ? 'schema' : r.relkind === 'S' ? 'sequence' : 'table';
    const name = r.relkind === 'n' || r.nspname === 'public' ? r.relname : `${r.nspname}.${r.relname}`;
    drift.push({ text: `${r.rolname} owned ${what} ${name}`, owned: true });
  }
  const direct = await client.query(
    `SELECT grantee, string_agg(DISTINCT qualified || ' ' || privilege_type, ', ' ORDER BY qualified || ' ' || privilege_type) AS grants
       FROM (SELECT grantee, privilege_type,
                    CASE WHEN table_schema = 'public' THEN table_name ELSE table_schema || '.' || table_name END AS qualified
               FROM information_schema.role_table_grants WHERE grantee = ANY($1) AND table_schema = ANY($2)) g
      GROUP BY grantee`,
    [logins, schemas],
  );
  for (const r of direct.rows) drift.push({ text: `${r.grantee} had direct grants: ${r.grants}` });
  // Database and schema privileges `correct` revokes: PUBLIC's, the logins' (any), the group's beyond
  // CONNECT and USAGE (a hand-made GRANT ALL), each listed so the report names every correction.
  const acl = await client.query(
    `SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END AS grantee, 'database' AS what, a.privilege_type
       FROM pg_database d CROSS JOIN aclexplode(d.datacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
      WHERE d.datname = current_database()
        AND (a.grantee = 0 OR r.rolname = ANY($2) OR (r.rolname = $3 AND a.privilege_type <> 'CONNECT'))
     UNION ALL
     SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END, 'schema ' || n.nspname, a.privilege_type
       FROM pg_namespace n CROSS JOIN aclexplode(n.nspacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee
      WHERE n.nspname = ANY($1)
        AND ((a.grantee = 0 AND a.privilege_type = 'CREATE') OR r.rolname = ANY($2)
             OR (r.rolname = $3 AND a.privilege_type = 'CREATE'))
      ORDER BY 1, 2, 3`,
    [schemas, logins, roles.group],
  );
  for (const r of acl.rows) drift.push({ text: `${r.grantee} had ${r.privilege_type} on ${r.what}` });
  const ledger = await client.query(
    `SELECT grantee, privilege_type FROM information_schema.role_table_grants
      WHERE table_schema = 'public' AND table_name = 'orion_schema_history' AND grantee = ANY($1)`,
    [[...logins, roles.group, 'PUBLIC']],
  );
  for (const r of ledger.rows) drift.push({ text: `${r.grantee} had ${r.privilege_type} on the ledger` });
  return drift;
}

/** A correction and the catalog query (a boolean) that says whether it is needed now. */
interface Correction {
  readonly sql: string;
  readonly needed?: { readonly query: string; readonly params: readonly unknown[] };
  /** Also needed whenever a GRANT on all tables is: that grant covers the ledger too. */
  readonly afterTableGrants?: boolean;
}

const ROLE = (n: number) => `(SELECT oid FROM pg_roles WHERE rolname = $${n})`;
/** An ACL with its implicit default spelled out (a NULL ACL means the defaults). */
const DB_ACL = `(SELECT aclexplode(coalesce(datacl, acldefault('d', datdba))) AS a FROM pg_database WHERE datname = current_database())`;
const nspAcl = (n: number) =>
  `(SELECT aclexplode(coalesce(nspacl, acldefault('n', nspowner))) AS a FROM pg_namespace WHERE nspname = $${n})`;
const TABLE_KINDS = `('r', 'p', 'v', 'm', 'f')`; // what GRANT … ON ALL TABLES IN SCHEMA covers

/**
 * Everything the locked-down state needs, each with the read that says whether it is needed. Without
 * `needed` a correction is always issued (the memberships found as drift).
 */
function corrections(roles: LockdownRoles, logins: string[], schemas: string[], drift: readonly Drift[]): Correction[] {
  const owner = q(roles.owner);
  const group = q(roles.group);
  const db = q(roles.database);
  const out: Correction[] = [];
  const add = (sql: string, query: string, ...params: unknown[]) =>
    out.push({ sql, needed: { query: `SELECT (${query}) AS needed`, params } });
  for (const login of logins) {
    const l = q(login);
    add(
      `ALTER ROLE ${l} NOCREATEDB NOCREATEROLE INHERIT LOGIN`,
      `SELECT rolcreatedb OR rolcreaterole OR NOT rolinherit OR NOT rolcanlogin FROM pg_roles WHERE rolname = $1`,
      login,
    );
    add(
      `REVOKE ALL ON DATABASE ${db} FROM ${l}`,
      `EXISTS (SELECT 1 FROM ${DB_ACL} x WHERE (x.a).grantee = ${ROLE(1)})`,
      login,
    );
    for (const schema of schemas) {
      const s = q(schema);
      add(
        `REVOKE ALL ON SCHEMA ${s} FROM ${l}`,
        `EXISTS (SELECT 1 FROM ${nspAcl(2)} x WHERE (x.a).grantee = ${ROLE(1)})`,
        login,
        schema,
      );
      for (const [what, kinds] of [
        ['TABLES', TABLE_KINDS],
        ['SEQUENCES', `('S')`],
      ]) {
        add(
          `REVOKE ALL ON ALL ${what} IN SCHEMA ${s} FROM ${l}`,
          // Column grants too: a table-level REVOKE also revokes them, but relacl does not show them.
          `EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                    WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) AND c.relkind IN ${kinds} AND a.grantee = ${ROLE(1)})
           OR EXISTS (SELECT 1 FROM pg_class c JOIN pg_attribute t ON t.attrelid = c.oid, aclexplode(t.attacl) a
                    WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) AND c.relkind IN ${kinds} AND a.grantee = ${ROLE(1)})`,
          login,
          schema,
        );
      }
    }
    add(
      `GRANT ${group} TO ${l}`,
      `NOT EXISTS (SELECT 1 FROM pg_auth_members WHERE member = ${ROLE(1)} AND roleid = ${ROLE(2)}) OR NOT pg_has_role($1, $2, 'USAGE')`,
      login,
      roles.group,
    );
  }
  for (const d of drift)
    if (d.membership) out.push({ sql: `REVOKE ${q(d.membership.role)} FROM ${q(d.membership.member)}` });
  add(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`, `EXISTS (SELECT 1 FROM ${DB_ACL} x WHERE (x.a).grantee = 0)`);
  add(
    `GRANT CONNECT ON DATABASE ${db} TO ${group}`,
    `NOT EXISTS (SELECT 1 FROM ${DB_ACL} x WHERE (x.a).grantee = ${ROLE(1)} AND (x.a).privilege_type = 'CONNECT')`,
    roles.group,
  );
  add(
    `REVOKE CREATE, TEMPORARY ON DATABASE ${db} FROM ${group}`,
    `EXISTS (SELECT 1 FROM ${DB_ACL} x WHERE (x.a).grantee = ${ROLE(1)} AND (x.a).privilege_type IN ('CREATE', 'TEMPORARY'))`,
    roles.group,
  );
  add(
    `GRANT USAGE, CREATE ON SCHEMA public TO ${owner}`,
    `(SELECT count(DISTINCT (x.a).privilege_type) FROM ${nspAcl(2)} x
       WHERE (x.a).grantee = ${ROLE(1)} AND (x.a).privilege_type IN ('USAGE', 'CREATE')) < 2`,
    roles.owner,
    'public',
  );
  const lacks = (kinds: string, privileges: string[]) =>
    `EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) AND c.relkind IN ${kinds}
              AND c.oid <> coalesce(to_regclass('${LEDGER_TABLE}'), 0)
              AND (SELECT count(DISTINCT a.privilege_type) FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                    WHERE a.grantee = ${ROLE(1)} AND a.privilege_type IN (${privileges.map((p) => `'${p}'`).join(', ')})) < ${privileges.length})`;
  for (const schema of schemas) {
    const s = q(schema);
    add(
      `REVOKE ALL ON SCHEMA ${s} FROM PUBLIC`,
      `EXISTS (SELECT 1 FROM ${nspAcl(1)} x WHERE (x.a).grantee = 0)`,
      schema,
    );
    add(
      `GRANT USAGE ON SCHEMA ${s} TO ${group}`,
      `NOT EXISTS (SELECT 1 FROM ${nspAcl(2)} x WHERE (x.a).grantee = ${ROLE(1)} AND (x.a).privilege_type = 'USAGE')`,
      roles.group,
      schema,
    );
    add(
      `REVOKE CREATE ON SCHEMA ${s} FROM ${group}`,
      `EXISTS (SELECT 1 FROM ${nspAcl(2)} x WHERE (x.a).grantee = ${ROLE(1)} AND (x.a).privilege_type = 'CREATE')`,
      roles.group,
      schema,
    );
    add(
      `GRANT ${APP_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA ${s} TO ${group}`,
      lacks(TABLE_KINDS, ['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
      roles.group,
      schema,
    );
    add(
      `REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA ${s} FROM ${group}`,
      `EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
                WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = $2) AND c.relkind IN ${TABLE_KINDS} AND a.grantee = ${ROLE(1)}
                  AND a.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER'))`,
      roles.group,
      schema,
    );
    add(
      `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${group}`,
      lacks(`('S')`, ['USAGE', 'SELECT']),
      roles.group,
      schema,
    );
  }
  // Not per schema: they also cover schemas and tables later migrations create.
  const defaults = (kind: string, privileges: string[]) =>
    `(SELECT count(DISTINCT a.privilege_type) FROM pg_default_acl d, aclexplode(d.defaclacl) a
       WHERE d.defaclrole = ${ROLE(1)} AND d.defaclnamespace = 0 AND d.defaclobjtype = '${kind}'
         AND a.grantee = ${ROLE(2)} AND a.privilege_type IN (${privileges.map((p) => `'${p}'`).join(', ')})) < ${privileges.length}`;
  add(
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT ${APP_TABLE_PRIVILEGES} ON TABLES TO ${group}`,
    defaults('r', ['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
    roles.owner,
    roles.group,
  );
  add(
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT USAGE, SELECT ON SEQUENCES TO ${group}`,
    defaults('S', ['USAGE', 'SELECT']),
    roles.owner,
    roles.group,
  );
  add(
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} GRANT USAGE ON SCHEMAS TO ${group}`,
    defaults('n', ['USAGE']),
    roles.owner,
    roles.group,
  );
  out.push({
    sql: `REVOKE ALL ON ${LEDGER_TABLE} FROM PUBLIC, ${[group, ...logins.map(q)].join(', ')}`,
    afterTableGrants: true,
    needed: {
      query: `SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
       WHERE c.oid = to_regclass('${LEDGER_TABLE}') AND (a.grantee = 0 OR a.grantee IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1))))
       OR EXISTS (SELECT 1 FROM pg_attribute t, aclexplode(t.attacl) a
       WHERE t.attrelid = to_regclass('${LEDGER_TABLE}') AND (a.grantee = 0 OR a.grantee IN (SELECT oid FROM pg_roles WHERE rolname = ANY($1)))) AS needed`,
      params: [[roles.group, ...logins]],
    },
  });
  return out;
}

/**
 * Brings the roles and grants to the locked-down state. Reads first and writes only what differs, so
 * a deploy with nothing drifted sends no GRANT, REVOKE or ALTER; what is needed runs in one
 * transaction. A statement the server refuses for lack of privilege is undone alone (a savepoint)
 * and returned in words with its SQLSTATE; the read-back then shows what it left wrong.
 */
async function correct(
  client: ClientBase,
  roles: LockdownRoles,
  logins: string[],
  drift: readonly Drift[],
  lockTimeoutMs: number,
): Promise<string[]> {
  const owner = q(roles.owner);
  const refused: string[] = [];
  const run = async (sql: string) => {
    await client.query('SAVEPOINT orion_lockdown');
    try {
      await client.query(sql);
      await client.query('RELEASE SAVEPOINT orion_lockdown');
    } catch (err: any) {
      if (err?.code !== '42501' && err?.code !== '0LP01') throw err;
      await client.query('ROLLBACK TO SAVEPOINT orion_lockdown');
      refused.push(`refused: ${sql} (SQLSTATE ${err.code}: ${err.message})`);
    }
  };
  const reassign = drift.some((d) => d.owned);
  // Ownership changes every ACL it touches: after a REASSIGN, everything is issued, not read first.
  const needed = async () => {
    const all = corrections(roles, logins, await applicationSchemas(client, roles.owner), drift);
    if (reassign) return all;
    const out: Correction[] = [];
    for (const c of all) {
      const grantsAll = c.afterTableGrants && out.some((o) => o.sql.includes(' ON ALL TABLES IN SCHEMA "public" TO '));
      if (!c.needed || grantsAll || (await client.query(c.needed.query, [...c.needed.params])).rows[0].needed)
        out.push(c);
    }
    return out;
  };
  const todo = reassign ? [] : await needed();
  if (!reassign && todo.length === 0) return refused;
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
    if (reassign) {
      // First, so the grants below are on objects the owner role holds. REASSIGN OWNED needs the
      // privileges of the old owner; hold them only for this statement.
      for (const login of logins.map(q)) {
        await run(`GRANT ${login} TO CURRENT_USER`);
        await run(`REASSIGN OWNED BY ${login} TO ${owner}`);
        await run(`REVOKE ${login} FROM CURRENT_USER`);
      }
    }
    for (const c of reassign ? await needed() : todo) await run(c.sql);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return refused;
}

/** Reads the catalog back: every check must hold after `correct`. */
type Check = { name: string; ok: boolean; detail?: string };

async function readBack(client: ClientBase, roles: LockdownRoles, logins: string[]): Promise<Check[]> {
  const checks: Check[] = [];
  const schemas = await applicationSchemas(client, roles.owner);
  const schemaList = schemas.join(', ');
  if (!logins.includes(roles.app)) checks.push({ name: `role ${roles.app} exists`, ok: false });
  for (const login of logins) {
    const { rows } = await client.query(
      `SELECT ${FORBIDDEN_ATTRIBUTES.map((a) => `r.${a}`).join(', ')},
              pg_has_role(r.oid, $2, 'USAGE') AS in_group,
              has_database_privilege(r.oid, current_database(), 'CREATE') AS db_create,
              (SELECT coalesce(string_agg(nspname, ', '), '') FROM pg_namespace
                WHERE nspname = ANY($3) AND has_schema_privilege(r.oid, oid, 'CREATE')) AS schema_create,
              (SELECT count(*)::int FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relowner = r.oid AND n.nspname = ANY($3))
                + (SELECT count(*)::int FROM pg_namespace WHERE nspowner = r.oid) AS owned,
              CASE WHEN to_regclass('${LEDGER_TABLE}') IS NULL THEN false
                   ELSE has_table_privilege(r.oid, '${LEDGER_TABLE}', 'SELECT') END AS ledger_select
         FROM pg_roles r WHERE r.rolname = $1`,
      [login, roles.group, schemas],
    );
    const r = rows[0];
    const granted = FORBIDDEN_ATTRIBUTES.filter((a) => r[a]);
    const fixable = granted.filter((a) => !SUPERUSER_ONLY.includes(a)).map((a) => ATTRIBUTE_NAMES[a]);
    const superuserOnly = granted.filter((a) => SUPERUSER_ONLY.includes(a)).map((a) => ATTRIBUTE_NAMES[a]);
    checks.push({
      name: `${login} has no SUPERUSER/CREATEDB/CREATEROLE/REPLICATION/BYPASSRLS`,
      ok: granted.length === 0,
      detail:
        [
          ...fixable,
          ...(superuserOnly.length
            ? [
                `${superuserOnly.join(', ')}: only a superuser can clear ${superuserOnly.length > 1 ? 'them' : 'it'} ` +
                  `(ALTER ROLE ${login} NO${superuserOnly.join(' NO')})`,
              ]
            : []),
        ].join(', ') || undefined,
    });
    checks.push({ name: `${login} is a member of ${roles.group}`, ok: r.in_group });
    checks.push({
      name: `${login} cannot create in database ${roles.database} or in schemas ${schemaList}`,
      ok: !r.db_create && !r.schema_create,
      detail:
        [r.db_create ? 'CREATE on the database' : '', r.schema_create ? `CREATE on ${r.schema_create}` : '']
          .filter(Boolean)
          .join(', ') || undefined,
    });
    checks.push({
      name: `${login} owns nothing in schemas ${schemaList}`,
      ok: r.owned === 0,
      detail: r.owned ? `${r.owned} object(s)` : undefined,
    });
    checks.push({ name: `${login} cannot read the ledger`, ok: !r.ledger_select });
  }
  const missing = await client.query(
    `SELECT CASE WHEN n.nspname = 'public' THEN c.relname ELSE n.nspname || '.' || c.relname END AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($2) AND c.relkind IN ('r', 'p') AND c.oid <> coalesce(to_regclass('${LEDGER_TABLE}'), 0)
        AND NOT (has_schema_privilege($1, n.oid, 'USAGE')
             AND has_table_privilege($1, c.oid, 'SELECT') AND has_table_privilege($1, c.oid, 'INSERT')
             AND has_table_privilege($1, c.oid, 'UPDATE') AND has_table_privilege($1, c.oid, 'DELETE'))
      ORDER BY 1`,
    [roles.group, schemas],
  );
  checks.push({
    name: `${roles.group} can read and write every application table (schemas ${schemaList})`,
    ok: missing.rows.length === 0,
    detail: missing.rows.map((r) => r.name).join(', ') || undefined,
  });
  const groupCreate = await client.query(
    `SELECT nspname FROM pg_namespace WHERE nspname = ANY($2) AND has_schema_privilege($1, oid, 'CREATE') ORDER BY 1`,
    [roles.group, schemas],
  );
  checks.push({
    name: `${roles.group} cannot create in schemas ${schemaList}`,
    ok: groupCreate.rows.length === 0,
    detail: groupCreate.rows.map((r) => r.nspname).join(', ') || undefined,
  });
  const defaults = await client.query(
    `SELECT string_agg(d.defaclobjtype::text, '' ORDER BY d.defaclobjtype) AS kinds FROM pg_default_acl d
       JOIN pg_roles r ON r.oid = d.defaclrole, aclexplode(d.defaclacl) a
      WHERE r.rolname = $1 AND d.defaclnamespace = 0 AND a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $2)`,
    [roles.owner, roles.group],
  );
  const kinds = defaults.rows[0].kinds ?? '';
  checks.push({
    name: `schemas, tables and sequences created later by ${roles.owner} are granted to ${roles.group}`,
    ok: ['r', 'S', 'n'].every((k) => kinds.includes(k)),
  });
  return checks;
}

/**
 * Connects as the application and tries what it must not do and what it must be able to do, in
 * every application schema (`applicationSchemas`). Writes are real statements that match no rows,
 * inside a transaction that is rolled back.
 */
export async function probeAppRole(
  app: ClientBase,
  database: string,
  schemas: readonly string[] = ['public'],
): Promise<LockdownReport['checks']> {
  const checks: { name: string; ok: boolean; detail?: string }[] = [];
  const refused = async (name: string, sqls: string[]) => {
    const allowed: string[] = [];
    const other: string[] = [];
    for (const sql of sqls) {
      try {
        await app.query('BEGIN');
        await app.query(sql);
        allowed.push(sql);
      } catch (err: any) {
        if (err.code !== '42501') other.push(`${err.code}: ${err.message}`);
      } finally {
        await app.query('ROLLBACK').catch(() => {});
      }
    }
    const detail = [...allowed.map((s) => `was allowed: ${s}`), ...other].join('; ');
    checks.push({ name, ok: !detail, detail: detail || undefined });
  };
  const probe = q(`orion_probe_${process.pid}`);
  // CREATE DATABASE cannot run in a transaction block; its privilege check comes first regardless.
  try {
    await app.query(`CREATE DATABASE ${probe}`);
    checks.push({ name: 'app connection is refused CREATE DATABASE', ok: false, detail: 'was allowed' });
    await app.query(`DROP DATABASE ${probe}`).catch(() => {});
  } catch (err: any) {
    checks.push({
      name: 'app connection is refused CREATE DATABASE',
      ok: err.code === '42501',
      detail: err.code === '42501' ? undefined : err.message,
    });
  }
  await refused('app connection is refused CREATE ROLE', [`CREATE ROLE ${probe}`]);
  await refused('app connection is refused CREATE SCHEMA', [`CREATE SCHEMA ${probe}`]);
  await refused(
    `app connection is refused CREATE TABLE in schemas ${schemas.join(', ')}`,
    schemas.map((s) => `CREATE TABLE ${q(s)}.${probe} (id int)`),
  );
  await refused('app connection is refused reading the ledger', [`SELECT 1 FROM ${LEDGER_TABLE} LIMIT 0`]);
  // One writable column per table: statements that match no rows still pass the privilege checks.
  const tables = await app.query(
    `SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS t,
            (SELECT quote_ident(attname) FROM pg_attribute
              WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum LIMIT 1) AS col
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND c.oid <> coalesce(to_regclass('${LEDGER_TABLE}'), 0)
      ORDER BY 1`,
    [schemas],
  );
  const failures: string[] = [];
  for (const { t, col } of tables.rows) {
    try {
      await app.query('BEGIN');
      await app.query(`SELECT 1 FROM ${t} LIMIT 1`);
      if (col) {
        await app.query(`INSERT INTO ${t} (${col}) OVERRIDING SYSTEM VALUE SELECT ${col} FROM ${t} WHERE false`);
        await app.query(`UPDATE ${t} SET ${col} = ${col} WHERE false`);
      }
      await app.query(`DELETE FROM ${t} WHERE false`);
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
