/**
 * Applying and reverting migrations: under the migration lock, plan from the ledger, parse what
 * will run, then hand it to the executor. Pending transactional migrations run as one atomic batch
 * with their ledger rows; a non-transactional migration runs alone, recording its progress so a
 * re-run resumes it.
 */
import type { ClientBase } from 'pg';
import { quoteIdent } from './db';
import { BadInputError, NoDownScriptError } from './errors';
import { Executor, type RunOptions, type RunResult } from './executor';
import { type Migration, prepareScripts, readScript } from './files';
import { ensureLedger, type LedgerRow, readDownScripts, readLedger } from './ledger';
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

/** Applies pending migrations. Throws only for problems found before anything ran. */
export async function migrate(
  client: ClientBase,
  migrations: readonly Migration[],
  options: RunOptions = {},
): Promise<RunResult> {
  return withMigrationLock(client, options, async () => {
    const plan = await readPlan(client, migrations, options);
    // Only what will run is parsed; any problem in it stops the run before the ledger is even created.
    await prepareScripts(plan.pending.map((p) => p.migration.up));
    if (options.role && !options.dryRun) await createDeclaredExtensions(client, plan.pending);
    if (!options.dryRun) await ensureLedger(client); // a dry run creates it in its own transaction
    return new Executor(client, options).run(plan);
  });
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
