/**
 * How pending migrations group into runs (one transactional batch, or one non-transactional file),
 * and the one check that spans a whole batch.
 */
import { BadInputError } from './errors';
import type { PendingMigration } from './plan';
import type { Statement } from './sql';

/** Splits pending migrations into runs of transactional ones and single non-transactional ones. */
export function groupBatches(pending: readonly PendingMigration[]): PendingMigration[][] {
  const groups: PendingMigration[][] = [];
  for (const p of pending) {
    const last = groups[groups.length - 1];
    if (!p.migration.up.directives.noTransaction && last && !last[0].migration.up.directives.noTransaction)
      last.push(p);
    else groups.push([p]);
  }
  return groups;
}

/**
 * `ALTER TYPE … ADD VALUE 'x'` may run in a transaction, but 'x' cannot be used until it commits.
 * Reject a batch that adds a value and uses it later, before anything runs.
 */
export function checkEnumValueUse(pending: readonly PendingMigration[]): void {
  for (const group of groupBatches(pending)) {
    if (group[0].migration.up.directives.noTransaction) continue;
    const use = findEnumValueUse(group.map((p) => p.migration.up));
    if (use) {
      throw new BadInputError(
        `uses enum value '${use.value}' added by ${use.addedAt} in the same transaction, which PostgreSQL refuses (55P04): move the ADD VALUE into its own migration marked "-- orion:no-transaction"`,
        { file: use.file, line: use.line },
      );
    }
  }
}

/** The first use of an enum value after the ADD VALUE that creates it, within scripts run in one transaction. */
export function findEnumValueUse(
  scripts: readonly { file: string; statements: readonly Statement[] }[],
): { value: string; file: string; line: number; addedAt: string } | undefined {
  const added = new Map<string, string>();
  for (const { file, statements } of scripts) {
    for (const s of statements) {
      if (added.size) {
        const json = JSON.stringify(s.node);
        for (const [value, addedAt] of added) {
          if (json.includes(`"sval":${JSON.stringify(value)}`)) return { value, file, line: s.line, addedAt };
        }
      }
      if (s.kind === 'AlterEnumStmt' && s.node.newVal) added.set(s.node.newVal, `${file}:${s.line}`);
    }
  }
  return undefined;
}
