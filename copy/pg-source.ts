/**
 * A PostgreSQL source (schema public), read in a read-only session: by primary key in keyset
 * batches, or whole through a cursor when a table has none. Values arrive as PostgreSQL's text output
 * (UTC, ISO dates); the copy passes them through unchanged where the target column has the same type.
 */
import type { Readable } from 'node:stream';
import type { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { connect, quoteIdent as q, redactUrl } from '../lambda/engine/db';
import type { SourceValue } from './convert';
import type { Batch, Position, Source, SourceTable } from './source';

/** Every value as the server's text: the copy decides what it means from the target's type. */
const asText = { getTypeParser: () => (value: string) => value };

export interface PostgresSourceTable extends SourceTable {
  /** format_type() of each column, to pass values through unchanged when the target's type is the same. */
  readonly types: ReadonlyMap<string, string>;
  /** The primary key's columns, unquoted, or null. */
  readonly keyColumns: readonly string[] | null;
}

/** A source that hands over a batch as COPY text, straight from its server, for columns that need no conversion. */
export interface CopyOutSource {
  /**
   * `COPY (SELECT columns … WHERE key > after ORDER BY key LIMIT n) TO STDOUT`: the rows `batches()`
   * would give, as COPY text. The table must have a key, and its columns must be among `columns`.
   */
  copyOut(table: PostgresSourceTable, columns: readonly string[], batchSize: number, after: Position | null): Readable;
  /** `columns` of the `n`th row (from 1) after `after` in key order: the row a COPY error's line number means. */
  rowAt(
    table: PostgresSourceTable,
    columns: readonly string[],
    after: Position | null,
    n: number,
  ): Promise<(string | null)[] | undefined>;
}

/** A source that finds repeated key values itself, when they need no conversion to be the target's. */
export interface DuplicateKeySource {
  /**
   * Up to `limit` values of `columns` that occur in more than one row of `table` (most frequent
   * first), as text, with how many rows have each. Rows with a NULL in the key do not count unless
   * `nullsNotDistinct`.
   */
  duplicateKeys(
    table: string,
    columns: readonly string[],
    nullsNotDistinct: boolean,
    limit: number,
  ): Promise<{ values: (string | null)[]; rows: number }[]>;
}

export function canFindDuplicates(source: unknown): source is DuplicateKeySource {
  return typeof (source as DuplicateKeySource).duplicateKeys === 'function';
}

export function canCopyOut(source: unknown): source is CopyOutSource {
  return typeof (source as CopyOutSource).copyOut === 'function';
}

export async function openPostgresSource(url: string): Promise<Source> {
  const client = await connect(url, { applicationName: 'orion-db copy (source)' });
  await client.query(
    `SET default_transaction_read_only = on; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD';
     SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; SET extra_float_digits = 1`,
  );
  return new PostgresSource(client, redactUrl(url));
}

class PostgresSource implements Source, CopyOutSource, DuplicateKeySource {
  constructor(
    private readonly client: Client,
    readonly description: string,
  ) {}

  async tables(): Promise<PostgresSourceTable[]> {
    const { rows } = await this.client.query(
      `SELECT c.relname AS name,
              array(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                       AND NOT a.attisdropped ORDER BY a.attnum)::text[] AS columns,
              array(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = c.oid
                       AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum)::text[] AS types,
              (SELECT array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n)::text[]
                 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS key
         FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname <> 'orion_schema_history'
        ORDER BY c.relname`,
    );
    return rows.map((r) => ({
      name: r.name,
      columns: r.columns,
      types: new Map(r.columns.map((c: string, i: number) => [c, r.types[i]])),
      key: r.key ? r.key.map(q).join(', ') : null,
      keyColumns: r.key,
    }));
  }

  async count(table: string): Promise<number> {
    const { rows } = await this.client.query(`SELECT count(*)::bigint AS n FROM public.${q(table)}`);
    return Number(rows[0].n);
  }

  async *batches(
    table: SourceTable,
    columns: readonly string[],
    batchSize: number,
    after: Position | null,
  ): AsyncIterable<Batch> {
    const list = columns.map(q).join(', ');
    const from = `public.${q(table.name)}`;
    if (!table.key) {
      await this.client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        await this.client.query(`DECLARE orion_copy NO SCROLL CURSOR FOR SELECT ${list} FROM ${from}`);
        for (;;) {
          const { rows } = await this.client.query({
            text: `FETCH ${batchSize} FROM orion_copy`,
            rowMode: 'array',
            types: asText,
          });
          if (!rows.length) break;
          yield { rows: rows as SourceValue[][], end: null };
        }
      } finally {
        await this.client.query('COMMIT');
      }
      return;
    }
    const width = table.key.split(',').length;
    const tuple = width > 1 ? `(${table.key})` : table.key;
    const params = Array.from({ length: width }, (_, i) => `$${i + 1}`).join(', ');
    const select = `SELECT ${list}, ${table.key} FROM ${from}`;
    let position = after;
    for (;;) {
      const { rows } = await this.client.query({
        text: position
          ? `${select} WHERE ${tuple} > ${width > 1 ? `(${params})` : params} ORDER BY ${table.key} LIMIT ${batchSize}`
          : `${select} ORDER BY ${table.key} LIMIT ${batchSize}`,
        values: position ? [...position] : [],
        rowMode: 'array',
        types: asText,
      });
      if (!rows.length) return;
      position = (rows[rows.length - 1] as string[]).slice(columns.length);
      yield { rows: rows as SourceValue[][], end: position };
      if (rows.length < batchSize) return;
    }
  }

  async duplicateKeys(table: string, columns: readonly string[], nullsNotDistinct: boolean, limit: number) {
    const cols = columns.map(q);
    const where = nullsNotDistinct ? '' : `WHERE ${cols.map((c) => `${c} IS NOT NULL`).join(' AND ')}`;
    const { rows } = await this.client.query({
      text: `SELECT ${cols.map((c) => `${c}::text`).join(', ')}, count(*)::bigint AS n FROM public.${q(table)} ${where}
              GROUP BY ${cols.join(', ')} HAVING count(*) > 1 ORDER BY n DESC, 1 LIMIT ${limit}`,
      rowMode: 'array',
    });
    return rows.map((r: unknown[]) => ({
      values: r.slice(0, columns.length) as (string | null)[],
      rows: Number(r[columns.length]),
    }));
  }

  async rowAt(table: PostgresSourceTable, columns: readonly string[], after: Position | null, n: number) {
    const { rows } = await this.client.query({
      text: `SELECT ${columns.map(q).join(', ')} FROM public.${q(table.name)} ${this.after(table, after)}
              ORDER BY ${table.key} OFFSET ${n - 1} LIMIT 1`,
      rowMode: 'array',
      types: asText,
    });
    return rows[0];
  }

  /** `WHERE key > after`, the position as literals (COPY takes no parameters), which the key's types read back. */
  private after(table: PostgresSourceTable, after: Position | null): string {
    if (!after) return '';
    const values = after.map((v) => this.client.escapeLiteral(String(v)));
    return values.length > 1 ? `WHERE (${table.key}) > (${values.join(', ')})` : `WHERE ${table.key} > ${values[0]}`;
  }

  copyOut(table: PostgresSourceTable, columns: readonly string[], batchSize: number, after: Position | null): Readable {
    if (!table.key) throw new Error(`copyOut: table ${table.name} has no key`);
    return this.client.query(
      copyTo(
        `COPY (SELECT ${columns.map(q).join(', ')} FROM public.${q(table.name)} ${this.after(table, after)} ORDER BY ${table.key} LIMIT ${batchSize}) TO STDOUT`,
      ),
    );
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}
