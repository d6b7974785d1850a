/**
 * A SQLite file read in place with better-sqlite3 (SQLite itself, compiled on install): real file
 * locking and WAL, so a file the application still has open is read consistently. Rows are read by
 * rowid, which every ordinary table has and indexes, so each batch is one short index range scan
 * and the file is never locked for longer than a batch. WITHOUT ROWID tables are read by their
 * primary key. Integers come back as BigInt, so 64-bit values survive.
 */
import { isUtf8 } from 'node:buffer';
import type BetterSqlite3 from 'better-sqlite3';
import { BadInputError } from '../lambda/engine/errors';
import type { SourceValue } from './convert';
import type { Batch, Position, Source, SourceTable, UnchangedKind } from './source';

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export async function openSqlite(path: string): Promise<Source> {
  const Database = (await import('better-sqlite3')).default;
  let db: BetterSqlite3.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true, timeout: 10_000 });
    db.prepare('SELECT count(*) FROM sqlite_schema').get();
    // Text as better-sqlite3 reads it, which has U+FFFD for any bytes that are not UTF-8: without one,
    // the value is valid UTF-8 (a real U+FFFD only sends its key to the target's grouping). Passing the
    // text costs less than passing the bytes to isUtf8 (SOP data: 0.9 s against 1.5 s; 0.7 s without).
    db.function(NO_REPLACEMENT, { deterministic: true }, (s: unknown) =>
      typeof s === 'string' && !s.includes('\uFFFD') ? 1 : 0,
    );
  } catch (err) {
    throw new BadInputError(`--from: ${path} is not a readable SQLite database: ${(err as Error).message}`);
  }
  return new SqliteSource(db, path);
}

class SqliteSource implements Source {
  readonly description: string;
  constructor(
    private readonly db: BetterSqlite3.Database,
    path: string,
  ) {
    this.description = `sqlite:///${path}`;
  }

  async tables(): Promise<SourceTable[]> {
    const names = this.db
      .prepare(
        `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name`,
      )
      .pluck()
      .all() as string[];
    return names.map((name) => {
      const info = this.db.prepare(`SELECT name, pk FROM pragma_table_info(?)`).all(name) as {
        name: string;
        pk: number;
      }[];
      const columns = info.map((c) => c.name);
      const withoutRowid = (this.db.prepare(`SELECT wr FROM pragma_table_list(?)`).pluck().get(name) as number) === 1;
      let key: string | null;
      if (withoutRowid) {
        key = info
          .filter((c) => c.pk > 0)
          .sort((a, b) => a.pk - b.pk)
          .map((c) => quote(c.name))
          .join(', ');
      } else {
        // A column may be called rowid; SQLite then still knows the row id by its other names.
        key = ['rowid', '_rowid_', 'oid'].find((k) => !columns.some((c) => c.toLowerCase() === k)) ?? null;
      }
      return { name, columns, key, uniqueColumns: this.uniqueColumns(name, withoutRowid) };
    });
  }

  /**
   * Unique indexes on plain columns (not partial, no expression), with SQLite's own collations, all
   * of which call equal at least what BINARY does; and the INTEGER PRIMARY KEY, which is the rowid.
   * SQLite's unique indexes count NULLs as distinct, as PostgreSQL does by default.
   */
  private uniqueColumns(table: string, withoutRowid: boolean): string[][] {
    const sets: string[][] = [];
    const indexes = this.db
      .prepare(`SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND partial = 0`)
      .pluck()
      .all(table) as string[];
    for (const index of indexes) {
      const columns = this.db.prepare(`SELECT cid, name, coll FROM pragma_index_xinfo(?) WHERE key = 1`).all(index) as {
        cid: number;
        name: string | null;
        coll: string;
      }[];
      if (columns.every((c) => c.cid >= 0 && c.name !== null && ['BINARY', 'NOCASE', 'RTRIM'].includes(c.coll)))
        sets.push(columns.map((c) => c.name!));
    }
    if (!withoutRowid) {
      const pk = this.db.prepare(`SELECT name, type FROM pragma_table_info(?) WHERE pk > 0`).all(table) as {
        name: string;
        type: string;
      }[];
      if (pk.length === 1 && pk[0].type.toUpperCase() === 'INTEGER') sets.push([pk[0].name]);
    }
    return sets;
  }

  async count(table: string): Promise<number> {
    return Number(
      this.db
        .prepare(`SELECT count(*) FROM ${quote(table)}`)
        .pluck()
        .get(),
    );
  }

  async *batches(
    table: SourceTable,
    columns: readonly string[],
    batchSize: number,
    after: Position | null,
  ): AsyncIterable<Batch> {
    const list = columns.map(quote).join(', ') || 'NULL';
    if (!table.key) {
      if (after) throw new BadInputError(`table ${table.name} has no key to resume by`);
      const rows = this.db
        .prepare(`SELECT ${list} FROM ${quote(table.name)}`)
        .raw(true)
        .safeIntegers(true);
      let batch: SourceValue[][] = [];
      for (const row of rows.iterate() as Iterable<SourceValue[]>) {
        batch.push(row);
        if (batch.length === batchSize) {
          yield { rows: batch, end: null };
          batch = [];
        }
      }
      if (batch.length) yield { rows: batch, end: null };
      return;
    }
    const width = table.key.split(',').length;
    const keyList = table.key;
    const tuple = width > 1 ? `(${keyList})` : keyList;
    const placeholders = width > 1 ? `(${Array(width).fill('?').join(', ')})` : '?';
    // The key goes last, so a row's first columns are the ones asked for and no row is copied.
    const from = `SELECT ${list}, ${keyList} FROM ${quote(table.name)}`;
    const first = this.db.prepare(`${from} ORDER BY ${keyList} LIMIT ?`).raw(true).safeIntegers(true);
    const next = this.db
      .prepare(`${from} WHERE ${tuple} > ${placeholders} ORDER BY ${keyList} LIMIT ?`)
      .raw(true)
      .safeIntegers(true);
    let position = after;
    for (;;) {
      const raw = (
        position ? next.all(...position.map(fromPosition), batchSize) : first.all(batchSize)
      ) as SourceValue[][];
      if (!raw.length) return;
      this.keepInvalidText(table, columns, raw);
      const last = raw[raw.length - 1];
      position = last.slice(columns.length).map(toPosition);
      yield { rows: raw, end: position };
      if (raw.length < batchSize) return;
    }
  }

  /**
   * better-sqlite3 reads text that is not valid UTF-8 with U+FFFD in place of the bad bytes, which
   * would be written as if it were the data. A value holding U+FFFD is read again by its row's key as
   * bytes; when those are not valid UTF-8 they take its place, so a text column refuses them (naming
   * table, key and column, before the batch is written) and a bytea column gets them as they are.
   * Tables without a key cannot be read again by row; their values pass as read.
   */
  private keepInvalidText(table: SourceTable, columns: readonly string[], rows: SourceValue[][]): void {
    const width = table.key!.split(',').length;
    const where = `WHERE ${width > 1 ? `(${table.key})` : table.key} = ${width > 1 ? `(${Array(width).fill('?').join(', ')})` : '?'}`;
    for (const row of rows) {
      for (let c = 0; c < columns.length; c++) {
        const v = row[c];
        if (typeof v !== 'string' || !v.includes('\uFFFD')) continue;
        const bytes = this.db
          .prepare(`SELECT CAST(${quote(columns[c])} AS BLOB) FROM ${quote(table.name)} ${where}`)
          .pluck()
          .safeIntegers(true)
          .get(...row.slice(columns.length));
        if (Buffer.isBuffer(bytes) && !isUtf8(bytes)) row[c] = new Uint8Array(bytes);
      }
    }
  }

  /** One pass in SQLite itself (no value crosses into JavaScript); the conditions are the converters' own (convert.ts). */
  async unchangedColumns(table: string, columns: readonly { name: string; kind: UnchangedKind }[]): Promise<boolean[]> {
    if (!columns.length) return [];
    const changed = columns.map(
      ({ name, kind }, i) => `max(${quote(name)} IS NOT NULL AND NOT (${unchanged(quote(name), kind)})) AS c${i}`,
    );
    const row = this.db
      .prepare(`SELECT ${changed.join(', ')} FROM ${quote(table)}`)
      .raw(true)
      .get() as (number | null)[];
    // max() over no rows is NULL: an empty table changes nothing.
    return row.map((c) => !c);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** Key values kept in a checkpoint: integers as decimal text tagged `i:`, text tagged `t:`. */
function toPosition(v: SourceValue): string {
  if (typeof v === 'bigint' || typeof v === 'number') return `i:${v}`;
  if (typeof v === 'string') return `t:${v}`;
  throw new BadInputError(`a key value of type ${v === null ? 'null' : typeof v} cannot be resumed from`);
}

function fromPosition(p: string | number): bigint | string {
  const s = String(p);
  return s.startsWith('i:') ? BigInt(s.slice(2)) : s.slice(2);
}

/** SQL function (registered on open): 1 when a text, as read, has no U+FFFD (so was valid UTF-8). */
const NO_REPLACEMENT = 'orion_no_replacement_char';

const HEX = '[0-9a-f]';
/** CANONICAL_UUID of convert.ts as a GLOB (case-sensitive, whole string). */
const CANONICAL_UUID_GLOB = [8, 4, 4, 4, 12].map((n) => HEX.repeat(n)).join('-');
const INTEGER_RANGE = { int2: 15n, int4: 31n, int8: 63n } as const;

/** SQL true when `column`'s value (not NULL) is one the converter of `kind` leaves as it is. */
function unchanged(column: string, kind: UnchangedKind): string {
  if (kind === 'uuid') return `typeof(${column}) = 'text' AND ${column} GLOB '${CANONICAL_UUID_GLOB}'`;
  // toText refuses a NUL; instr() on text would stop at one, on the bytes it does not.
  // Invalid UTF-8 is read as U+FFFD, so two different byte strings may arrive as one text.
  const text = `typeof(${column}) = 'text' AND instr(CAST(${column} AS BLOB), x'00') = 0 AND ${NO_REPLACEMENT}(${column})`;
  if (kind === 'text') return text;
  // length() counts characters, as varchar(n) does.
  if (typeof kind === 'object') return `${text} AND length(${column}) <= ${kind.maxLength}`;
  const bits = INTEGER_RANGE[kind];
  return `typeof(${column}) = 'integer' AND ${column} BETWEEN ${-(1n << bits)} AND ${(1n << bits) - 1n}`;
}
