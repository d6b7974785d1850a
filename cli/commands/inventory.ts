/**
 * `orion-db inventory`: row counts and sizes per table, the schema version, and the tables present
 * but not made by the migrations (or made but missing) — seed 004's baseline. `--output FILE` saves
 * it; `--compare FILE` compares with a saved one and fails (exit 1) when a table vanished or its
 * count dropped by more than `--tolerance` percent.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { connect, withDatabase } from '../../lambda/engine/db';
import { replayReference } from '../../lambda/engine/drift';
import { BadInputError } from '../../lambda/engine/errors';
import { loadMigrations } from '../../lambda/engine/files';
import { compareInventories, type Inventory, parseInventory, takeInventory } from '../../lambda/engine/inventory';
import { readPlan } from '../../lambda/engine/migrate';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from '../context';

export async function inventory(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const url = options.databaseUrl;
  if (!url) throw new BadInputError('no database given: pass --database-url URL or set DATABASE_URL');
  const saved = options.compare ? await readSaved(resolve(options.cwd, options.compare)) : undefined;
  const migrations = await loadMigrations(resolve(options.cwd, options.migrationsDir), { parse: false });
  const client = await connect(url, { applicationName: 'orion-db inventory' });
  let taken: Inventory;
  try {
    const plan = await readPlan(client, migrations, { allowOutOfOrder: true });
    const applied = new Set(plan.applied.map((r) => r.version));
    let expectedTables: string[] | undefined;
    if (applied.size > 0) {
      // The tables the applied migrations make: their replay, on a scratch database of the same server.
      const referenceUrl = options.devUrl ?? url;
      const reference = await replayReference({
        connect: (database) =>
          connect(database ? withDatabase(referenceUrl, database) : referenceUrl, {
            applicationName: 'orion-db inventory',
          }),
        migrations: migrations.filter((m) => applied.has(m.version)),
        log: ctx.progress,
      });
      expectedTables = [...reference.catalog.entries.values()].filter((e) => e.kind === 'table').map((e) => e.object);
    } else {
      ctx.progress('no applied migrations in the ledger: unexpected and missing tables are not computed');
    }
    taken = await takeInventory(client, { expectedTables });
  } finally {
    await client.end().catch(() => {});
  }
  const report = emptyReport('inventory');
  report.from_version = report.to_version = taken.version;
  report.inventory = taken;
  if (options.output) {
    const file = resolve(options.cwd, options.output);
    await writeFile(file, JSON.stringify(taken, null, 2) + '\n');
    report.output = file;
  }
  if (saved) {
    const comparison = compareInventories(saved.inventory, taken, options.tolerancePct);
    report.comparison = { file: saved.file, tolerance_pct: options.tolerancePct, ...comparison };
    report.ok = comparison.ok;
  }
  return report;
}

async function readSaved(file: string): Promise<{ file: string; inventory: Inventory }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err: any) {
    throw new BadInputError(
      `cannot read --compare ${file}: ${err?.code === 'ENOENT' ? 'no such file' : err?.message}`,
      {
        file,
      },
    );
  }
  return { file, inventory: parseInventory(text, file) };
}
