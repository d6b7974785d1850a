/**
 * A database's inventory (seed 004's baseline): per table its row count — exact below a size
 * threshold, the planner's `reltuples` estimate above it, and which one it is — and its
 * `pg_total_relation_size`; the schema version from the ledger; and, against the tables the
 * migrations make, the unexpected and missing ones. Saved as JSON and compared later, it says whether
 * a table vanished or lost rows across a migration.
 */
import type { ClientBase } from 'pg';
import { IGNORED_TABLES } from './drift/catalog';
import { BadInputError } from './errors';
import { readLedger } from './ledger';
import { maxVersion } from './plan';

/** Tables at least this big (bytes, all forks and indexes) get the estimate. @default 64 MB */
export const EXACT_BELOW_BYTES = 64 * 1024 * 1024;

export interface TableInventory {
  readonly rows: number;
  /** `exact`: count(*); `estimate`: pg_class.reltuples (a big table, or one the user may not read). */
  readonly count: 'exact' | 'estimate';
  readonly bytes: number;
}

export interface Inventory {
  readonly database: string;
  readonly taken_at: string;
  readonly version: string | null;
  readonly exact_below_bytes: number;
  /** By `schema.table`. */
  readonly tables: Record<string, TableInventory>;
  /** Present but not made by the migrations; null when there was no reference to compare with. */
  readonly unexpected: string[] | null;
  /** Made by the migrations but absent. */
  readonly missing: string[] | null;
}

export interface InventoryOptions {
  readonly exactBelowBytes?: number;
  /** The tables the migrations make (`schema.table`, as quote_ident renders them). */
  readonly expectedTables?: readonly string[];
}

export async function takeInventory(client: ClientBase, options: InventoryOptions = {}): Promise<Inventory> {
  const exactBelow = options.exactBelowBytes ?? EXACT_BELOW_BYTES;
  // A partitioned table counts and weighs its partitions; the partitions are not listed again.
  const { rows } = await client.query(
    `SELECT format('%I.%I', n.nspname, c.relname) AS name, c.oid::regclass::text AS rel,
            CASE WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(t.relid)) FROM pg_partition_tree(c.oid) t)
                 ELSE pg_total_relation_size(c.oid) END::bigint AS bytes,
            CASE WHEN c.relkind = 'p' THEN (SELECT sum(greatest(p.reltuples, 0)) FROM pg_partition_tree(c.oid) t
                                              JOIN pg_class p ON p.oid = t.relid)
                 ELSE c.reltuples END AS estimate,
            has_table_privilege(c.oid, 'SELECT') AS readable
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
        AND c.relname <> ALL($1)
        AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
      ORDER BY 1`,
    [IGNORED_TABLES],
  );
  // Exact where it is cheap, or where there is no estimate yet (never vacuumed or analyzed: -1).
  const exact = rows.filter((r) => r.readable && (Number(r.bytes) < exactBelow || Number(r.estimate) < 0));
  const counts = new Map<string, number>();
  if (exact.length) {
    const sql = exact.map((r, i) => `SELECT ${i} AS i, count(*)::bigint AS n FROM ${r.rel}`).join(' UNION ALL ');
    for (const r of (await client.query(sql)).rows) counts.set(exact[r.i].name, Number(r.n));
  }
  const tables: Record<string, TableInventory> = {};
  for (const r of rows) {
    const n = counts.get(r.name);
    tables[r.name] =
      n !== undefined
        ? { rows: n, count: 'exact', bytes: Number(r.bytes) }
        : { rows: Math.max(0, Math.round(Number(r.estimate))), count: 'estimate', bytes: Number(r.bytes) };
  }
  const applied = (await readLedger(client)).filter((r) => r.status === 'applied');
  const version = maxVersion(null, applied);
  const present = Object.keys(tables);
  const expected = options.expectedTables;
  return {
    database: (await client.query('SELECT current_database() AS d')).rows[0].d,
    taken_at: new Date().toISOString(),
    version: version === null ? null : version.toString(),
    exact_below_bytes: exactBelow,
    tables,
    unexpected: expected ? present.filter((t) => !expected.includes(t)) : null,
    missing: expected ? expected.filter((t) => !present.includes(t)).sort() : null,
  };
}

export interface InventoryComparison {
  /** Tables in the saved inventory that are gone. */
  readonly vanished: string[];
  /** Tables whose count dropped by more than the tolerance. */
  readonly dropped: { table: string; before: number; after: number; drop_pct: number }[];
  readonly appeared: string[];
  /** Every other table whose count changed. */
  readonly changed: { table: string; before: number; after: number }[];
  readonly version: { before: string | null; after: string | null };
  readonly ok: boolean;
}

/** `after` against a saved `before`: a vanished table, or a count that fell by more than `tolerancePct`, fails. */
export function compareInventories(before: Inventory, after: Inventory, tolerancePct: number): InventoryComparison {
  const vanished = Object.keys(before.tables).filter((t) => !(t in after.tables));
  const appeared = Object.keys(after.tables).filter((t) => !(t in before.tables));
  const dropped: InventoryComparison['dropped'] = [];
  const changed: InventoryComparison['changed'] = [];
  for (const [table, was] of Object.entries(before.tables)) {
    const now = after.tables[table];
    if (!now || now.rows === was.rows) continue;
    const dropPct = was.rows > 0 ? ((was.rows - now.rows) / was.rows) * 100 : 0;
    if (dropPct > tolerancePct)
      dropped.push({ table, before: was.rows, after: now.rows, drop_pct: Math.round(dropPct * 100) / 100 });
    else changed.push({ table, before: was.rows, after: now.rows });
  }
  return {
    vanished,
    dropped,
    appeared,
    changed,
    version: { before: before.version, after: after.version },
    ok: vanished.length === 0 && dropped.length === 0,
  };
}

/** A saved inventory, checked enough to compare with: a wrong file is an error naming it. */
export function parseInventory(text: string, file: string): Inventory {
  let doc: any;
  try {
    doc = JSON.parse(text);
  } catch (err: any) {
    throw new BadInputError(`${file} is not valid JSON: ${err.message}`, { file });
  }
  const tables = doc?.tables;
  if (typeof tables !== 'object' || tables === null || Array.isArray(tables))
    throw new BadInputError(`${file} is not an inventory (no "tables" object); write one with --output`, { file });
  for (const [name, t] of Object.entries<any>(tables)) {
    if (typeof t?.rows !== 'number' || t.rows < 0)
      throw new BadInputError(`${file}: table ${name} has no row count ("rows")`, { file });
  }
  return doc as Inventory;
}
