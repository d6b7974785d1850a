/** dbmate: `schema_migrations(version varchar(128) PRIMARY KEY)` (pkg/driver/postgres), one row per applied version. */
import { byNumber, type ForeignLedger, missingFile } from './types';

export const dbmate: ForeignLedger = {
  tool: 'dbmate',
  table: 'schema_migrations',
  columns: ['version'],
  async read(client, migrations) {
    const { rows } = await client.query('SELECT version::text AS version FROM schema_migrations ORDER BY version');
    const applied = [];
    const problems: string[] = [];
    for (const { version } of rows) {
      const migration = byNumber(migrations, version);
      if (migration) applied.push({ migration, appliedAt: null });
      else
        problems.push(
          missingFile('dbmate', version, `delete its row from schema_migrations if it was never meant to be applied`),
        );
    }
    return { applied, problems };
  },
};
