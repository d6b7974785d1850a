/**
 * node-pg-migrate: `pgmigrations(id serial PRIMARY KEY, name varchar(255), run_on timestamp)`
 * (runner.ts ensureMigrationsTable), one row per applied migration, named by its file without the
 * extension.
 */
import { bySource, type ForeignLedger } from './types';

export const nodePgMigrate: ForeignLedger = {
  tool: 'node-pg-migrate',
  table: 'pgmigrations',
  columns: ['id', 'name', 'run_on'],
  async read(client, migrations) {
    const { rows } = await client.query('SELECT name, run_on FROM pgmigrations ORDER BY run_on, id');
    const applied = [];
    const problems: string[] = [];
    for (const r of rows) {
      const migration = bySource(migrations, r.name);
      if (migration) applied.push({ migration, appliedAt: r.run_on });
      else
        problems.push(
          `node-pg-migrate's ledger lists ${r.name} as applied, but the folder has no such migration: restore its file, or "node-pg-migrate down" it first`,
        );
    }
    return { applied, problems };
  },
};
