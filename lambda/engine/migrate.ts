/**
 * Applying and reverting migrations: under the migration lock, plan from the ledger, parse what
 * will run, then hand it to the executor. Pending transactional migrations run as one atomic batch
 * with their ledger rows; a non-transactional migration runs alone, recording its progress so a
 * re-run resumes it.
 */
import type { ClientBase } from 'pg';
import { type Adoption, findAdoption, type TakeOverOptions } from './adopt';
import { takeOwnership } from './adopt/ownership';
import { quoteIdent } from './db';
import { BadInputError, NoDownScriptError } from './errors';
import { Executor, type RunOptions, type RunResult } from './executor';
import { type Migration, prepareScripts, readScript } from './files';
import { ensureLedger, insertAdopted, type LedgerRow, ledgerExists, readDownScripts, readLedger } from './ledger';
import { acquireMigrationLock, releaseMigrationLock } from './lock';
import { type Plan, type PlanOptions, planMigrations } from './plan';

export type { AppliedReport, RunEvent, RunOptions, RunResult } from './executor';

/** Holds the migration lock around `fn`. */
export async function withMigrationLock<T>(client: ClientBase, options: RunOptions, fn: () => Promise<T>): Promise<T> {
  // If this process dies mid-statement, the server notices within a second and rolls back,
  // instead of running the statement to its end with the lock held.
  await client.query(`SET client_connection_check_interval = '1s'`);
  await acquireMigrationLock(client, options.lockWaitMs ?? 60_000, (holder) =>
    options.onEvent?.({ type: 'lock-wait', holder }),
  );
  try {
    return await fn();
  } finally {
    await releaseMigrationLock(client).catch(() => {});
  }
}

/** Reads the ledger and plans, without changing anything (no lock, no ledger creation). */
export async function readPlan(
  client: ClientBase,
  migrations: readonly Migration[],
  options: PlanOptions = {},
): Promise<Plan> {
  return planMigrations(migrations, await readLedger(client), options);
}

/**
 * `readPlan`, and on a database without orion-db's ledger, what taking it over would record:
 * another tool's ledger, a proven baseline, or nothing for an empty database (adopt/). Changes
 * nothing; refuses (bad input) what cannot be taken over as it is.
 */
export async function readPlanAdopting(
  client: ClientBase,
  migrations: readonly Migration[],
  options: PlanOptions & TakeOverOptions = {},
): Promise<Plan> {
  if (await ledgerExists(client)) return readPlan(client, migrations, options);
  const adoption = await findAdoption(client, migrations, options);
  if (!adoption) return planMigrations(migrations, [], options);
  return { ...planMigrations(migrations, adoptedRows(adoption), options), adoption };
}

/** Applies pending migrations. Throws only for problems found before anything ran. */
export async function migrate(
  client: ClientBase,
  migrations: readonly Migration[],
  options: RunOptions & TakeOverOptions = {},
): Promise<RunResult> {
  return withMigrationLock(client, options, async () => {
    const plan = await readPlanAdopting(client, migrations, options);
    // Only what will run is parsed; any problem in it stops the run before the ledger is even created.
    await prepareScripts(plan.pending.map((p) => p.migration.up));
    if (options.role && !options.dryRun) await createDeclaredExtensions(client, plan.pending);
    let ownershipTaken: string[] | undefined;
    if (!options.dryRun && plan.adoption) ownershipTaken = await recordAdoption(client, plan.adoption, options);
    else if (!options.dryRun) await ensureLedger(client); // a dry run creates it in its own transaction
    const result = await new Executor(client, options).run(plan);
    return { ...result, adoption: plan.adoption, ownershipTaken };
  });
}

/**
 * `orion-db adopt`: records what another tool's ledger (or a proven baseline) says was applied, and
 * nothing else; with `dryRun`, only says what it would record. Refuses a database that already has
 * orion-db's ledger, or that has nothing to adopt.
 */
export async function adopt(
  client: ClientBase,
  migrations: readonly Migration[],
  options: RunOptions & TakeOverOptions = {},
): Promise<{ adoption: Adoption; ownershipTaken?: string[] }> {
  return withMigrationLock(client, options, async () => {
    if (await ledgerExists(client))
      throw new BadInputError(
        "this database already has orion-db's ledger (orion_schema_history): there is nothing to adopt",
      );
    const adoption = await findAdoption(client, migrations, options);
    if (!adoption)
      throw new BadInputError(
        'found no ledger of golang-migrate, dbmate, goose, Flyway, Prisma, Diesel, sqlx or node-pg-migrate in the current schema, and the database has no objects: "orion-db migrate" applies everything',
      );
    if (options.dryRun) return { adoption };
    return { adoption, ownershipTaken: await recordAdoption(client, adoption, options) };
  });
}

/**
 * The adopted rows and the ledger in one transaction, and — when migrations run as a role — the
 * ownership of the adopted objects given to that role, so the next migration may alter them.
 */
async function recordAdoption(
  client: ClientBase,
  adoption: Adoption,
  options: RunOptions,
): Promise<string[] | undefined> {
  await client.query('BEGIN');
  try {
    const entries = adoption.migrations.map(({ migration: m, appliedAt }) => ({
      version: m.version,
      label: m.label,
      name: m.name,
      checksum: m.checksum,
      downSql: m.down?.text ?? null,
      appliedAt,
    }));
    await insertAdopted(client, entries, adoption.from, options.deployId ?? null);
    const taken = options.role
      ? await takeOwnership(client, options.role, adoption.table ? [adoption.table] : [])
      : undefined;
    await client.query('COMMIT');
    return taken;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** Ledger rows standing for an adoption not recorded yet (a plan, a dry run). */
function adoptedRows(adoption: Adoption): LedgerRow[] {
  return adoption.migrations.map(({ migration: m, appliedAt }, i) => ({
    id: -BigInt(i + 1),
    version: m.version,
    label: m.label,
    name: m.name,
    status: 'applied',
    adoptedFrom: adoption.from,
    checksum: m.checksum,
    appliedAt: appliedAt ?? new Date(),
    executionMs: null,
    deployId: null,
    statementsDone: null,
  }));
}

/**
 * The extensions pending migrations declare (`-- orion:requires-extension NAME`), created first as the
 * connecting user when the migrations run as a role: the user may create what the role may not (on
 * RDS, the master — an rds_superuser — creates the extensions RDS allows that are not trusted; the
 * owner role, with CREATE on the database, only trusted ones). The migration's own
 * `CREATE EXTENSION IF NOT EXISTS` then finds it there.
 */
async function createDeclaredExtensions(client: ClientBase, pending: Plan['pending']): Promise<void> {
  for (const { migration } of pending) {
    for (const name of migration.up.directives.requiresExtensions) {
      try {
        await client.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(name)}`);
      } catch (err: any) {
        if (typeof err?.code !== 'string' || !/^[0-9A-Z]{5}$/.test(err.code)) throw err; // not the server's answer
        throw new BadInputError(
          `requires extension "${name}", which ${(await client.query('SELECT current_user AS u')).rows[0].u} ` +
            `may not create here (SQLSTATE ${err.code}: ${err.message}${err.hint ? `; ${err.hint}` : ''})`,
          { file: migration.up.file },
        );
      }
    }
  }
}

/**
 * Reverts applied versions above `to`, newest first, with the down scripts stored in the ledger —
 * so it works even when the files changed or are gone.
 */
export async function down(client: ClientBase, options: RunOptions & { to: bigint }): Promise<RunResult> {
  return revertWhere(client, options, (r) => r.version > options.to, `revert to ${options.to}`);
}

/** Reverts what one deploy applied (a stack rollback after a later resource failed). */
export async function revertDeploy(client: ClientBase, deployId: string, options: RunOptions = {}): Promise<RunResult> {
  return revertWhere(client, options, (r) => r.deployId === deployId, `revert deploy ${deployId}`);
}

async function revertWhere(
  client: ClientBase,
  options: RunOptions,
  select: (r: LedgerRow) => boolean,
  what: string,
): Promise<RunResult> {
  return withMigrationLock(client, options, async () => {
    const ledger = await readLedger(client); // no ledger, nothing to revert
    const applied = ledger.filter((r) => r.status === 'applied');
    const targets = applied.filter(select).sort((a, b) => (a.version > b.version ? -1 : 1));
    const downSql = await readDownScripts(
      client,
      targets.map((r) => r.id),
    );
    const missing = targets.filter((r) => !downSql.get(r.id));
    if (missing.length) {
      throw new NoDownScriptError(
        `cannot ${what}: no down script was stored for ${missing.map((r) => `${r.version} (${r.name})`).join(', ')}`,
        missing.map((r) => r.version),
      );
    }
    const scripts = targets.map((r) =>
      readScript(`${r.version}_${r.name}.down.sql (stored)`, Buffer.from(downSql.get(r.id)!, 'utf8')),
    );
    await prepareScripts(scripts);
    return new Executor(client, options).revert(applied, targets, scripts);
  });
}
