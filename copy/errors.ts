/**
 * Errors of the copy, typed like the engine's (lambda/engine/errors.ts), so the CLI maps them to exit
 * codes in one place.
 */
import { type ErrorEntry, OrionError } from '../lambda/engine/errors';

/** A value that does not fit its target column. Earlier batches stay committed; the checkpoint resumes. */
export class ConversionError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(
    readonly table: string,
    readonly key: string,
    /** Null when the server refused the row as a whole (a CHECK or unique constraint names no column). */
    readonly column: string | null,
    readonly problem: string,
    readonly sqlstate?: string,
    /** The server's DETAIL (e.g. the failing row); kept out of the message, as the engine's errors do. */
    readonly detail?: string,
  ) {
    super(`table ${table}, ${key}${column === null ? '' : `, column ${column}`}: ${problem}`);
    this.name = 'ConversionError';
  }
  toEntries(): ErrorEntry[] {
    // --json gets the row's place as fields too (file/line/column are the migrations' positions).
    const entry = {
      sqlstate: this.sqlstate,
      message: this.message,
      ...(this.detail ? { detail: this.detail } : {}),
      table: this.table,
      key: this.key,
      column_name: this.column,
    };
    return [entry];
  }
}

export interface UniqueConflict {
  readonly table: string;
  readonly constraint: string;
  readonly columns: readonly string[];
  /** The key values that occur more than once, as text. */
  readonly values: readonly (string | null)[];
  readonly rows: number;
}

/** Source rows that the target's unique or primary keys would refuse; found before anything is written. */
export class UniqueConflictError extends OrionError {
  readonly exitCode = 2 as const;
  constructor(readonly conflicts: readonly UniqueConflict[]) {
    super(conflicts.map(describeConflict).join('\n'));
    this.name = 'UniqueConflictError';
  }
  toEntries(): ErrorEntry[] {
    return this.conflicts.map((c) => ({ message: `${describeConflict(c)}; nothing was copied` }));
  }
}

export function describeConflict(c: UniqueConflict): string {
  return (
    `table ${c.table}: unique key ${c.constraint} (${c.columns.join(', ')}) would be violated: ` +
    `${c.rows} source rows have (${c.columns.join(', ')}) = (${c.values.map((v) => (v === null ? 'NULL' : v)).join(', ')})`
  );
}

/** Copied rows that a foreign key refuses (a child whose parent is not in the source), found when it is validated. */
export class ForeignKeyError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(
    readonly table: string,
    readonly constraint: string,
    readonly detail: string,
  ) {
    super(
      `table ${table}: foreign key ${constraint} does not hold for the copied rows: ${detail} ` +
        `The rows stay, with the key NOT VALID; fix the source and copy again with --truncate`,
    );
    this.name = 'ForeignKeyError';
  }
  toEntries(): ErrorEntry[] {
    return [{ sqlstate: '23503', message: this.message }];
  }
}
