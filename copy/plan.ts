/**
 * Which source table and columns feed which target table and columns, and how each table is read:
 * in key-ordered batches (resumable), or whole in one statement when it cannot be (no primary key in
 * the target, no key in the source, or a foreign key to itself: a batch could then hold a row whose
 * parent only comes in a later one). Everything here is decided before anything is written.
 */
import { BadInputError, BadInputErrors } from '../lambda/engine/errors';
import { type Converter, converterFor, type SourceValue } from './convert';
import type { PostgresSourceTable } from './pg-source';
import type { SourceTable } from './source';
import type { TargetColumn, TargetTable } from './target';

export interface TablePlan {
  readonly target: TargetTable;
  readonly source: SourceTable;
  /** Source column feeding each of `columns`, in the same order. */
  readonly sourceColumns: readonly string[];
  readonly columns: readonly TargetColumn[];
  readonly converters: readonly Converter[];
  /**
   * Every column has the same type in the source (PostgreSQL) as in the target, so the source's COPY
   * text can go to the target as it is, without reading it here.
   */
  readonly passThrough: boolean;
  /** Positions in `columns` of the target's primary key, or null. */
  readonly keyIndexes: readonly number[] | null;
  readonly mode: 'batches' | 'whole';
  /** Why a table is copied whole, for the report. */
  readonly whole?: string;
}

export interface Selection {
  readonly plans: TablePlan[];
  /** Tables in only one of the two databases (not copied), when no --tables was given. */
  readonly onlyInSource: string[];
  readonly onlyInTarget: string[];
}

const passThrough: Converter = (v) => (v === null ? null : String(v));

/** Column `i` of the plan has the same type in the source as in the target: its values need no conversion. */
export function isPassThrough(plan: TablePlan, i: number): boolean {
  return plan.converters[i] === passThrough;
}

export function planTables(
  sourceTables: readonly SourceTable[],
  targetTables: ReadonlyMap<string, TargetTable>,
  only: readonly string[] | undefined,
): Selection {
  // A target table takes the source table of its name, or else the one source table that differs only
  // in case (SQLite's `Accounts` for PostgreSQL's `accounts`), as columns do.
  const sources = new Map<string, SourceTable>();
  for (const name of targetTables.keys()) {
    const match =
      sourceTables.find((t) => t.name === name) ??
      single(sourceTables.filter((t) => t.name.toLowerCase() === name.toLowerCase()));
    if (match) sources.set(name, match);
  }
  const matched = new Set([...sources.values()]);
  const problems: BadInputError[] = [];
  for (const t of only ?? []) {
    if (!targetTables.has(t)) problems.push(new BadInputError(`--tables: table "${t}" is not in the target database`));
    else if (!sources.has(t)) problems.push(new BadInputError(`--tables: table "${t}" is not in the source`));
  }
  if (problems.length) throw problems.length === 1 ? problems[0] : new BadInputErrors(problems);
  const names = only ?? [...targetTables.keys()].filter((t) => sources.has(t));
  if (!names.length && sourceTables.length)
    throw new BadInputError(
      `no table of the source has a table of that name in the target, so nothing would be copied: the source has ` +
        `${list(sourceTables.map((t) => t.name))}, the target (schema public) ${list([...targetTables.keys()])}`,
    );
  const plans: TablePlan[] = [];
  for (const name of names) {
    try {
      plans.push(planTable(sources.get(name)!, targetTables.get(name)!));
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      problems.push(err);
    }
  }
  if (problems.length) throw problems.length === 1 ? problems[0] : new BadInputErrors(problems);
  return {
    plans,
    onlyInSource: only ? [] : sourceTables.filter((t) => !matched.has(t)).map((t) => t.name),
    onlyInTarget: only ? [] : [...targetTables.keys()].filter((t) => !sources.has(t)),
  };
}

function planTable(source: SourceTable, target: TargetTable): TablePlan {
  const unused = new Set(source.columns);
  const columns: TargetColumn[] = [];
  const sourceColumns: string[] = [];
  const missing: string[] = [];
  for (const column of target.columns) {
    const match =
      source.columns.find((c) => c === column.name) ??
      single(source.columns.filter((c) => c.toLowerCase() === column.name.toLowerCase()));
    if (match === undefined) {
      if (column.notNull && !column.hasDefault) missing.push(column.name);
      continue;
    }
    unused.delete(match);
    columns.push(column);
    sourceColumns.push(match);
  }
  if (missing.length)
    throw new BadInputError(
      `table ${target.name}: the source has no column ${missing.join(', ')}, which the target requires (NOT NULL, no default)`,
    );
  if (unused.size)
    throw new BadInputError(
      `table ${target.name}: source column(s) ${[...unused].join(', ')} have no column in the target; their data would be lost`,
    );
  const sourceTypes = (source as PostgresSourceTable).types;
  const converters = columns.map((c, i) =>
    sourceTypes?.get(sourceColumns[i]) === c.type ? passThrough : converterFor(c),
  );
  const allPassThrough = converters.length > 0 && converters.every((c) => c === passThrough);
  const keyIndexes = target.primaryKey?.map((k) => columns.findIndex((c) => c.name === k)) ?? null;
  const whole = !target.primaryKey
    ? 'the target table has no primary key'
    : keyIndexes!.some((i) => i < 0)
      ? 'its primary key is filled by defaults, not from the source'
      : !source.key
        ? 'the source table has no key to read it in order by'
        : target.references.includes(target.name)
          ? 'it references itself (a parent row may come after its children)'
          : undefined;
  return {
    target,
    source,
    sourceColumns,
    columns,
    converters,
    passThrough: allPassThrough,
    keyIndexes: whole && !target.primaryKey ? null : keyIndexes,
    mode: whole ? 'whole' : 'batches',
    whole,
  };
}

/** At most 20 names, then how many more. */
function list(names: readonly string[]): string {
  if (!names.length) return 'no tables';
  const shown = names.slice(0, 20).join(', ');
  return names.length > 20 ? `${shown} and ${names.length - 20} more` : shown;
}

function single<T>(xs: T[]): T | undefined {
  return xs.length === 1 ? xs[0] : undefined;
}

/** `id=…, type=…` of a source row, for messages: the target's primary key, else the row's number. */
export function describeKey(plan: TablePlan, row: readonly SourceValue[], rowNumber: number): string {
  if (!plan.keyIndexes || plan.keyIndexes.some((i) => i < 0)) return `source row ${rowNumber}`;
  return `key ${plan.keyIndexes.map((i) => `${plan.columns[i].name}=${show(row[i])}`).join(', ')}`;
}

function show(v: SourceValue): string {
  if (v instanceof Uint8Array) return `x'${Buffer.from(v).toString('hex')}'`;
  return v === null ? 'NULL' : String(v);
}
