/**
 * A database with objects but no ledger at all (built by hand, or by an application's start-up
 * `CREATE TABLE IF NOT EXISTS`): what is in it, so a refusal can list it.
 */
import type { ClientBase } from 'pg';

/** Schemas of the application: not the system's, not an extension's. */
export const USER_SCHEMAS = `
  SELECT n.oid, n.nspname FROM pg_namespace n
   WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
     AND n.nspname NOT LIKE 'pg\\_temp\\_%'
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')`;

/** Tables, views and sequences in the application's schemas that no extension owns, by qualified name. */
export async function existingObjects(client: ClientBase): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT CASE c.relkind WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'S' THEN 'sequence '
                           WHEN 'f' THEN 'foreign table ' ELSE 'table ' END
            || CASE WHEN s.nspname = 'public' THEN quote_ident(c.relname) ELSE quote_ident(s.nspname) || '.' || quote_ident(c.relname) END AS name
       FROM pg_class c JOIN (${USER_SCHEMAS}) s ON s.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
      ORDER BY c.relkind <> 'r', 1`,
  );
  return rows.map((r) => r.name);
}
