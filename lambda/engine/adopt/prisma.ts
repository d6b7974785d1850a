/**
 * Prisma: `_prisma_migrations(id, checksum, finished_at, migration_name, logs, rolled_back_at,
 * started_at, applied_steps_count)` (prisma-engines' sql-migration-connector). A migration is applied
 * when a row for it finished and was not rolled back; a row neither finished nor rolled back is a
 * failed (or still running) migration, and one only rolled back was marked so by
 * `prisma migrate resolve --rolled-back`.
 */
import { type AdoptedMigration, bySource, type ForeignLedger } from './types';

export const prisma: ForeignLedger = {
  tool: 'prisma',
  table: '_prisma_migrations',
  columns: ['id', 'checksum', 'finished_at', 'migration_name', 'rolled_back_at', 'started_at', 'applied_steps_count'],
  async read(client, migrations) {
    const { rows } = await client.query(
      `SELECT migration_name,
              max(finished_at) FILTER (WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL) AS applied_at,
              bool_or(finished_at IS NULL AND rolled_back_at IS NULL) AS unfinished,
              bool_or(rolled_back_at IS NOT NULL) AS rolled_back
         FROM _prisma_migrations GROUP BY migration_name ORDER BY migration_name`,
    );
    const applied: AdoptedMigration[] = [];
    const problems: string[] = [];
    for (const r of rows) {
      const name = r.migration_name;
      if (r.applied_at === null && r.unfinished) {
        problems.push(
          `Prisma's ledger records ${name} as started but not finished (failed, or still running): fix the schema by hand, then ` +
            `"prisma migrate resolve --rolled-back ${name}" (to run it again) or "--applied ${name}" (if it is in fact applied)`,
        );
        continue;
      }
      if (r.applied_at === null) {
        problems.push(
          `Prisma's ledger records ${name} as rolled back: run "prisma migrate deploy" to apply it again (or remove its folder) before taking over`,
        );
        continue;
      }
      const migration = bySource(migrations, name);
      if (migration) applied.push({ migration, appliedAt: r.applied_at });
      else
        problems.push(
          `Prisma's ledger lists ${name} as applied, but the folder has no such migration: restore its folder (prisma/migrations/${name}/migration.sql)`,
        );
    }
    return { applied, problems };
  },
};
