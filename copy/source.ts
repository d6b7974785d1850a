/**
 * Where rows come from: a SQLite file or a PostgreSQL database, behind one small interface, read in
 * batches in a stable key order so a copy can stop anywhere and go on after the last row it wrote.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { redactUrl } from '../lambda/engine/db';
import { BadInputError } from '../lambda/engine/errors';
import type { SourceValue } from './convert';

/** Where a table's reading stands: the key of the last row read, as JSON-safe values. */
export type Position = readonly (string | number)[];

export interface SourceTable {
  readonly name: string;
  readonly columns: readonly string[];
  /**
   * How rows are ordered and resumed: `rowid` (SQLite), the source's primary key, or null when the
   * table has no key to resume by (it is then read whole, in one pass).
   */
  readonly key: string | null;
  /**
   * Column sets the source itself holds unique (SQLite: unique indexes and the INTEGER PRIMARY KEY),
   * NULLs distinct, compared byte for byte or more loosely; absent when the source does not say.
   */
  readonly uniqueColumns?: readonly (readonly string[])[];
}

export interface Batch {
  readonly rows: SourceValue[][];
  /** Position after the last row, for the next batch; null when the table has no key. */
  readonly end: Position | null;
}

export interface Source {
  /** `sqlite:////abs/path.db` or the URL without its password, for reports and checkpoints. */
  readonly description: string;
  tables(): Promise<SourceTable[]>;
  count(table: string): Promise<number>;
  /**
   * Reads `columns` of `table` in key order, `batchSize` rows at a time, starting after `after`
   * (from the start when null). Tables without a key are read in one pass (`after` must be null).
   */
  batches(
    table: SourceTable,
    columns: readonly string[],
    batchSize: number,
    after: Position | null,
  ): AsyncIterable<Batch>;
  /**
   * For each column, whether every non-NULL value is one the converter for `kind` leaves exactly as
   * it is, of the one storage class that kind admits: `uuid`, text in the canonical lowercase form;
   * `text`, valid UTF-8 text without a NUL (`{ maxLength }`: and of at most that many characters);
   * `int2`/`int4`/`int8`, integers within the type's range. Optional.
   */
  unchangedColumns?(table: string, columns: readonly { name: string; kind: UnchangedKind }[]): Promise<boolean[]>;
  close(): Promise<void>;
}

export type UnchangedKind = 'uuid' | 'text' | { readonly maxLength: number } | 'int2' | 'int4' | 'int8';

export type SourceSpec = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (SQLAlchemy's convention, as seed 002
 * writes it), or a PostgreSQL URL (`postgres://`, `postgresql://`, and SQLAlchemy's
 * `postgresql+driver://`). `setting` names the flag in errors.
 */
export function parseSource(value: string, setting: string, cwd: string): SourceSpec {
  if (value.startsWith('sqlite:')) {
    const m = /^sqlite:\/\/\/(.+)$/.exec(value);
    if (!m || m[1].includes('?'))
      throw new BadInputError(
        `${setting}: a SQLite source is sqlite:///relative/path.db or sqlite:////absolute/path.db, got "${value}"`,
      );
    const path = m[1].startsWith('/') ? m[1] : resolve(cwd, m[1]);
    if (!existsSync(path) || !statSync(path).isFile()) throw new BadInputError(`${setting}: no SQLite file at ${path}`);
    return { kind: 'sqlite', path };
  }
  return { kind: 'postgres', url: postgresUrl(value, setting) };
}

/** What was typed, as typed (a plain path is not a URL), with anything that may be a password hidden. */
function shown(value: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return redactUrl(value);
  // Anything that may carry a password (user:pw@host, key=value strings) is not echoed at all.
  return /@|password|=/i.test(value) ? '<unparseable database URL>' : value;
}

/** A PostgreSQL URL as pg takes it; SQLAlchemy's `postgresql+psycopg://` is accepted too. */
export function postgresUrl(value: string, setting: string): string {
  const url = value.replace(/^postgresql\+[a-z0-9_]+:\/\//i, 'postgresql://');
  if (!/^postgres(ql)?:\/\//i.test(url))
    throw new BadInputError(
      `${setting}: expected a postgres:// URL${setting === '--from' ? ' or sqlite:///path.db' : ''}, got "${shown(value)}"`,
    );
  return url;
}
