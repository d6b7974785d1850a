/**
 * Row counts of the application's tables, which the deploy report records before and after a
 * migration. Comparing two databases row by row is `orion-db verify` (copy/verify.ts).
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from './db';

/** Application tables of schema public (the ledger excluded). */
export async function applicationTables(client: ClientBase): Promise<string[]> {
  const { rows } = await client.query(
    `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p') AND relname <> 'orion_schema_history' ORDER BY relname`,
  );
  return rows.map((r) => r.relname);
}

/** Exact row counts per table, in one round trip. */
export async function rowCounts(client: ClientBase, tables?: readonly string[]): Promise<Record<string, number>> {
  const names = tables ?? (await applicationTables(client));
  if (names.length === 0) return {};
  const sql = names.map((t, i) => `SELECT ${i} AS i, count(*)::bigint AS n FROM public.${q(t)}`).join(' UNION ALL ');
  const { rows } = await client.query(sql);
  const counts: Record<string, number> = {};
  for (const r of rows) counts[names[r.i]] = Number(r.n);
  return counts;
}
