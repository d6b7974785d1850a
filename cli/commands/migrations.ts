/**
 * status, plan, migrate and down: the engine against a database given by URL.
 */

import { resolve } from 'node:path';
import type { Client } from 'pg';
import type { TakeOverOptions } from '../../lambda/engine/adopt';
import { planBatches } from '../../lambda/engine/batches';
import { connect, isUnreachable, withDatabase } from '../../lambda/engine/db';
import { BadInputError, OrionError } from '../../lambda/engine/errors';
import { type Migration, prepareScripts, readMigrations } from '../../lambda/engine/files';
import type { LayoutName } from '../../lambda/engine/layouts';
import { readLastFailure, readLedger } from '../../lambda/engine/ledger';
import { adopt, down, migrate, type RunEvent, readPlan, readPlanAdopting } from '../../lambda/engine/migrate';
import { planMigrations } from '../../lambda/engine/plan';
import {
  addError,
  adoptionReport,
  applyRunResult,
  emptyReport,
  labelVersions,
  type Report,
  splitReport,
  versionString,
} from '../../lambda/engine/report';
import { loadParser } from '../../lambda/engine/sql';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import { type CommandContext, setExitCode } from '../context';
import { warnAboutLint } from '../lint-warnings';
import { localDatabase, STATE_DIR } from '../local-database';
import { migrationRole } from './run-as';

/**
 * The folder and a connection. The connection (and, when SQL may be parsed, the parser) are started
 * first, so the server's and the WebAssembly compiler's work overlaps the reading of the files; a
 * problem in the files is still what gets reported first.
 */
async function open(
  ctx: CommandContext,
  { mayParse = false } = {},
): Promise<{ migrations: Migration[]; client: Client; layout: LayoutName; url: string }> {
  const { options } = ctx;
  // No URL given: the local server npm start left running, as its admin user.
  const local = options.databaseUrl ? undefined : await localDatabase(options.cwd);
  const url = options.databaseUrl ?? local?.url;
  const connecting = url ? connect(url, { applicationName: `orion-db ${options.command}` }) : undefined;
  connecting?.catch(() => {}); // awaited below, once the files are known to be good
  if (mayParse) loadParser().catch(() => {}); // a load failure is reported where the parser is awaited
  let migrations: Migration[];
  let layout: LayoutName;
  try {
    // Parsed later, and only what will run.
    ({ migrations, layout } = await readMigrations(resolve(options.cwd, options.migrationsDir), {
      parse: false,
      format: options.format,
    }));
  } catch (err) {
    void connecting?.then((c) => c.end()).catch(() => {});
    throw err;
  }
  if (!connecting) {
    throw new BadInputError(
      'no database given: pass --database-url URL or set DATABASE_URL, or start the local server with "npm start" ' +
        '(orion-db up), which these commands then use',
    );
  }
  if (!local) return { migrations, layout, url: url!, client: await connecting };
  let client: Client;
  try {
    client = await connecting;
  } catch (err) {
    if (!isUnreachable(err)) throw err;
    throw new BadInputError(
      `no database given, and the local server in ${STATE_DIR}/ (${local.shown}) is not running: ` +
        'start it with "npm start" (orion-db up), or pass --database-url URL or set DATABASE_URL',
    );
  }
  ctx.progress(`using the local server in ${STATE_DIR}/: ${local.shown} (password in ${STATE_DIR}/secrets.json)`);
  return { migrations, layout, url: url!, client };
}

/**
 * The application role's URL (the one "npm start" prints first) may not read the ledger: say which
 * URL to use instead of the server's bare "permission denied for table orion_schema_history".
 */
function explainLedgerDenied(err: unknown, user: string | undefined): unknown {
  const e = err as { code?: string; message?: string };
  if (e?.code !== '42501' || !e.message?.includes('orion_schema_history')) return err;
  const who = user?.startsWith(DEFAULT_ROLES.app) ? `${user} is the application role, which` : `${user ?? 'this user'}`;
  return new BadInputError(
    `${who} may not read the ledger (orion_schema_history): use the admin URL instead ` +
      '(locally "npm start" prints it, password in .orion/secrets.json; or give no URL to use the local server)',
  );
}

/**
 * What the ledger says, and what is pending. An edited or missing file does not hide the ledger:
 * status is what the on-call engineer runs first, so it reports the problem beside the state (exit 2).
 */
export async function status(ctx: CommandContext): Promise<Report> {
  const { migrations, client, layout } = await open(ctx);
  try {
    const ledger = await readLedger(client);
    const report = emptyReport(ctx.options.command);
    report.layout = layout;
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
    // The last failed attempt, unless its version has been applied since: why the pending are pending.
    const failure = await readLastFailure(client);
    if (failure && !appliedVersions.has(failure.version)) {
      report.last_failure = {
        version: failure.version.toString(),
        name: failure.name,
        file: migrations.find((m) => m.version === failure.version)?.up.file,
        line: failure.line ?? undefined,
        at: failure.at.toISOString(),
        sqlstate: failure.sqlstate ?? undefined,
        message: failure.message,
      };
    }
    return labelVersions(report, migrations);
  } catch (err) {
    throw explainLedgerDenied(err, client.user);
  } finally {
    await client.end();
  }
}

export async function plan(ctx: CommandContext): Promise<Report> {
  const { migrations, client, layout, url } = await open(ctx, { mayParse: true });
  try {
    const result = await readPlanAdopting(client, migrations, {
      allowOutOfOrder: ctx.options.allowOutOfOrder,
      to: ctx.options.to,
      adoptFrom: ctx.options.adoptFrom,
      ...baselineOptions(ctx, client, url),
    });
    await prepareScripts(result.pending.map((p) => p.migration.up));
    const batches = planBatches(result.pending);
    const report = emptyReport('plan');
    report.layout = layout;
    if (result.adoption) report.adopted = adoptionReport(result.adoption, true);
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
    return labelVersions(report, migrations);
  } catch (err) {
    throw explainLedgerDenied(err, client.user);
  } finally {
    await client.end();
  }
}

export async function runMigrate(ctx: CommandContext): Promise<Report> {
  const { migrations, client, layout, url } = await open(ctx, { mayParse: true });
  try {
    const o = ctx.options;
    const pending = (await readPlan(client, migrations, { allowOutOfOrder: o.allowOutOfOrder, to: o.to })).pending;
    // Linted beside the run (squawk on the other core), told as soon as known: warnings, never a stop.
    const linting = warnAboutLint(resolve(o.cwd, o.migrationsDir), { pending, all: migrations }, ctx.progress);
    let result: Awaited<ReturnType<typeof migrate>>;
    try {
      const role = await migrationRole(client, o, ctx.progress);
      result = await migrate(client, migrations, {
        role,
        ...baselineOptions(ctx, client, url),
        to: o.to,
        dryRun: o.dryRun,
        allowOutOfOrder: o.allowOutOfOrder,
        lockWaitMs: o.lockWaitMs,
        onEvent: progressPrinter(ctx.progress, o.dryRun),
      });
    } finally {
      await linting;
    }
    const report = emptyReport('migrate');
    report.layout = layout;
    return labelVersions(applyRunResult(report, result), migrations);
  } catch (err) {
    throw explainLedgerDenied(err, client.user);
  } finally {
    await client.end().catch(() => {});
  }
}

/** `orion-db adopt`: record what another tool's ledger says was applied; apply nothing. */
export async function runAdopt(ctx: CommandContext): Promise<Report> {
  const { migrations, client, layout, url } = await open(ctx);
  try {
    const o = ctx.options;
    const role = o.dryRun ? undefined : await migrationRole(client, o, ctx.progress);
    const { adoption, ownershipTaken } = await adopt(client, migrations, {
      role,
      adoptFrom: o.adoptFrom,
      ...baselineOptions(ctx, client, url),
      dryRun: o.dryRun,
      lockWaitMs: o.lockWaitMs,
      deployId: `adopt-${new Date().toISOString()}`,
    });
    const report = emptyReport('adopt');
    report.layout = layout;
    report.dry_run = o.dryRun || undefined;
    report.adopted = adoptionReport(adoption, o.dryRun);
    if (ownershipTaken?.length) report.ownership_taken = ownershipTaken;
    const last = adoption.migrations.at(-1)?.migration;
    report.from_version = null;
    report.to_version = o.dryRun ? null : (last?.version.toString() ?? null);
    const adopted = new Set(adoption.migrations.map((a) => a.migration.version));
    report.pending = migrations
      .filter((m) => !adopted.has(m.version))
      .map((m) => ({ version: m.version.toString(), name: m.name }));
    return labelVersions(report, migrations);
  } finally {
    await client.end().catch(() => {});
  }
}

export async function runDown(ctx: CommandContext): Promise<Report> {
  const { migrations, client } = await open(ctx); // down runs the scripts stored at apply time, not the files
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
    // Pending as status counts it: every file of the folder not applied now, the reverted ones included.
    if (!o.dryRun && !result.error) {
      const applied = new Set((await readLedger(client)).filter((r) => r.status === 'applied').map((r) => r.version));
      report.pending = migrations
        .filter((m) => !applied.has(m.version))
        .map((m) => ({ version: m.version.toString(), name: m.name }));
    }
    return labelVersions(report, migrations);
  } catch (err) {
    throw explainLedgerDenied(err, client.user);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * `--baseline V`: the live schema is compared with the migrations up to V replayed into a scratch
 * database on the same server (the connecting user needs CREATEDB, as the master has).
 */
function baselineOptions(ctx: CommandContext, client: Client, databaseUrl: string): TakeOverOptions {
  const { baseline, migrationsDir, cwd } = ctx.options;
  if (baseline === undefined) return {};
  return {
    baseline,
    compareBaseline: async (upTo) => {
      // Loaded here: the drift engine is a fifth of the CLI, and only a baseline proof needs it.
      const [{ baselineComparer }, { loadExceptions }] = await Promise.all([
        import('../../lambda/engine/adopt/compare'),
        import('../../lambda/engine/drift'),
      ]);
      return baselineComparer({
        client,
        connectReference: (database) =>
          connect(database ? withDatabase(databaseUrl, database) : databaseUrl, {
            applicationName: 'orion-db baseline',
          }),
        exceptions: await loadExceptions(resolve(cwd, migrationsDir)),
        log: ctx.progress,
      })(upTo);
    },
  };
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
