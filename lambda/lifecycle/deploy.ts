/**
 * The deploy lifecycle, written once for the Lambda and `orion-db up`:
 * pre-checks → bootstrap → plan → snapshot → migrate → lockdown and its probe as the app role, and restore on failure.
 *
 * Re-entrant: it derives where it is from durable facts (the ledger, the snapshot port), so a caller
 * that gets `waiting` (a snapshot still being taken) simply calls it again later.
 */
import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import type { TakeOverOptions } from '../engine/adopt';
import { baselineComparer } from '../engine/adopt/compare';
import { planBatches } from '../engine/batches';
import {
  closeQuietly,
  type connect,
  connectWhenReachable,
  sessionEndedByServer,
  withDatabase,
  withUser,
} from '../engine/db';
import {
  asServerError,
  BadInputError,
  LockTimeoutError,
  MigrationFailedError,
  OutcomeUnknownError,
  PostconditionFailedError,
  ServerError,
} from '../engine/errors';
import { type loadMigrations, type Migration, prepareScripts, readMigrations } from '../engine/files';
import { validateIdentifier } from '../engine/identifiers';
import type { LayoutName } from '../engine/layouts';
import { readLedger } from '../engine/ledger';
import {
  applicationSchemas,
  type LockdownOptions,
  type LockdownRoles,
  lockdown,
  probeAppRole,
} from '../engine/lockdown';
import {
  migrate,
  type RunOptions,
  type RunResult,
  readPlan,
  readPlanAdopting,
  withMigrationLock,
} from '../engine/migrate';
import { maxVersion } from '../engine/plan';
import { addError, applyRunResult, emptyReport, type Report, versionString } from '../engine/report';
import { applicationTables, boundedRowCounts } from '../engine/row-counts';
import { AfterCommitError, type AfterCommitState } from './after-commit';
import { appLoginIsManaged, bootstrap, bootstrapSchema, precheck } from './bootstrap';
import { type DeployDriftOptions, type DriftPolicy, driftAfterApplying, driftBeforeApplying } from './drift';
import { describeSessionEnd, endIfStillRunning, endOldSession, serverSession, sessionEnd } from './failover';
import type { SecretsPort, SnapshotPort } from './ports';

export interface DeployConfig {
  /** The server, without credentials: `postgres://host:port/?sslmode=require`. */
  readonly serverUrl: string;
  readonly roles: LockdownRoles;
  readonly migrationsDir: string;
  /** Identifies this deploy: in the ledger, and in the snapshot's name. */
  readonly deployId: string;
  /** Snapshot ids start with `<prefix>-pre-`; letters, digits and single hyphens. */
  readonly snapshotPrefix: string;
  /** Pre-migration snapshots to keep. @default 5 */
  readonly snapshotRetention?: number;
  /**
   * When to take the pre-migration snapshot: whenever something is pending, or only when a pending
   * migration runs outside a transaction (a failure of a transactional batch rolls back whole, so
   * it needs none). @default 'pending'
   */
  readonly snapshotWhen?: 'pending' | 'non-transactional';
  /**
   * Set the application's password from the secrets port on every run. Without it, the connection
   * probe as the application is skipped (its password is not known), and the report says so.
   * @default true
   */
  readonly setAppPassword?: boolean;
  /**
   * Apply pending migrations. A stack rollback runs with false: it never applies anything, whatever
   * the function's bundle carries (during a rollback, still the new migrations). @default true
   */
  readonly applyPending?: boolean;
  readonly run?: Pick<
    RunOptions,
    'lockWaitMs' | 'maxStatementTimeoutMs' | 'deadlineAt' | 'onEvent' | 'defaultLockTimeoutMs'
  >;
  /** Progress for people or logs. */
  readonly log?: (message: string) => void;
  /**
   * How long a connection keeps being tried while the server is unreachable (DNS, refused, timeout):
   * after an RDS restore-by-rename the endpoint's name takes minutes to resolve again. @default 0
   */
  readonly connectRetryMs?: number;
  /**
   * For a database built by hand (tables, no ledger): the version of the migrations folder its schema
   * is at (the CDK's `baselineVersion`). Its schema is proven equal to what the migrations up to it
   * make, they are recorded as adopted, and the rest are applied. Ignored once the ledger exists.
   * @default - a database with tables and no ledger (and no other tool's) is refused
   */
  readonly baseline?: string;
  /**
   * Drift (orion-db drift) before applying and after: 'fail' stops a deploy that finds the database
   * changed by hand, before anything is applied, and fails one whose result differs from the replay of
   * its migrations; 'warn' reports both in the report's `drift` section; 'off' skips both (each check
   * replays the migrations into a scratch database). @default 'off'
   */
  readonly driftPolicy?: DriftPolicy;
  /**
   * How long a reconnect after the migration's session ended waits for the server to answer again
   * (a reboot or failover), within the deadline. @default 120 000 ms
   */
  readonly reconnectWaitMs?: number;
  /**
   * How long a query may get no answer at all before its connection is taken for dead (a silent socket).
   * @default - the deadline's time left plus 15 s; none without a deadline
   */
  readonly queryTimeoutMs?: number;
  /** The migrations folder's layout. @default - detected from the folder */
  readonly format?: LayoutName;
}

export interface DeployPorts {
  readonly snapshots: SnapshotPort;
  readonly secrets: SecretsPort;
}

export type DeployOutcome =
  | { readonly status: 'complete'; readonly report: Report }
  | { readonly status: 'waiting'; readonly reason: string; readonly report: Report };

/** How long a reconnect after a lost session waits for the server (an RDS failover takes 1-2 minutes). */
const RECONNECT_WAIT_MS = 120_000;

/** Below this much time left before the deadline, a lost run is not resumed: the next deploy does it. */
const RESUME_FLOOR_MS = 20_000;
/** The longest wait for the old session to go once told to (bounded by the time left too). */
const END_OLD_SESSION_WAIT_MS = 30_000;

/** How long past a statement's cap a connection may stay silent before it is taken for dead. */
const QUERY_SILENCE_MS = 15_000;

const PREFIX = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$/;

/** Deterministic: re-running the same deploy finds the same snapshot. Valid as an RDS identifier. */
export function snapshotId(prefix: string, deployId: string): string {
  if (!PREFIX.test(prefix) || prefix.length > 60)
    throw new BadInputError(
      `snapshot prefix "${prefix}" must be lower-case letters, digits and single hyphens, starting with a letter`,
    );
  const slug = deployId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/, '');
  const hash = createHash('sha256').update(deployId).digest('hex').slice(0, 8);
  return `${prefix}-pre-${slug ? `${slug}-` : ''}${hash}`;
}

export async function runDeploy(ports: DeployPorts, config: DeployConfig): Promise<DeployOutcome> {
  // A server error no step expected (the ledger unreadable, say) is still one sentence with its SQLSTATE.
  return deploy(ports, config).catch((err) => {
    throw asServerError('deploy', err);
  });
}

async function deploy(ports: DeployPorts, config: DeployConfig): Promise<DeployOutcome> {
  const log = config.log ?? (() => {});
  const roles = validateRoles(config.roles);
  const report = emptyReport('up');
  const id = snapshotId(config.snapshotPrefix, config.deployId);
  const { layout, migrations } = await readMigrations(config.migrationsDir, { parse: false, format: config.format });
  report.layout = layout;
  const master = await ports.secrets.master();
  const app = await ports.secrets.app();
  const deadline = config.run?.deadlineAt;
  const as = (database: string, who = master, retry?: { retryForMs: number; intervalMs: number }) =>
    connectWhenReachable(withDatabase(withUser(config.serverUrl, who.username), database), {
      retryForMs: config.connectRetryMs ?? 0,
      ...retry,
      password: who.password,
      applicationName: `orion-db deploy ${config.deployId}`,
      // Past the deadline (every statement's cap) plus a margin, silence means the socket is dead.
      queryTimeoutMs:
        config.queryTimeoutMs ??
        (deadline === undefined ? undefined : Math.max(1_000, deadline - Date.now()) + QUERY_SILENCE_MS),
    });

  // Once something may have committed, a failure is never "nothing was changed": it says where the
  // database is (from the ledger) and what was or was not restored.
  const progress: Progress = { committed: false, step: 'the deploy', restore: 'none' };
  const readVersion = async () => {
    const c = await connectWhenReachable(withDatabase(withUser(config.serverUrl, master.username), roles.database), {
      retryForMs: 0,
      password: master.password,
      applicationName: `orion-db deploy ${config.deployId}`,
    });
    try {
      return versionString((await readPlan(c, migrations, { allowOutOfOrder: true })).currentVersion);
    } finally {
      await c.end().catch(() => {});
    }
  };
  const afterCommit = async (err: unknown): Promise<never> => {
    if (!progress.committed || err instanceof OutcomeUnknownError || err instanceof AfterCommitError) throw err;
    if (err instanceof LockTimeoutError) throw err; // the next poll takes it up where it stopped
    const to = await readVersion().catch(() => undefined);
    const state: AfterCommitState = {
      from: report.from_version,
      to,
      restore: progress.restore,
      snapshot: report.snapshot,
      keptAs: progress.restore === 'none' ? undefined : ports.snapshots.keptAs(id),
    };
    const cause = asServerError(progress.step, err);
    throw new AfterCommitError(progress.step, cause instanceof Error ? cause.message : String(cause), state);
  };

  // A restore started by an earlier invocation of this deploy: finish it, report the failure again.
  const prior = await ports.snapshots.restoreStatus(id);
  if (prior.state !== 'none') {
    report.snapshot = id;
    progress.committed = true;
    progress.restore = 'started';
    return finishRestore(
      ports,
      config,
      report,
      id,
      prior.reason ?? 'a migration failed',
      as,
      migrations,
      progress,
    ).catch(afterCommit);
  }

  const setAppPassword = config.setAppPassword ?? true;
  let appLoginManaged = true;
  const admin = await as('postgres');
  try {
    report.server_version = await precheck(admin, migrations);
    const appPasswordWorks = async () => {
      // The application's own login with the secret: when it works, its password is not written again.
      const c = await connectWhenReachable(withDatabase(withUser(config.serverUrl, app.username), roles.database), {
        retryForMs: 0,
        password: app.password,
        applicationName: `orion-db deploy ${config.deployId}`,
      });
      await c.end().catch(() => {});
      return true;
    };
    report.bootstrap = await bootstrap(admin, roles, app, { setAppPassword, appPasswordWorks }).catch((err) => {
      throw asServerError('bootstrap', err);
    });
    // A login that existed before this stack keeps its own password, so it cannot be probed with the secret.
    appLoginManaged = await appLoginIsManaged(admin, app.username);
  } finally {
    await admin.end();
  }

  let target = await as(roles.database);
  try {
    await bootstrapSchema(target, roles).catch((err) => {
      throw asServerError('bootstrap', err);
    });
    // Taking over a database without the ledger (adopt/): another tool's ledger, or a hand-built schema
    // proven equal to the migrations up to the baseline by a replay on this server.
    const takeOver = (client: Client): TakeOverOptions => ({
      baseline: config.baseline,
      compareBaseline:
        config.baseline === undefined
          ? undefined
          : baselineComparer({ client, connectReference: (database) => as(database ?? 'postgres'), log }),
    });
    // A stack rollback (applyPending false) neither applies nor adopts: it must not fail on a database
    // it could not take over.
    let plan =
      config.applyPending === false
        ? await readPlan(target, migrations, { allowMissingFiles: true })
        : await readPlanAdopting(target, migrations, takeOver(target));
    if (config.applyPending === false && plan.pending.length > 0) {
      note(report, `${plan.pending.length} pending migration(s) left unapplied: this run only re-asserts the lockdown`);
      plan = { ...plan, pending: [] };
    }
    await prepareScripts(plan.pending.map((p) => p.migration.up));
    report.from_version = report.to_version = versionString(plan.currentVersion);
    const drift = (client: Client): DeployDriftOptions => ({
      client,
      connect: (database) => as(database ?? roles.database),
      migrations,
      migrationsDir: config.migrationsDir,
      roles,
      policy: config.driftPolicy ?? 'off',
      lockWaitMs: config.run?.lockWaitMs,
      log,
    });
    // One transactional batch rolls back whole on failure: a snapshot adds nothing to that, nor to an
    // empty database.
    const batches = planBatches(plan.pending);
    const oneBatch = batches.length <= 1 && !batches[0]?.migrations[0].migration.up.directives.noTransaction;
    const empty = (await applicationTables(target)).length === 0;
    const snapshot = config.snapshotWhen !== 'non-transactional' || (!oneBatch && !empty);
    if (plan.pending.length > 0 && !snapshot) {
      note(
        report,
        oneBatch
          ? 'no backup taken: the pending migrations run in one transaction, so a failure rolls back whole'
          : 'no backup taken: the database has no tables yet',
      );
    }
    if (plan.pending.length > 0 && snapshot) {
      report.snapshot = id;
      await target.end(); // a local snapshot copies the database, which needs it to be idle
      const state = await ports.snapshots
        .ensure(id, {
          'orion:deploy-id': config.deployId,
          'orion:from-version': versionString(plan.currentVersion) ?? 'none',
          'orion:to-version': plan.pending.at(-1)!.migration.version.toString(),
        })
        .catch((err) => {
          throw asServerError('snapshot', err);
        });
      if (state === 'creating') return { status: 'waiting', reason: `snapshot ${id} is being created`, report };
      log(`snapshot ${id} is available`);
      target = await as(roles.database);
    }
    // After the snapshot is there, so a poll that only waits for it replays nothing (the replay builds a
    // scratch database from the whole history). An adoption has no ledger to replay yet: its baseline was
    // proven by the same comparison, and a foreign ledger's history is the other tool's word.
    const mayStop = plan.pending.length > 0;
    if (
      !plan.adoption &&
      (await driftBeforeApplying(report, { ...drift(target), applied: plan.applied.length, mayStop }))
    )
      return { status: 'complete', report };
    // Counted once the snapshot is there: a poll while it is being taken scans no table.
    const counts: Record<string, unknown> = {};
    report.row_counts = counts;
    counts.before = await readableRowCounts(target, report);
    if (plan.pending.length > 0 || plan.adoption) {
      const runOptions: RunOptions & TakeOverOptions = {
        ...config.run,
        ...takeOver(target),
        deployId: config.deployId,
        role: roles.owner,
      };
      progress.step = 'the migration';
      const session = await serverSession(target);
      let result = await migrate(target, migrations, runOptions);
      progress.committed = true;
      if (result.error && (result.connectionLost || result.endedByServer)) {
        const lost = result.error.message;
        // Ended between two queries, the server's word came as an event, and the query after it lost the connection.
        const endedByServer = result.endedByServer || sessionEndedByServer(target);
        log(`the migration's session ended (${lost}); reconnecting to see whether the server restarted`);
        await closeQuietly(target); // a silent socket never answers a polite end
        // Bounded: a failing-over or rebooting server answers again within a minute or two.
        const waitMs = Math.min(config.reconnectWaitMs ?? RECONNECT_WAIT_MS, (deadline ?? Infinity) - Date.now());
        const reconnect = () => as(roles.database, master, { retryForMs: Math.max(0, waitMs), intervalMs: 1_000 });
        target = await reconnect().catch((err) => {
          throw outcomeUnknown(`${lost}; reconnecting: ${err.message}`);
        });
        const now = await serverSession(target);
        const end = sessionEnd(session, now, endedByServer);
        let said = describeSessionEnd(end, session, now);
        report.session_ended = { cause: end, error: lost, server_before: session, server_after: now };
        if (end === 'operator') {
          log(said);
          result = await operatorEnded(target, result, config.deployId, said);
        } else {
          const left = () => (deadline ?? Number.POSITIVE_INFINITY) - Date.now();
          // Waiting for the old session to go is bounded by the time left too.
          const endWaitMs = Math.max(1_000, Math.min(END_OLD_SESSION_WAIT_MS, left()));
          // Resuming is safe either way because the ledger is transactional: a batch's ledger rows commit
          // with it, so they say exactly what committed. After a restart the old session is gone; after
          // a network fault it may still run behind the dead socket (holding the migration lock and an
          // open transaction), so it is ended first: its transaction rolls back, or committed with its rows.
          const doubt = result.inDoubt;
          if (doubt && !(await endIfStillRunning(target, session, doubt.sql, endWaitMs)))
            throw outcomeUnknown(
              `${lost}; ${doubt.file}:${doubt.line} (${firstLine(doubt.sql)}) runs outside a transaction and may have ` +
                'finished before its progress was recorded: not run again blindly',
            );
          if (end === 'network')
            said = describeSessionEnd(end, session, now, await endOldSession(target, session, endWaitMs));
          log(said);
          if (left() < RESUME_FLOOR_MS)
            throw outcomeUnknown(
              `${lost}; ${end === 'restart' ? 'the server restarted' : 'the connection was lost (the server did not restart)'}; ` +
                `${Math.max(0, Math.round(left() / 1000))} s left before the deadline, too little to resume: the ledger has it; the next deploy resumes`,
            );
          note(report, said);
          result = await rerun(target, migrations, { ...runOptions, ...takeOver(target) }, result, reconnect);
        }
      }
      applyRunResult(report, result);
      if (result.error) {
        if (!result.partiallyApplied) {
          log(`migration failed; the database is unchanged at version ${versionString(result.fromVersion) ?? 'none'}`);
          return { status: 'complete', report };
        }
        if (!snapshot) {
          // A batch split the plan did not foresee (55P04) committed part of the run, with no backup to restore.
          note(report, 'no backup was taken: the database stays at the version it reached; fix forward');
          return { status: 'complete', report };
        }
        await target.end();
        log(`migration failed after changes were committed; restoring snapshot ${id}`);
        return await finishRestore(ports, config, report, id, result.error.message, as, migrations, progress);
      }
      if (snapshot && plan.pending.length > 0) await pruneSnapshots(ports.snapshots, config, id, report, log);
    }

    progress.step = 'the lockdown';
    await lockdownAndProbe(report, target, roles, {
      lockTimeoutMs: config.run?.defaultLockTimeoutMs,
      lockWaitMs: config.run?.lockWaitMs,
      connectAsApp: setAppPassword && appLoginManaged ? () => as(roles.database, app) : undefined,
    });
    if (report.ok) await driftAfterApplying(report, drift(target));
    if (!report.ok) {
      // The lockdown's connection may be the one that failed: the ledger is read on a new one.
      const version = await readPlan(target, migrations, { allowOutOfOrder: true })
        .then((p) => versionString(p.currentVersion))
        .catch(() => readVersion())
        .catch(() => undefined);
      if (version !== undefined) report.to_version = version;
      else note(report, 'the version after this deploy could not be read from the ledger');
    }
    // Counts are for the report: one that cannot be read is said so, never a failed deploy.
    try {
      (report.row_counts as Record<string, unknown>).after = await readableRowCounts(target, report);
    } catch (err) {
      note(report, `row counts after the deploy could not be read: ${(err as Error)?.message ?? err}`);
    }
    return { status: 'complete', report };
  } catch (err) {
    // Awaited here: a rejected promise returned from a try with an awaiting finally is "unhandled" meanwhile.
    return await afterCommit(err);
  } finally {
    await target.end().catch(() => {});
  }
}

/**
 * The lockdown, its read-back and the probe as the application. A failure here comes after the
 * migrations committed: it goes into the report (one sentence with its SQLSTATE), never thrown.
 */
async function lockdownAndProbe(
  report: Report,
  target: Client,
  roles: LockdownRoles,
  options: LockdownOptions & { connectAsApp?: () => Promise<Client>; lockWaitMs?: number },
): Promise<void> {
  const { connectAsApp } = options;
  try {
    // Under the migration lock: a concurrent `orion-db` run changes nothing the lockdown just read.
    report.lockdown = await withMigrationLock(target, { lockWaitMs: options.lockWaitMs }, () =>
      lockdown(target, roles, options),
    );
    if (connectAsApp) {
      const appClient = await connectAsApp();
      try {
        const probes = await probeAppRole(appClient, roles.database, await applicationSchemas(target, roles.owner));
        report.lockdown = {
          ...report.lockdown,
          ok: report.lockdown.ok && probes.every((p) => p.ok),
          checks: [...report.lockdown.checks, ...probes],
        };
      } finally {
        await appClient.end();
      }
    } else {
      note(
        report,
        `no connection probe as ${roles.app}: its password is not the secret's to set here (catalog read-back only)`,
      );
    }
  } catch (err) {
    if (err instanceof LockTimeoutError) throw err; // held elsewhere: the next poll runs the lockdown
    // Whatever it was (the server's refusal, a lost connection), the migrations stay committed.
    const error = asServerError('lockdown', err);
    const message = error instanceof ServerError ? error.message : `lockdown failed: ${(err as Error)?.message ?? err}`;
    report.lockdown = {
      ok: false,
      checks: [{ name: 'the lockdown ran', ok: false, detail: message }],
      corrected: report.lockdown?.corrected ?? [],
    };
    addError(report, error instanceof ServerError ? error : { message });
    return;
  }
  if (!report.lockdown.ok) {
    addError(
      report,
      new PostconditionFailedError(
        report.lockdown.checks
          .filter((c) => !c.ok)
          .map((c) => `lockdown check failed: ${c.name}${c.detail ? ` (${c.detail})` : ''}`),
      ),
    );
  }
}

/**
 * Row counts of the application tables the master may read. Not being a superuser, it may not read a
 * table the application came to own by hand (drift, until the lockdown gives it back to the owner role).
 */
async function readableRowCounts(client: Client, report: Report): Promise<Record<string, number>> {
  const tables = await applicationTables(client);
  const { rows } = await client.query(
    `SELECT t FROM unnest($1::text[]) t WHERE has_table_privilege(format('public.%I', t), 'SELECT')`,
    [tables],
  );
  const { counts, estimated } = await boundedRowCounts(
    client,
    rows.map((r) => r.t),
  );
  // Which numbers are estimates (pg_class.reltuples), not counts: said, so nobody compares them as exact.
  const counted = report.row_counts as { estimated?: string[] } | undefined;
  if (estimated.length && counted)
    counted.estimated = [...new Set([...(counted.estimated ?? []), ...estimated])].sort();
  return counts;
}

/** Something a person should know about this run that is not an error. */
function note(report: Report, text: string): void {
  report.notes = [...((report.notes as string[] | undefined) ?? []), text];
}

function outcomeUnknown(what: string): OutcomeUnknownError {
  return new OutcomeUnknownError(
    `the connection to the database was lost during the migration (${what}): whether the last batch committed is unknown ` +
      'until the ledger can be read; the next deploy (or the stack rollback) reads it from there',
  );
}

/** A statement's first line, shortened, to name it in a message. */
function firstLine(sql: string): string {
  const line = sql.trim().split('\n')[0];
  return line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/**
 * The migration's session ended by an operator: not run again. The failure says so, and what this
 * deploy had committed before is read from the ledger (the session may have ended during a COMMIT).
 */
async function operatorEnded(client: Client, first: RunResult, deployId: string, said: string): Promise<RunResult> {
  const e = first.error!;
  const applied = await appliedBy(client, deployId);
  return {
    ...first,
    applied,
    toVersion: maxVersion(first.fromVersion, applied),
    // A non-transactional file's committed statements are not 'applied' rows: the executor counted them.
    partiallyApplied: first.partiallyApplied || applied.length > 0,
    // The server's own words: whether the batch committed is no longer a question, the ledger said.
    error: new MigrationFailedError(
      e.file,
      e.line,
      e.sqlstate,
      `${(e.cause as Error)?.message ?? e.serverMessage}: ${said}`,
      {
        cause: e.cause,
      },
    ),
  };
}

type LedgerRows = Awaited<ReturnType<typeof readLedger>>;

/** The ledger's rows of what this deploy applied. */
function appliedRows(rows: LedgerRows, deployId: string | undefined): LedgerRows {
  return rows.filter((r) => r.status === 'applied' && r.deployId === deployId);
}

/** What this deploy applied, as the ledger has it. */
async function appliedBy(client: Client, deployId: string | undefined) {
  return appliedRows(await readLedger(client), deployId).map((r) => ({
    version: r.version,
    name: r.name,
    ms: r.executionMs ?? 0,
  }));
}

/** What the ledger says this deploy applied, and which non-transactional file stopped where. */
function describeLedger(rows: LedgerRows, deployId: string | undefined): string {
  const applied = appliedRows(rows, deployId).map((r) => r.version);
  const incomplete = rows
    .filter((r) => r.status === 'incomplete')
    .map((r) => `${r.version} ${r.name} (${r.statementsDone ?? 0} statements recorded as done)`);
  return (
    `the ledger has this deploy's applied versions [${applied.join(', ')}]` +
    (incomplete.length ? ` and incomplete ${incomplete.join(', ')}` : '')
  );
}

/** The second run after a lost connection, reported as one run: what this deploy applied is read from the ledger. */
async function rerun(
  client: Client,
  migrations: Migration[],
  options: RunOptions,
  first: RunResult,
  reconnect: () => Promise<Client>,
): Promise<RunResult> {
  const second = await migrate(client, migrations, options);
  if (second.error && (second.connectionLost || second.endedByServer)) {
    // Resumed once only: a second failover (or an operator) ends it with the outcome unknown. What the
    // ledger holds is read on a new connection; the session that ended can no longer tell.
    const where = second.error.file || 'the last batch';
    const ledger = await reconnect()
      .then(async (fresh) => {
        try {
          return describeLedger(await readLedger(fresh), options.deployId);
        } finally {
          await fresh.end().catch(() => {});
        }
      })
      .catch((err) => `the ledger could not be read (${(err as Error)?.message ?? err})`);
    throw outcomeUnknown(
      `${first.error!.message}; then, on the resumed run: ${second.error.message}; ${where} may be half-applied; ${ledger}`,
    );
  }
  const applied = await appliedBy(client, options.deployId);
  return {
    ...second,
    fromVersion: first.fromVersion,
    applied,
    partiallyApplied: Boolean(second.error) && (applied.length > 0 || second.partiallyApplied),
  };
}

/**
 * Restores snapshot `id` (or resumes its restore) and reports the failure that caused it, with
 * the version the restored database is at.
 */
async function finishRestore(
  ports: DeployPorts,
  config: DeployConfig,
  report: Report,
  id: string,
  reason: string,
  as: (database: string) => ReturnType<typeof connect>,
  migrations: Awaited<ReturnType<typeof loadMigrations>>,
  progress: Progress,
): Promise<DeployOutcome> {
  report.ok = false;
  if (report.errors.length === 0) report.errors.push({ message: reason });
  progress.step = `restoring snapshot ${id}`;
  // Marked started only once the port has taken the request: a refused restore started nothing.
  const state = await ports.snapshots.restore(id, reason);
  progress.restore = 'started';
  if (state === 'in-progress') return { status: 'waiting', reason: `restoring snapshot ${id}`, report };
  if (state === 'manual') {
    // Left as it is, at the version the ledger says: restoring is a person's decision here.
    progress.restore = 'none';
    progress.step = 'reading the version after the failed migration';
    const client = await as(config.roles.database);
    try {
      report.to_version = versionString((await readPlan(client, migrations, { allowOutOfOrder: true })).currentVersion);
    } finally {
      await client.end();
    }
    report.backup = ports.snapshots.keptAs(id);
    return { status: 'complete', report };
  }
  progress.restore = 'done';
  progress.step = 'connecting to the restored database';
  const restored = await as(config.roles.database);
  try {
    const plan = await readPlan(restored, migrations, { allowOutOfOrder: true });
    const version = versionString(plan.currentVersion);
    // Pending as the restored database has it: what ran before the failure is pending again.
    report.pending = plan.pending.map((p) => ({ version: p.migration.version.toString(), name: p.migration.name }));
    if (report.from_version !== undefined && report.from_version !== null && version !== report.from_version) {
      addError(
        report,
        new PostconditionFailedError([
          `the restored database is at version ${version}, expected ${report.from_version}`,
        ]),
      );
    }
    report.from_version ??= version;
    report.to_version = version;
  } finally {
    await restored.end();
  }
  report.restored = true;
  // The restore undid what ran: nothing is applied; what was, and is undone, is said as that.
  if (report.applied.length) report.undone = report.applied;
  report.applied = [];
  report.kept_as = ports.snapshots.keptAs(id);
  return { status: 'complete', report };
}

/** Names come from configuration: validated here, quoted wherever they are used. */
export function validateRoles(roles: LockdownRoles): LockdownRoles {
  const checked = {
    database: validateIdentifier(roles.database, 'database name'),
    owner: validateIdentifier(roles.owner, 'owner role'),
    group: validateIdentifier(roles.group, 'group role'),
    app: validateIdentifier(roles.app, 'app role'),
  };
  if (new Set(Object.values(checked)).size !== 4)
    throw new BadInputError(`database, owner, group and app role names must differ: ${JSON.stringify(checked)}`);
  return checked;
}

/**
 * Deletes pre-migration snapshots beyond the newest N (never the one just taken). Best-effort: a
 * snapshot that cannot be listed or deleted now is a note, and the next deploy tries again.
 */
async function pruneSnapshots(
  snapshots: SnapshotPort,
  config: DeployConfig,
  current: string,
  report: Report,
  log: (message: string) => void,
): Promise<void> {
  const keep = config.snapshotRetention ?? 5;
  const deleted: string[] = [];
  const failures: string[] = [];
  try {
    // The port lists only the snapshots it took (on RDS: by their tag, not their name); the prefix
    // narrows them to this stack's deploys. One still being taken has no time yet: never deleted.
    const mine = (await snapshots.list())
      .filter((s) => s.id.startsWith(`${config.snapshotPrefix}-pre-`) && !s.creating)
      .sort((a, b) => (a.id === current ? -1 : b.id === current ? 1 : b.createdAt.getTime() - a.createdAt.getTime()));
    for (const { id } of mine.slice(Math.max(keep, 1))) {
      // One that cannot be deleted now (busy, a denial) does not keep the others.
      try {
        await snapshots.delete(id);
        deleted.push(id);
      } catch (err) {
        failures.push(`${id}: ${(err as Error)?.message ?? err}`);
      }
    }
  } catch (err) {
    failures.push(`listing them: ${(err as Error)?.message ?? err}`);
  }
  if (failures.length) {
    const text = `old snapshots were not all deleted (${failures.join('; ')}); the next deploy tries again`;
    log(text);
    note(report, text);
  }
  report.deleted_snapshots = deleted;
}

/** How far a deploy got, for the message of a failure after its migrations committed. */
interface Progress {
  committed: boolean;
  step: string;
  restore: AfterCommitState['restore'];
}
