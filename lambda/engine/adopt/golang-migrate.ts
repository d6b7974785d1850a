/**
 * golang-migrate: `schema_migrations(version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)`
 * (database/postgres/postgres.go), one row: the newest version applied. Everything up to it counts
 * as applied; a dirty row means a migration failed part-way.
 */
import { byNumber, type ForeignLedger, missingFile } from './types';

export const golangMigrate: ForeignLedger = {
  tool: 'golang-migrate',
  table: 'schema_migrations',
  columns: ['version', 'dirty'],
  async read(client, migrations) {
    const { rows } = await client.query('SELECT version::text AS version, dirty FROM schema_migrations');
    if (rows.length === 0) return { applied: [], problems: [] };
    const { version, dirty } = rows[0];
    if (dirty)
      return {
        applied: [],
        problems: [
          `golang-migrate's ledger is dirty at version ${version}: a migration failed part-way. Repair the schema by hand, ` +
            `then "migrate -path DIR -database URL force ${version}" (if ${version} is now fully applied) or force the version before it`,
        ],
      };
    const newest = byNumber(migrations, version);
    if (!newest)
      return {
        applied: [],
        problems: [missingFile('golang-migrate', version, `"migrate force" the version the schema is at`)],
      };
    return {
      applied: migrations
        .filter((m) => m.version <= newest.version)
        .map((migration) => ({ migration, appliedAt: null })),
      problems: [],
    };
  },
};
