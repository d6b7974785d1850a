/**
 * goose: `goose_db_version(id, version_id bigint, is_applied boolean, tstamp timestamp)`. A version's
 * newest row says whether it is applied (older goose recorded a down as a row with is_applied false);
 * version 0 is the row goose writes when it creates the table.
 */
import { byNumber, type ForeignLedger, missingFile } from './types';

export const goose: ForeignLedger = {
  tool: 'goose',
  table: 'goose_db_version',
  columns: ['version_id', 'is_applied', 'tstamp'],
  async read(client, migrations) {
    const { rows } = await client.query(
      `SELECT DISTINCT ON (version_id) version_id::text AS version, is_applied, tstamp
         FROM goose_db_version WHERE version_id <> 0 ORDER BY version_id, id DESC`,
    );
    const applied = [];
    const problems: string[] = [];
    for (const r of rows) {
      if (!r.is_applied) continue;
      const migration = byNumber(migrations, r.version);
      if (migration) applied.push({ migration, appliedAt: r.tstamp });
      else problems.push(missingFile('goose', r.version, `"goose down-to" below it with the file restored`));
    }
    return { applied, problems };
  },
};
