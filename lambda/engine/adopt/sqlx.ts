/**
 * sqlx: `_sqlx_migrations(version bigint PRIMARY KEY, description text, installed_on timestamptz,
 * success boolean, checksum bytea, execution_time bigint)` (sqlx-postgres migrate.rs). A row with
 * success false is a migration that failed part-way.
 */
import { byNumber, type ForeignLedger, missingFile } from './types';

export const sqlx: ForeignLedger = {
  tool: 'sqlx',
  table: '_sqlx_migrations',
  columns: ['version', 'description', 'installed_on', 'success', 'checksum', 'execution_time'],
  async read(client, migrations) {
    const { rows } = await client.query(
      'SELECT version::text AS version, description, installed_on, success FROM _sqlx_migrations ORDER BY version',
    );
    const applied = [];
    const problems: string[] = [];
    for (const r of rows) {
      if (!r.success) {
        problems.push(
          `sqlx's ledger records ${r.version} (${r.description}) as failed part-way (success = false): repair the schema by hand, ` +
            `delete its row from _sqlx_migrations and run "sqlx migrate run" again`,
        );
        continue;
      }
      const migration = byNumber(migrations, r.version);
      if (migration) applied.push({ migration, appliedAt: r.installed_on });
      else problems.push(missingFile('sqlx', r.version, `"sqlx migrate revert" it with its file restored`));
    }
    return { applied, problems };
  },
};
