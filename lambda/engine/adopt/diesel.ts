/**
 * Diesel: `__diesel_schema_migrations(version varchar(50) PRIMARY KEY, run_on timestamp)`, one row
 * per applied version; Diesel runs each migration in a transaction, so there is no failed state.
 */
import { byNumber, type ForeignLedger, missingFile } from './types';

export const diesel: ForeignLedger = {
  tool: 'diesel',
  table: '__diesel_schema_migrations',
  columns: ['version', 'run_on'],
  async read(client, migrations) {
    const { rows } = await client.query(
      'SELECT version::text AS version, run_on FROM __diesel_schema_migrations ORDER BY version',
    );
    const applied = [];
    const problems: string[] = [];
    for (const r of rows) {
      const migration = byNumber(migrations, r.version);
      if (migration) applied.push({ migration, appliedAt: r.run_on });
      else problems.push(missingFile('diesel', r.version, `"diesel migration revert" it with its folder restored`));
    }
    return { applied, problems };
  },
};
