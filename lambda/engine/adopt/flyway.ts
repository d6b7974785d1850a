/**
 * Flyway: `flyway_schema_history(installed_rank, version, description, type, script, checksum,
 * installed_by, installed_on, execution_time, success)` (createMetaDataTable.sql for PostgreSQL).
 * Read in installed_rank order: `SQL` applies a version, `UNDO_SQL` and `DELETE` take it back,
 * `BASELINE` counts every version up to its own as applied (its own needs no file), `SCHEMA` is
 * Flyway creating schemas. A row with success false is a failed migration; a versioned row with no
 * version is a repeatable (R__), which orion-db does not run.
 */
import type { Migration } from '../files';
import { flywayLabel, flywayParts } from '../layouts/flyway';
import type { AdoptedMigration, ForeignLedger } from './types';

function compare(a: string, b: string): number {
  const pa = flywayParts(a);
  const pb = flywayParts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0n) - (pb[i] ?? 0n);
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}

/** A migration's version as Flyway compares it: `000001` is `1`. */
function flywayVersionOf(m: Migration): string | undefined {
  return /^\d+(?:\.\d+)*$/.test(m.label) ? flywayLabel(m.label) : undefined;
}

export const flyway: ForeignLedger = {
  tool: 'flyway',
  table: 'flyway_schema_history',
  columns: ['installed_rank', 'version', 'description', 'type', 'script', 'checksum', 'success'],
  async read(client, migrations) {
    const { rows } = await client.query(
      `SELECT installed_rank, version, description, type, script, success, installed_on
         FROM flyway_schema_history ORDER BY installed_rank`,
    );
    const problems: string[] = [];
    const state = new Map<string, AdoptedMigration | null>();
    const byVersion = new Map(migrations.flatMap((m) => (flywayVersionOf(m) ? [[flywayVersionOf(m)!, m]] : [])));
    for (const r of rows) {
      if (!r.success) {
        problems.push(
          `Flyway's history records ${r.script} (rank ${r.installed_rank}) as failed: repair the schema by hand, then "flyway repair" removes the failed entry`,
        );
        continue;
      }
      if (r.type === 'SCHEMA') continue;
      if (r.version === null) {
        problems.push(
          `Flyway's history has the repeatable migration ${r.script}: orion-db runs no repeatable migrations; make it a versioned file first`,
        );
        continue;
      }
      const version = flywayLabel(String(r.version).replace(/_/g, '.'));
      if (r.type === 'BASELINE') {
        for (const [v, migration] of byVersion)
          if (compare(v, version) <= 0) state.set(v, { migration, appliedAt: r.installed_on });
        continue;
      }
      if (r.type === 'UNDO_SQL' || r.type === 'DELETE') {
        state.set(version, null);
        continue;
      }
      const migration = byVersion.get(version);
      if (!migration) {
        problems.push(
          `Flyway's history lists version ${r.version} (${r.script}) as applied, but no migration in the folder has that version: restore its file (or undo it with Flyway first)`,
        );
        continue;
      }
      state.set(version, { migration, appliedAt: r.installed_on });
    }
    return { applied: [...state.values()].filter((a): a is AdoptedMigration => a !== null), problems };
  },
};
