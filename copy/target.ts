/**
 * What the copy needs to know of the target database (schema public, as the migrations made it):
 * tables, their columns and types, primary keys, unique constraints and indexes, foreign keys, and the
 * sequences behind serial and identity columns.
 */
import type { ClientBase } from 'pg';

export interface TargetColumn {
  readonly name: string;
  /** format_type(): the column's type as SQL, e.g. `character varying(80)`, `timestamp with time zone`. */
  readonly type: string;
  /** pg_type.typname of the type, or of the domain's base type (for arrays: of the element type). */
  readonly baseType: string;
  readonly isArray: boolean;
  readonly notNull: boolean;
  readonly hasDefault: boolean;
  /** Its collation compares text byte for byte (PostgreSQL 12's nondeterministic collations do not). */
  readonly deterministic: boolean;
}

export interface UniqueKey {
  /** The constraint's or index's name. */
  readonly name: string;
  /** Its key columns as shown: a column's name, or an expression index's expression (`lower(label)`). */
  readonly columns: readonly string[];
  /** Its key columns as SQL over the table's columns, with the index's collation when not the default. */
  readonly expressions: readonly string[];
  /** The table columns it reads (key columns, and those its expressions and predicate use). */
  readonly uses: readonly string[];
  /** A partial index's WHERE, as SQL over the table's columns. */
  readonly predicate: string | null;
  /** Plain columns compared as they are (no expression, predicate, or collation other than deterministic). */
  readonly plain: boolean;
  readonly primary: boolean;
  /** PostgreSQL 15's NULLS NOT DISTINCT. */
  readonly nullsNotDistinct: boolean;
}

export interface ForeignKey {
  readonly name: string;
  /** pg_get_constraintdef(): `FOREIGN KEY (a) REFERENCES b(id) ON DELETE CASCADE`, maybe `NOT VALID`. */
  readonly definition: string;
}

export interface TargetTable {
  readonly name: string;
  /** Columns the copy writes (generated columns excluded), in table order. */
  readonly columns: readonly TargetColumn[];
  readonly primaryKey: readonly string[] | null;
  /** Unique constraints and unique indexes (expression and partial ones too), primary key first. */
  readonly uniqueKeys: readonly UniqueKey[];
  /** Tables this one references (itself included, when it does). */
  readonly references: readonly string[];
  /** Its foreign keys, to set aside while rows arrive (see copy.ts); empty when the user does not own the table. */
  readonly foreignKeys: readonly ForeignKey[];
  /** Sequences that serial/identity columns take values from: column → sequence (qualified, quoted). */
  readonly sequences: ReadonlyMap<string, string>;
}

/** The application's tables (the ledger excluded), by name. */
export async function readTargetSchema(client: ClientBase): Promise<Map<string, TargetTable>> {
  const { rows: tables } = await client.query(
    `SELECT c.oid, c.relname FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND c.relname <> 'orion_schema_history'
      ORDER BY c.relname`,
  );
  const oids = tables.map((t) => t.oid);
  const { rows: columns } = await client.query(
    `SELECT a.attrelid AS oid, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
            coalesce(elem.typname, base.typname, t.typname) AS base_type,
            (t.typcategory = 'A' OR base.typcategory = 'A') AS is_array,
            a.attnotnull AS not_null, a.atthasdef AS has_default,
            coalesce((SELECT co.collisdeterministic FROM pg_collation co WHERE co.oid = a.attcollation), true) AS deterministic,
            pg_get_serial_sequence(a.attrelid::regclass::text, a.attname) AS sequence
       FROM pg_attribute a
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type base ON t.typtype = 'd' AND base.oid = t.typbasetype
       LEFT JOIN pg_type elem ON elem.oid = coalesce(base.typelem, t.typelem) AND (t.typcategory = 'A' OR base.typcategory = 'A')
      WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY a.attrelid, a.attnum`,
    [oids],
  );
  // A key column is its name (attnum > 0) or an expression; the index's collation, when it is not the
  // default, goes with it, so the grouping compares as the index does (e.g. a case-insensitive ICU one).
  const { rows: uniques } = await client.query(
    `SELECT i.indrelid AS oid, coalesce(con.conname, ic.relname) AS name, i.indisprimary AS primary,
            ${(await nullsNotDistinctColumn(client)) ? 'i.indnullsnotdistinct' : 'false'} AS nulls_not_distinct,
            array(SELECT coalesce(a.attname, pg_get_indexdef(i.indexrelid, k.n::int, true))
                    FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE k.n <= i.indnkeyatts ORDER BY k.n)::text[] AS columns,
            array(SELECT CASE WHEN k.attnum = 0 THEN '(' || pg_get_indexdef(i.indexrelid, k.n::int, true) || ')'
                              ELSE quote_ident(a.attname) END
                         || CASE WHEN co.oid IS NULL OR co.oid = 100 THEN ''
                                 ELSE ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
                    FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                    LEFT JOIN pg_collation co ON co.oid = i.indcollation[k.n - 1]
                    LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
                   WHERE k.n <= i.indnkeyatts ORDER BY k.n)::text[] AS expressions,
            array(SELECT DISTINCT a.attname FROM pg_depend d
                    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                   WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                     AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
                   UNION
                  SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE k.n <= i.indnkeyatts)::text[] AS uses,
            pg_get_expr(i.indpred, i.indrelid, true) AS predicate,
            i.indexprs IS NULL AND i.indpred IS NULL
              AND NOT EXISTS (SELECT FROM unnest(i.indcollation) ic(oid) JOIN pg_collation co ON co.oid = ic.oid
                               WHERE NOT co.collisdeterministic) AS plain
       FROM pg_index i
       JOIN pg_class ic ON ic.oid = i.indexrelid
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u')
      WHERE i.indrelid = ANY($1) AND i.indisunique
      ORDER BY i.indrelid, i.indisprimary DESC, 2`,
    [oids],
  );
  const { rows: fks } = await client.query(
    `SELECT con.conrelid AS oid, con.confrelid::regclass::text AS referenced, con.conname AS name,
            pg_get_constraintdef(con.oid) AS definition,
            pg_has_role(child.relowner, 'USAGE') AND pg_has_role(parent.relowner, 'USAGE') AS owned
       FROM pg_constraint con
       JOIN pg_class child ON child.oid = con.conrelid
       JOIN pg_class parent ON parent.oid = con.confrelid
      WHERE con.contype = 'f' AND con.conrelid = ANY($1)
      ORDER BY con.conname`,
    [oids],
  );
  const nameOf = new Map(tables.map((t) => [t.oid, t.relname as string]));
  const result = new Map<string, TargetTable>();
  for (const t of tables) {
    const own = columns.filter((c) => c.oid === t.oid);
    const keys: UniqueKey[] = uniques
      .filter((u) => u.oid === t.oid)
      .map((u) => ({
        name: u.name,
        columns: u.columns,
        expressions: u.expressions,
        uses: u.uses,
        predicate: u.predicate,
        plain: u.plain,
        primary: u.primary,
        nullsNotDistinct: u.nulls_not_distinct,
      }));
    result.set(t.relname, {
      name: t.relname,
      columns: own.map((c) => ({
        name: c.name,
        type: c.type,
        baseType: c.base_type,
        isArray: c.is_array,
        notNull: c.not_null,
        hasDefault: c.has_default,
        deterministic: c.deterministic,
      })),
      primaryKey: keys.find((k) => k.primary)?.columns ?? null,
      uniqueKeys: keys,
      references: fks
        .filter((f) => f.oid === t.oid)
        .map((f) => unqualified(f.referenced))
        .filter((r) => [...nameOf.values()].includes(r)),
      foreignKeys: fks.filter((f) => f.oid === t.oid).every((f) => f.owned)
        ? fks.filter((f) => f.oid === t.oid).map((f) => ({ name: f.name, definition: f.definition }))
        : [],
      sequences: new Map(own.filter((c) => c.sequence).map((c) => [c.name, c.sequence])),
    });
  }
  return result;
}

async function nullsNotDistinctColumn(client: ClientBase): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT 1 FROM pg_attribute WHERE attrelid = 'pg_index'::regclass AND attname = 'indnullsnotdistinct'`,
  );
  return rows.length > 0;
}

/** `public.foo` or `"Foo"` as regclass prints it, back to the bare name. */
function unqualified(regclass: string): string {
  const name = regclass.startsWith('public.') ? regclass.slice('public.'.length) : regclass;
  return name.startsWith('"') ? name.slice(1, -1).replace(/""/g, '"') : name;
}

/**
 * Tables ordered so that a table comes after every table it references. A table that references
 * itself is fine (it is copied in one statement); a cycle through several tables has no such order.
 */
export function foreignKeyOrder(tables: readonly TargetTable[]): { order: string[]; cycle: string[] | null } {
  const names = new Set(tables.map((t) => t.name));
  const deps = new Map(tables.map((t) => [t.name, new Set(t.references.filter((r) => r !== t.name && names.has(r)))]));
  const order: string[] = [];
  while (deps.size) {
    const ready = [...deps].filter(([, d]) => d.size === 0).map(([n]) => n);
    if (!ready.length) return { order, cycle: [...deps.keys()].sort() };
    for (const n of ready.sort()) {
      order.push(n);
      deps.delete(n);
      for (const d of deps.values()) d.delete(n);
    }
  }
  return { order, cycle: null };
}
