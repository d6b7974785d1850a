import { describe, expect, test } from 'vitest';
import { loadMigrations, sha256 } from '../../lambda/engine/files';
import type { LedgerRow } from '../../lambda/engine/ledger';
import { planMigrations } from '../../lambda/engine/plan';
import { migrationsDir } from '../helpers/db';

const UP1 = 'CREATE TABLE a (id int);\n';
function row(version: bigint, text: string, extra: Partial<LedgerRow> = {}): LedgerRow {
  return {
    id: version,
    version,
    label: null,
    adoptedFrom: null,
    name: `m${version}`,
    status: 'applied',
    checksum: sha256(text),
    appliedAt: new Date('2026-01-01T00:00:00Z'),
    executionMs: 1,
    deployId: null,
    statementsDone: null,
    ...extra,
  };
}

describe('planMigrations', () => {
  test('pending are the unapplied versions in order; --to stops early', async () => {
    const ms = await loadMigrations(
      migrationsDir({ '1_m1.up.sql': UP1, '2_m2.up.sql': 'SELECT 2;', '3_m3.up.sql': 'SELECT 3;' }),
    );
    const plan = planMigrations(ms, [row(1n, UP1)]);
    expect(plan.currentVersion).toBe(1n);
    expect(plan.pending.map((p) => p.migration.version)).toEqual([2n, 3n]);
    expect(planMigrations(ms, [row(1n, UP1)], { to: 2n }).pending.map((p) => p.migration.version)).toEqual([2n]);
  });

  test('an edited applied file is an error naming it', async () => {
    const ms = await loadMigrations(migrationsDir({ '1_m1.up.sql': 'CREATE TABLE a (id bigint);\n' }));
    expect(() => planMigrations(ms, [row(1n, UP1)])).toThrow(
      /1_m1\.up\.sql: applied file was edited after it was applied/,
    );
  });

  test('a CRLF-only difference gets its own message', async () => {
    const ms = await loadMigrations(migrationsDir({ '1_m1.up.sql': UP1.replace(/\n/g, '\r\n') }));
    expect(() => planMigrations(ms, [row(1n, UP1)])).toThrow(/changed only in its line endings \(CRLF vs LF\)/);
  });

  test('an applied version missing from the folder is an error', async () => {
    const ms = await loadMigrations(migrationsDir({ '2_m2.up.sql': 'SELECT 2;' }));
    expect(() => planMigrations(ms, [row(1n, UP1)])).toThrow(/version 1 \(m1\) is applied but its file is missing/);
  });

  test('a pending version below the newest applied one is refused unless allowed', async () => {
    const ms = await loadMigrations(
      migrationsDir({ '1_m1.up.sql': UP1, '2_m2.up.sql': 'SELECT 2;', '3_m3.up.sql': 'SELECT 3;' }),
    );
    const ledger = [row(1n, UP1), row(3n, 'SELECT 3;')];
    expect(() => planMigrations(ms, ledger)).toThrow(
      /2_m2\.up\.sql: version 2 is pending but lower than the newest applied version 3/,
    );
    expect(planMigrations(ms, ledger, { allowOutOfOrder: true }).pending.map((p) => p.migration.version)).toEqual([2n]);
  });

  test('an incomplete non-transactional migration is pending with its progress', async () => {
    const text = '-- orion:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON a (id);\nVACUUM a;';
    const ms = await loadMigrations(migrationsDir({ '1_m1.up.sql': UP1, '2_m2.up.sql': text }));
    const plan = planMigrations(ms, [row(1n, UP1), row(2n, text, { id: 7n, status: 'incomplete', statementsDone: 1 })]);
    expect(plan.pending).toMatchObject([{ resumeFrom: 1, incompleteId: 7n }]);
    expect(plan.currentVersion).toBe(1n);
  });
});
