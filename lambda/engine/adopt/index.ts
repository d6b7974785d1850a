/**
 * Taking over a database orion-db has no ledger in: from another tool's ledger (the tools below),
 * or, with a baseline, from a hand-built schema proven equal to the migrations up to it. Nothing here
 * writes: `findAdoption` says what would be recorded, `recordAdoption` (ledger.ts) records it.
 */
import type { ClientBase } from 'pg';
import { BadInputError } from '../errors';
import type { Migration } from '../files';
import { dbmate } from './dbmate';
import { diesel } from './diesel';
import { flyway } from './flyway';
import { golangMigrate } from './golang-migrate';
import { goose } from './goose';
import { existingObjects } from './hand-built';
import { nodePgMigrate } from './node-pg-migrate';
import { prisma } from './prisma';
import { sqlx } from './sqlx';
import type { AdoptedMigration, ForeignLedger, ForeignTool } from './types';

export { FOREIGN_TOOLS, type ForeignTool } from './types';

/** golang-migrate before dbmate: both use schema_migrations, only golang-migrate's has `dirty`. */
const LEDGERS: readonly ForeignLedger[] = [golangMigrate, dbmate, goose, flyway, prisma, diesel, sqlx, nodePgMigrate];

export interface Adoption {
  /** The tool whose ledger was read, or `baseline` for a hand-built database. */
  readonly from: ForeignTool | 'baseline';
  /** The foreign ledger's table, left as it is. */
  readonly table?: string;
  readonly migrations: readonly AdoptedMigration[];
}

/** The foreign ledgers present in the current schema, by their tables' shape. */
export async function foreignLedgers(client: ClientBase): Promise<ForeignLedger[]> {
  const { rows } = await client.query(
    `SELECT c.relname AS table, array_agg(a.attname::text) AS columns
       FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relname = ANY($1) AND c.relkind IN ('r', 'p') AND c.relnamespace = current_schema()::regnamespace
      GROUP BY c.relname`,
    [[...new Set(LEDGERS.map((l) => l.table))]],
  );
  const tables = new Map(rows.map((r) => [r.table as string, new Set(r.columns as string[])]));
  const found: ForeignLedger[] = [];
  for (const l of LEDGERS) {
    const columns = tables.get(l.table);
    if (!columns || !l.columns.every((c) => columns.has(c))) continue;
    if (found.some((f) => f.table === l.table)) continue; // schema_migrations: the first shape that fits
    found.push(l);
  }
  return found;
}

/**
 * What a foreign ledger says was applied, matched to `migrations`; undefined when there is none.
 * Throws (bad input, nothing changed) when it cannot be taken over as it is: dirty, failed, rolled
 * back or unfinished, a version with no file, or two tools' ledgers and no `from` to choose.
 */
export async function readForeignLedger(
  client: ClientBase,
  migrations: readonly Migration[],
  from?: ForeignTool,
): Promise<Adoption | undefined> {
  const found = await foreignLedgers(client);
  const chosen = from ? found.filter((l) => l.tool === from) : found;
  if (from && chosen.length === 0)
    throw new BadInputError(
      `no ${from} ledger in this database (${from === 'golang-migrate' || from === 'dbmate' ? 'schema_migrations' : LEDGERS.find((l) => l.tool === from)!.table} with its columns)`,
    );
  if (chosen.length === 0) return undefined;
  if (chosen.length > 1)
    throw new BadInputError(
      `this database has the ledgers of ${chosen.map((l) => `${l.tool} (${l.table})`).join(' and ')}: pass --from TOOL to say which one to continue from`,
    );
  const ledger = chosen[0];
  const state = await ledger.read(client, migrations);
  if (state.problems.length)
    throw new BadInputError(
      `cannot take over from ${ledger.tool}; no migration was recorded or applied:\n  ${state.problems.join('\n  ')}`,
    );
  const applied = [...state.applied].sort((a, b) => (a.migration.version < b.migration.version ? -1 : 1));
  return { from: ledger.tool, table: ledger.table, migrations: applied };
}

export interface TakeOverOptions {
  /** The tool whose ledger to continue from (default: the one found; two found is an error). */
  readonly adoptFrom?: ForeignTool;
  /**
   * For a database with objects and no ledger: the version its schema is at (as the folder writes
   * it). The schema must equal what the migrations up to it produce; then they are recorded as applied.
   */
  readonly baseline?: string;
  /**
   * Compares the live schema with what `upTo` produces (compare.ts's `baselineComparer`); needed
   * for `baseline`. Injected, so the engine's adoption does not depend on the replay machinery.
   */
  readonly compareBaseline?: (upTo: readonly Migration[]) => Promise<SchemaDifference[]>;
}

/** One way a hand-built schema differs from the migrations' (drift's shape). */
export interface SchemaDifference {
  readonly kind: string;
  readonly object: string;
  /** The migrations' definition; null when they do not make the object. */
  readonly expected: string | null;
  /** The database's; null when it is missing there. */
  readonly actual: string | null;
}

/**
 * How to take over a database without orion-db's ledger: from a foreign ledger, from a proven
 * baseline, or not at all (an empty database). Refuses a database with objects and neither.
 */
export async function findAdoption(
  client: ClientBase,
  migrations: readonly Migration[],
  options: TakeOverOptions,
): Promise<Adoption | undefined> {
  const foreign = await readForeignLedger(client, migrations, options.adoptFrom);
  if (foreign) return foreign;
  const objects = await existingObjects(client);
  if (options.baseline !== undefined) return proveBaseline(migrations, options);
  if (objects.length === 0) return undefined;
  const shown = objects.slice(0, 20).join(', ') + (objects.length > 20 ? `, … (${objects.length} in all)` : '');
  throw new BadInputError(
    `the database already has ${objects.length} object(s) but no orion-db ledger and no other tool's: ${shown}. ` +
      'If its schema was built by hand (or by the application), pass --baseline V (CDK: baselineVersion) with the version ' +
      'of the migrations folder it matches: orion-db proves the schema equals those migrations, records them as applied ' +
      'and applies the rest. Nothing was changed.',
  );
}

/** The migrations up to `baseline`, once the live schema is proven equal to what they produce. */
async function proveBaseline(migrations: readonly Migration[], options: TakeOverOptions): Promise<Adoption> {
  const baseline = options.baseline!;
  const last = migrations.find(
    (m) => m.label === baseline || (/^\d+$/.test(baseline) && m.version === BigInt(baseline) && !m.label.includes('.')),
  );
  if (!last)
    throw new BadInputError(
      `--baseline ${baseline}: no migration in the folder has that version (versions: ${migrations.map((m) => m.label).join(', ') || 'none'})`,
    );
  const upTo = migrations.filter((m) => m.version <= last.version);
  if (!options.compareBaseline)
    throw new BadInputError(
      `--baseline ${baseline}: this command cannot compare schemas (no server to replay the migrations on)`,
    );
  const differences = await options.compareBaseline(upTo);
  if (differences.length) {
    const shown = differences.slice(0, 30).map(describe);
    if (differences.length > 30) shown.push(`… ${differences.length - 30} more`);
    throw new BadInputError(
      `--baseline ${baseline}: the database's schema is not what migrations up to ${baseline} make (${differences.length} difference(s)); no migration was recorded or applied:\n  ${shown.join('\n  ')}\n` +
        `Make the database match (or choose the version it does match), then run again; "orion-db drift" lists the same differences with fixes once the database is under orion-db.`,
    );
  }
  return { from: 'baseline', migrations: upTo.map((migration) => ({ migration, appliedAt: null })) };
}

function describe(d: SchemaDifference): string {
  if (d.expected === null) return `${d.kind} ${d.object}: in the database, not made by the migrations (${d.actual})`;
  if (d.actual === null) return `${d.kind} ${d.object}: missing from the database (the migrations make ${d.expected})`;
  return `${d.kind} ${d.object}: the migrations make ${d.expected}, the database has ${d.actual}`;
}
