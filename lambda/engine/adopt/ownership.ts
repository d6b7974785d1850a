/**
 * Adopted objects belong to whoever created them: the master who ran the SOP's script, or the
 * application itself after the SOP's GRANT ALL. The next migration runs as the owner role and could
 * not alter them. Here every object of the application's schemas moves to the owner role — not the
 * objects an extension owns, not the ledgers — as RDS's master can do it: for an owner it is not a
 * member of, it takes that membership for the statement only (it has CREATEROLE), as the lockdown does.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../db';
import { LEDGER_TABLE } from '../ledger';
import { USER_SCHEMAS } from './hand-built';

const NOT_EXTENSION = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '${catalog}'::regclass AND d.objid = ${oid} AND d.deptype = 'e')`;

/** `ALTER … OWNER TO` targets: kind and name as the statement needs them, and the current owner. */
const OBJECTS = `
  SELECT 'SCHEMA' AS kind, quote_ident(s.nspname) AS name, pg_get_userbyid(n.nspowner) AS owner, 0 AS rank
    FROM (${USER_SCHEMAS}) s JOIN pg_namespace n ON n.oid = s.oid WHERE s.nspname <> 'public'
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
         quote_ident(s.nspname) || '.' || quote_ident(c.relname), pg_get_userbyid(c.relowner), 1
    FROM pg_class c JOIN (${USER_SCHEMAS}) s ON s.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND ${NOT_EXTENSION('pg_class', 'c.oid')}
     AND c.oid <> coalesce(to_regclass('${LEDGER_TABLE}'), 0) AND NOT (c.oid = ANY($2::regclass[]))
     -- a sequence owned by a column moves with its table
     AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
              AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         p.oid::regprocedure::text, pg_get_userbyid(p.proowner), 2
    FROM pg_proc p JOIN (${USER_SCHEMAS}) s ON s.oid = p.pronamespace WHERE ${NOT_EXTENSION('pg_proc', 'p.oid')}
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format_type(t.oid, NULL), pg_get_userbyid(t.typowner), 2
    FROM pg_type t JOIN (${USER_SCHEMAS}) s ON s.oid = t.typnamespace
   WHERE t.typtype IN ('e', 'd', 'r', 'c', 'm') AND ${NOT_EXTENSION('pg_type', 't.oid')}
     AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
     AND NOT EXISTS (SELECT 1 FROM pg_range r WHERE r.rngmultitypid = t.oid)`;

/**
 * Gives every application object not owned by `owner` to it; returns what moved, in words. Run in
 * the adoption's transaction: a refusal (42501) undoes the adoption with it.
 */
export async function takeOwnership(
  client: ClientBase,
  owner: string,
  foreignTables: readonly string[],
): Promise<string[]> {
  const { rows } = await client.query(`SELECT * FROM (${OBJECTS}) o WHERE owner <> $1 ORDER BY rank, kind, name`, [
    owner,
    foreignTables,
  ]);
  const borrowed: string[] = [];
  try {
    for (const from of new Set<string>(rows.map((r) => r.owner))) {
      const member = (await client.query(`SELECT pg_has_role(current_user, $1, 'USAGE') AS m`, [from])).rows[0].m;
      if (member) continue;
      await client.query(`GRANT ${q(from)} TO CURRENT_USER`);
      borrowed.push(from);
    }
    for (const r of rows) await client.query(`ALTER ${r.kind} ${r.name} OWNER TO ${q(owner)}`);
  } finally {
    for (const from of borrowed) await client.query(`REVOKE ${q(from)} FROM CURRENT_USER`).catch(() => {});
  }
  return rows.map((r) => `${r.kind.toLowerCase()} ${r.name} (was ${r.owner}'s)`);
}
