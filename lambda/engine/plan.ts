/**
 * What a run would do, computed purely from the files and the ledger. Every inconsistency
 * between them (edited, missing or out-of-order files) is an error here, before anything runs.
 */
import type { Adoption } from './adopt';
import { BadInputError, BadInputErrors } from './errors';
import { type Migration, sha256 } from './files';
import type { LedgerRow } from './ledger';

export interface PendingMigration {
  readonly migration: Migration;
  /** Statements already run by an earlier, interrupted attempt (non-transactional files only). */
  readonly resumeFrom: number;
  /** The ledger row tracking that attempt. */
  readonly incompleteId?: bigint;
}

export interface Plan {
  /** Highest applied version, or null for an empty ledger. */
  readonly currentVersion: bigint | null;
  readonly applied: readonly LedgerRow[];
  readonly pending: readonly PendingMigration[];
  /** On a database without a ledger: what will be recorded as applied without running (adopt/). */
  readonly adoption?: Adoption;
}

export interface PlanOptions {
  /** Apply pending versions lower than the newest applied one. */
  readonly allowOutOfOrder?: boolean;
  /** Stop at this version (inclusive). */
  readonly to?: bigint;
  /**
   * Applied versions whose files are gone are expected: a stack rollback runs the previous code, whose
   * folder lacks what the failed deploy applied. Edited files are still errors.
   */
  readonly allowMissingFiles?: boolean;
}

export function planMigrations(
  migrations: readonly Migration[],
  ledger: readonly LedgerRow[],
  options: PlanOptions = {},
): Plan {
  ledger = byLabel(migrations, ledger);
  const files = new Map(migrations.map((m) => [m.version, m]));
  const errors: BadInputError[] = [];
  const applied = ledger.filter((r) => r.status === 'applied');
  const incomplete = new Map(ledger.filter((r) => r.status === 'incomplete').map((r) => [r.version, r]));
  for (const row of ledger) {
    const m = files.get(row.version);
    if (!m) {
      if (options.allowMissingFiles) continue;
      errors.push(
        new BadInputError(
          `version ${row.version} (${row.name}) is ${row.status === 'applied' ? 'applied' : 'partially applied'} but its file is missing from the migrations folder; restore the file (or revert the version with "orion-db down")`,
        ),
      );
    } else if (m.checksum !== row.checksum) {
      errors.push(new BadInputError(checksumMessage(m, row), { file: m.up.file }));
    }
  }
  const currentVersion = maxVersion(null, applied);
  const appliedVersions = new Set(applied.map((r) => r.version));
  const pending: PendingMigration[] = [];
  for (const m of migrations) {
    if (appliedVersions.has(m.version)) continue;
    if (options.to !== undefined && m.version > options.to) break;
    if (currentVersion !== null && m.version < currentVersion && !options.allowOutOfOrder) {
      errors.push(
        new BadInputError(
          `version ${m.version} is pending but lower than the newest applied version ${currentVersion}: renumber it above ${currentVersion}, or pass --allow-out-of-order`,
          { file: m.up.file },
        ),
      );
      continue;
    }
    const row = incomplete.get(m.version);
    pending.push({ migration: m, resumeFrom: row?.statementsDone ?? 0, incompleteId: row?.id });
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new BadInputErrors(errors);
  return { currentVersion, applied, pending };
}

/**
 * Rows matched to files by their label where they have one: a Flyway folder's ordering keys change
 * when its first dotted version arrives (layouts/flyway.ts), its labels never do.
 */
function byLabel(migrations: readonly Migration[], ledger: readonly LedgerRow[]): readonly LedgerRow[] {
  const labels = new Map(migrations.map((m) => [m.label, m]));
  return ledger.map((r) => {
    const m = r.label === null ? undefined : labels.get(r.label);
    return m && m.version !== r.version ? { ...r, version: m.version } : r;
  });
}

/** The highest version among `rows`, or `current` if none is higher. */
export function maxVersion(current: bigint | null, rows: readonly { version: bigint }[]): bigint | null {
  return rows.reduce<bigint | null>((max, r) => (max === null || r.version > max ? r.version : max), current);
}

function checksumMessage(m: Migration, row: LedgerRow): string {
  const text = m.up.text;
  const lf = text.replace(/\r\n/g, '\n');
  const crlf = lf.replace(/\n/g, '\r\n');
  if (sha256(lf) === row.checksum || sha256(crlf) === row.checksum) {
    return `applied file changed only in its line endings (CRLF vs LF) since it was applied on ${row.appliedAt.toISOString()}: restore its original line endings (check git's core.autocrlf / .gitattributes)`;
  }
  return `applied file was edited after it was applied on ${row.appliedAt.toISOString()} (checksum ${row.checksum.slice(0, 12)}… in the ledger, ${m.checksum.slice(0, 12)}… on disk): restore it and put the change in a new migration`;
}
