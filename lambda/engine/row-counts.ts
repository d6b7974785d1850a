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

/** Tables at least this large (pg_table_size) are not counted but estimated: a count is a full scan. */
export const EXACT_COUNT_BELOW_BYTES = 64 * 1024 ** 2;

export interface BoundedCounts {
  readonly counts: Record<string, number>;
  /** Tables whose number is `pg_class.reltuples` (as of the last ANALYZE), not a count. */
  readonly estimated: string[];
}

/**
 * Row counts that cannot cost a deploy much: exact (`count(*)`, under a statement_timeout) for tables
 * below `exactBelowBytes`, `pg_class.reltuples` for larger ones, and for all when the counts time out.
 */
export async function boundedRowCounts(
  client: ClientBase,
  tables: readonly string[],
  options: { exactBelowBytes?: number; statementTimeoutMs?: number } = {},
): Promise<BoundedCounts> {
  if (tables.length === 0) return { counts: {}, estimated: [] };
  const { rows } = await client.query(
    `SELECT t, pg_table_size(format('public.%I', t)::regclass) AS bytes,
            greatest((SELECT reltuples FROM pg_class WHERE oid = format('public.%I', t)::regclass), 0)::bigint AS estimate
       FROM unnest($1::text[]) t`,
    [tables],
  );
  const limit = options.exactBelowBytes ?? EXACT_COUNT_BELOW_BYTES;
  const small = rows.filter((r) => Number(r.bytes) < limit).map((r) => r.t as string);
  const counts: Record<string, number> = {};
  const estimated: string[] = [];
  for (const r of rows) counts[r.t] = Number(r.estimate);
  if (small.length > 0) {
    await client.query('BEGIN');
    try {
      await client.query(
        `SET LOCAL statement_timeout = ${Math.max(1, Math.floor(options.statementTimeoutMs ?? 10_000))}`,
      );
      Object.assign(counts, await rowCounts(client, small));
      await client.query('COMMIT');
    } catch (err: any) {
      await client.query('ROLLBACK').catch(() => {});
      if (err?.code !== '57014') throw err; // canceled by the timeout: estimates for all
      small.length = 0;
    }
  }
  for (const t of tables) if (!small.includes(t)) estimated.push(t);
  return { counts, estimated };
}
