/**
 * How pending migrations group into batches: consecutive transactional migrations run as one
 * transaction, a non-transactional file runs alone, and a batch ends early (a commit boundary)
 * where a later migration may use an enum value that an earlier one of the batch adds.
 */
import { AddedEnumValues, type EnumValueUse } from './enum-values';
import type { PendingMigration } from './plan';

export interface Batch {
  readonly migrations: readonly PendingMigration[];
  /** Set when this batch ends early so that the next one may use what it commits. */
  readonly split?: BatchSplit;
}

/** A commit boundary inside what would otherwise be one transaction. */
export interface BatchSplit {
  /** The last version of the batch that commits first. */
  readonly after: bigint;
  /** The first version of the batch that follows. */
  readonly before: bigint;
  readonly reason: string;
}

/**
 * Groups pending migrations into batches. The transactional migrations' statements must be parsed
 * (`prepareScripts`) first. A false positive of the enum check costs one commit, never a refusal.
 */
export function planBatches(pending: readonly PendingMigration[]): Batch[] {
  const batches: Batch[] = [];
  let run: PendingMigration[] = [];
  let added = new AddedEnumValues();
  const close = (split?: BatchSplit) => {
    if (run.length) batches.push({ migrations: run, split });
    run = [];
    added = new AddedEnumValues(); // committed: usable from here on
  };
  for (const p of pending) {
    const up = p.migration.up;
    if (up.directives.noTransaction) {
      close();
      batches.push({ migrations: [p] });
      continue;
    }
    for (let use = added.firstUse(up.file, up.statements); use; use = added.firstUse(up.file, up.statements)) {
      // End the batch after the migration that added the value; what followed it starts the next one.
      const k = run.findIndex((q) => q.migration.up.file === use!.value.file);
      const rest = run.slice(k + 1);
      run = run.slice(0, k + 1);
      close({ after: run[k].migration.version, before: (rest[0] ?? p).migration.version, reason: describeUse(use) });
      for (const q of rest) record(added, q);
      run = rest;
    }
    record(added, p);
    run.push(p);
  }
  close();
  return batches;
}

function record(added: AddedEnumValues, p: PendingMigration): void {
  for (const s of p.migration.up.statements) added.record(p.migration.up.file, s);
}

export function describeUse(use: EnumValueUse): string {
  const { value } = use;
  const type = value.type.schema ? `${value.type.schema}.${value.type.name}` : value.type.name;
  return (
    `${use.file}:${use.line} ${use.certain ? 'uses' : 'may use'} enum value '${value.label}' of ${type}, ` +
    `added by ${value.file}:${value.line}: PostgreSQL accepts a new enum value only once it is committed (55P04)`
  );
}

/**
 * Where to split a batch the server refused with 55P04 at `failedFile`: after the last migration
 * before it that adds an enum value (so every value added before it is committed), or undefined
 * when none does (the failing file adds and uses the value itself: no split can help).
 */
export function splitPointFor55P04(migrations: readonly PendingMigration[], failedFile: string): number | undefined {
  const failed = migrations.findIndex((p) => p.migration.up.file === failedFile);
  for (let i = failed - 1; i >= 0; i--) {
    const adds = migrations[i].migration.up.statements.some((s) => s.kind === 'AlterEnumStmt' && !s.node.oldVal);
    if (adds) return i;
  }
  return undefined;
}
