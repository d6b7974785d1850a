/**
 * status, plan, migrate and down: the engine against a database given by URL.
 */

import { resolve } from 'node:path';
import type { Client } from 'pg';
import { planBatches } from '../../lambda/engine/batches';
import { connect } from '../../lambda/engine/db';
import { BadInputError, OrionError } from '../../lambda/engine/errors';
import { loadMigrations, type Migration, prepareScripts } from '../../lambda/engine/files';
import { readLedger } from '../../lambda/engine/ledger';
import { down, migrate, type RunEvent, readPlan } from '../../lambda/engine/migrate';
import { planMigrations } from '../../lambda/engine/plan';
import {
  addError,
  applyRunResult,
  emptyReport,
  type Report,
  splitReport,
  versionString,
} from '../../lambda/engine/report';
import { loadParser } from '../../lambda/engine/sql';
import { type CommandContext, setExitCode } from '../context';
import { migrationRole } from './run-as';

/**
 * The folder and a connection. The connection (and, when SQL may be parsed, the parser) are started
 * first, so the server's and the WebAssembly compiler's work overlaps the reading of the files; a
 * problem in the files is still what gets reported first.
 */
async function open(
  ctx: CommandContext,
  { mayParse = false } = {},
): Promise<{ migrations: Migration[]; client: Client }> {
  const { options } = ctx;
  const connecting = options.databaseUrl
    ? connect(options.databaseUrl, { applicationName: `orion-db ${options.command}` })
    : undefined;
  connecting?.catch(() => {}); // awaited below, once the files are known to be good
  if (mayParse) loadParser().catch(() => {}); // a load failure is reported where the parser is awaited
  let migrations: Migration[];
  try {
    // Parsed later, and only what will run.
    migrations = await loadMigrations(resolve(options.cwd, options.migrationsDir), { parse: false });
  } catch (err) {
    void connecting?.then((c) => c.end()).catch(() => {});
    throw err;
  }
  if (!connecting) {
    throw new BadInputError(
      'no database given: pass --database-url URL or set DATABASE_URL (or run "orion-db up" for the embedded database)',
    );
  }
  return { migrations, client: await connecting };
}

/**
 * What the ledger says, and what is pending. An edited or missing file does not hide the ledger:
 * status is what the on-call engineer runs first, so it reports the problem beside the state (exit 2).
 */
export async function status(ctx: CommandContext): Promise<Report> {
  const { migrations, client } = await open(ctx);
  try {
    const ledger = await readLedger(client);
    const report = emptyReport(ctx.options.command);
    const applied = ledger.filter((r) => r.status === 'applied');
    const appliedVersions = new Set(applied.map((r) => r.version));
    let pending = migrations.filter((m) => !appliedVersions.has(m.version));
    try {
      pending = planMigrations(migrations, ledger, { allowOutOfOrder: true }).pending.map((p) => p.migration);
    } catch (err) {
      if (!(err instanceof OrionError)) throw err;
      addError(report, err);
      setExitCode(report, err.exitCode);
    }
    const current = applied.at(-1)?.version ?? null;
    report.from_version = report.to_version = versionString(current);
    report.applied = applied.map((r) => ({ version: r.version.toString(), name: r.name, ms: r.executionMs ?? 0 }));
    report.pending = pending.map((m) => ({ version: m.version.toString(), name: m.name }));
    report.incomplete = ledger
      .filter((r) => r.status === 'incomplete')
      .map((r) => ({ version: r.version.toString(), name: r.name, statements_done: r.statementsDone ?? 0 }));
    return report;
  } finally {
    await client.end();
  }
}

export async function plan(ctx: CommandContext): Promise<Report> {
  const { migrations, client } = await open(ctx, { mayParse: true });
  try {
    const result = await readPlan(client, migrations, {
      allowOutOfOrder: ctx.options.allowOutOfOrder,
      to: ctx.options.to,
    });
    await prepareScripts(result.pending.map((p) => p.migration.up));
    const batches = planBatches(result.pending);
    const report = emptyReport('plan');
    report.from_version = versionString(result.currentVersion);
    report.to_version = versionString(result.pending.at(-1)?.migration.version ?? result.currentVersion);
    report.pending = result.pending.map((p) => ({ version: p.migration.version.toString(), name: p.migration.name }));
    report.steps = batches.flatMap((b, i) =>
      b.migrations.map((p) => ({
        version: p.migration.version.toString(),
        file: p.migration.up.file,
        batch: i + 1,
        transaction: !p.migration.up.directives.noTransaction,
        statements: p.migration.up.statements.length,
        resume_from: p.resumeFrom || undefined,
      })),
    );
    report.batch_splits = batches.flatMap((b) => (b.split ? [splitReport(b.split)] : []));
    return report;
  } finally {
    await client.end();
  }
}

export async function runMigrate(ctx: CommandContext): Promise<Report> {
  const { migrations, client } = await open(ctx, { mayParse: true });
  try {
    const o = ctx.options;
    const role = await migrationRole(client, o, ctx.progress);
    const result = await migrate(client, migrations, {
      role,
      to: o.to,
      dryRun: o.dryRun,
      allowOutOfOrder: o.allowOutOfOrder,
      lockWaitMs: o.lockWaitMs,
      onEvent: progressPrinter(ctx.progress, o.dryRun),
    });
    return applyRunResult(emptyReport('migrate'), result);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function runDown(ctx: CommandContext): Promise<Report> {
  const { client } = await open(ctx); // the folder is validated, but down uses the scripts stored at apply time
  try {
    const o = ctx.options;
    const role = await migrationRole(client, o, ctx.progress);
    const result = await down(client, {
      role,
      to: o.to!,
      dryRun: o.dryRun,
      lockWaitMs: o.lockWaitMs,
      onEvent: progressPrinter(ctx.progress, o.dryRun),
    });
    const report = applyRunResult(emptyReport('down'), result);
    report.reverted = report.applied;
    return report;
  } finally {
    await client.end().catch(() => {});
  }
}

/** Progress lines; a dry run says what it would do, since nothing it ran stays. */
export function progressPrinter(print: (line: string) => void, dryRun = false): (e: RunEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'lock-wait':
        print(
          `waiting for the migration lock${e.holder ? ` held by pid ${e.holder.pid} (${e.holder.applicationName})` : ''}…`,
        );
        break;
      case 'applied':
        print(`${dryRun ? 'would apply' : 'applied'} ${e.version} ${e.name} (${e.ms} ms)`);
        break;
      case 'reverted':
        print(`${dryRun ? 'would revert' : 'reverted'} ${e.version} ${e.name} (${e.ms} ms)`);
        break;
      case 'batch-split':
        print(
          `${dryRun ? 'would commit' : 'committed'} after ${e.split.after}, before ${e.split.before}: ${e.split.reason}`,
        );
        break;
      case 'retry':
        // The reason says what failed: a lock timeout (retried after a backoff), or a batch that ran again.
        print(`retry ${e.attempt}${e.delayMs ? ` in ${e.delayMs} ms` : ''}: ${e.reason}`);
        break;
      case 'cleanup':
        print(`cleaning up after an earlier failed attempt of ${e.version}: ${e.sql}`);
        break;
      case 'failed':
        print(`FAILED ${e.error.message}`);
        break;
    }
  };
}
