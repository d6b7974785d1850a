/**
 * Row counts and sampled row hashes of tables, to compare two databases (after a restore, when
 * promoting data between environments) or one database before and after a migration.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from './db';
import { BadInputError } from './errors';

export interface TableDigest {
  readonly rows: number;
  /** md5 over the sorted md5s of the sampled rows' text. */
  readonly sampleHash: string | null;
}

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

/**
 * Count and a hash of a sample of rows. Rows are sampled by the hash of their content, so the same
 * rows are chosen in both databases when the data is the same.
 */
export async function digestTable(client: ClientBase, table: string, sample: number): Promise<TableDigest> {
  const threshold = Math.round(sample * 65536);
  const { rows } = await client.query(
    `SELECT count(*)::bigint AS rows,
            md5(string_agg(h, '' ORDER BY h) FILTER (WHERE ('x' || substr(h, 1, 4))::bit(16)::int < $1)) AS sample_hash
       FROM (SELECT md5(t::text) AS h FROM public.${q(table)} t) s`,
    [threshold],
  );
  return { rows: Number(rows[0].rows), sampleHash: rows[0].sample_hash };
}

export interface TableDifference {
  readonly table: string;
  readonly from: TableDigest | null;
  readonly to: TableDigest | null;
  readonly problem: string;
}

export async function compareDatabases(
  from: ClientBase,
  to: ClientBase,
  options: { tables?: readonly string[]; sample?: number } = {},
): Promise<{
  tables: Record<string, { from: TableDigest | null; to: TableDigest | null }>;
  differences: TableDifference[];
}> {
  const sample = options.sample ?? 0.05;
  const fromTables = await applicationTables(from);
  const toTables = await applicationTables(to);
  const tables = options.tables ?? [...new Set([...fromTables, ...toTables])].sort();
  for (const t of options.tables ?? []) {
    if (!fromTables.includes(t) && !toTables.includes(t))
      throw new BadInputError(`--tables: table "${t}" exists in neither database`);
  }
  const result: Record<string, { from: TableDigest | null; to: TableDigest | null }> = {};
  const differences: TableDifference[] = [];
  for (const t of tables) {
    const a = fromTables.includes(t) ? await digestTable(from, t, sample) : null;
    const b = toTables.includes(t) ? await digestTable(to, t, sample) : null;
    result[t] = { from: a, to: b };
    let problem: string | undefined;
    if (!a || !b) problem = `table ${t} is missing from the ${a ? '--to' : '--from'} database`;
    else if (a.rows !== b.rows) problem = `table ${t}: ${a.rows} rows in --from, ${b.rows} in --to`;
    else if (a.sampleHash !== b.sampleHash)
      problem = `table ${t}: same row count (${a.rows}) but the sampled rows differ`;
    if (problem) differences.push({ table: t, from: a, to: b, problem });
  }
  return { tables: result, differences };
}
