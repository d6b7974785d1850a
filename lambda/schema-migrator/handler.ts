/**
 * `Custom::SchemaMigrations` for the CDK Provider framework: `onEvent` checks and answers at once,
 * `isComplete` runs the deploy lifecycle, polled until it is done. Where a deploy is (snapshot being
 * taken, restore under way, migrations applied) is always read from durable facts.
 */
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { connect, withDatabase, withUser } from '../engine/db';
import { BadInputError, LockTimeoutError, NoDownScriptError, OutcomeUnknownError } from '../engine/errors';
import { readLedger } from '../engine/ledger';
import { down, revertDeploy } from '../engine/migrate';
import type { Report } from '../engine/report';
import { AfterCommitError, describeState } from '../lifecycle/after-commit';
import { type DeployOutcome, runDeploy, snapshotId } from '../lifecycle/deploy';
import type { SecretsPort, SnapshotPort } from '../lifecycle/ports';
import { type MigrationSettings, parseProperties, UNREACHABLE_RETRY_MS } from './properties';

export interface Logger {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export interface Metrics {
  add(
    name: 'MigrationsApplied' | 'MigrationFailures' | 'Restores' | 'RollbackProblems' | 'SchemaAhead' | 'DriftFound',
    value: number,
  ): void;
  addDuration(name: 'MigrationDuration' | 'LockWait', ms: number): void;
  flush(): void;
}

export interface DeployTarget {
  readonly serverUrl: string;
  readonly snapshots: SnapshotPort;
  readonly secrets: SecretsPort;
}

/** The instance's deletion protection, which this resource owns (lambda/aws/deletion-protection.ts). */
export interface DeletionProtection {
  apply(on: boolean): Promise<void>;
  releaseForFailedCreate(stackId: string): Promise<boolean>;
}

export interface HandlerDeps {
  /** The AWS (or, in tests, local) adapters for one resource's settings. */
  target(settings: MigrationSettings, stackId: string): Promise<DeployTarget>;
  deletionProtection(settings: MigrationSettings): DeletionProtection;
  isRollingBack(stackId: string): Promise<boolean>;
  readonly migrationsDir: string;
  /**
   * No poll starts later than this after onEvent: one may run the whole isComplete timeout, and all
   * must be over before CloudFormation's hour ends (a poll beside the stack rollback would race it).
   * The stack computes it from its time budget (lib/schema-migrations.ts `lastPollAfter`).
   */
  readonly lastPollAfterMs: number;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

export type ProviderEvent = CloudFormationCustomResourceEvent & { PhysicalResourceId?: string };

/** Time kept back from a statement's cap for reporting and the ledger's bookkeeping. */
const SAFETY_MARGIN_MS = 60_000;

export function createHandlers(deps: HandlerDeps) {
  const { logger, metrics } = deps;

  async function onEvent(event: ProviderEvent): Promise<{ PhysicalResourceId: string; StartedAt?: string }> {
    logger.info('event', {
      requestType: event.RequestType,
      logicalResourceId: event.LogicalResourceId,
      physicalResourceId: event.PhysicalResourceId,
    });
    if (event.RequestType === 'Delete') {
      // Never drops data: the instance's removal policy takes the final snapshot.
      await releaseForFailedCreate(event);
      return { PhysicalResourceId: event.PhysicalResourceId! };
    }
    // The Provider framework passes onEvent's own fields on to every isComplete (framework.ts,
    // createResponseEvent): when this request began, since the waiter counts attempts, not time.
    const StartedAt = new Date().toISOString();
    // A rollback (or, unknown yet, maybe one) is not checked here: isComplete decides once it knows.
    if (event.RequestType === 'Update' && (await rollingBack(event)) !== false)
      return { PhysicalResourceId: event.PhysicalResourceId!, StartedAt };
    const settings = parseProperties(event.ResourceProperties);
    return { PhysicalResourceId: `${settings.instanceIdentifier}/${settings.roles.database}`, StartedAt };
  }

  /** Whether this request is too old to start another poll (see lastPollAfterMs). */
  function outOfHour(event: ProviderEvent): boolean {
    const started = Date.parse(String((event as { StartedAt?: unknown }).StartedAt));
    return Number.isFinite(started) && Date.now() - started > deps.lastPollAfterMs;
  }

  async function isComplete(
    event: ProviderEvent,
    context: InvocationContext,
  ): Promise<{ IsComplete: boolean; Data?: Record<string, string> }> {
    try {
      if (event.RequestType === 'Delete') return { IsComplete: await releaseForFailedCreate(event) };
      const back = event.RequestType === 'Update' ? await rollingBack(event) : false;
      if (typeof back === 'object') {
        // Neither told yet: polled again, but never past the hour (a deploy and a rollback both end then).
        if (!outOfHour(event)) return { IsComplete: false };
        metrics.add('MigrationFailures', 1);
        throw new Error(
          `Schema migrations stopped waiting after ${Math.round(deps.lastPollAfterMs / 60_000)} minutes, before CloudFormation's one-hour limit: whether the stack is rolling back could not be told (DescribeStacks failed: ${back.describeStacksError}; the deploy ids are not synth times), so nothing was run. The next deploy (or a continued rollback) tries again.`,
        );
      }
      if (back) {
        if (outOfHour(event)) {
          logger.error(
            'rollback: stopped before CloudFormation’s hour; the database is left as it is (see README, "On call")',
          );
          metrics.add('RollbackProblems', 1);
          metrics.add('MigrationFailures', 1);
          return { IsComplete: true };
        }
        return { IsComplete: await rollback(event, context) };
      }
      if (outOfHour(event)) {
        metrics.add('MigrationFailures', 1);
        throw new Error(
          `Schema migrations stopped waiting after ${Math.round(deps.lastPollAfterMs / 60_000)} minutes, before CloudFormation's one-hour limit for the resource (the last poll's reason is in the schema-migrator log: a snapshot being taken, a restore under way or the migration lock held elsewhere). A restore under way is finished by the next deploy or the stack rollback. A migration that needs longer: run it with \`orion-db up\` from inside the VPC (README, "Reaching the database"), or split it.`,
        );
      }
      return await deploy(event, context);
    } finally {
      metrics.flush();
    }
  }

  async function deploy(event: ProviderEvent, context: InvocationContext) {
    const settings = parseProperties(event.ResourceProperties);
    const target = await deps.target(settings, event.StackId);
    const started = Date.now();
    let outcome: DeployOutcome;
    try {
      await deps.deletionProtection(settings).apply(settings.restore.deletionProtection);
      outcome = await runLifecycle(settings, target, context);
    } catch (err) {
      if (err instanceof LockTimeoutError) {
        logger.warn('migration lock held by another session; trying again at the next poll', { error: err.message });
        metrics.addDuration('LockWait', err.waitedMs);
        return { IsComplete: false };
      }
      metrics.add('MigrationFailures', 1);
      // Thrown once migrations began (the connection lost for good, a step after they committed):
      // the message says where the database is, never "nothing was changed".
      if (err instanceof OutcomeUnknownError || err instanceof AfterCommitError)
        throw new Error(await scrub(target, `Schema migration failed: ${err.message.replace(/\.$/, '')}.`));
      throw new Error(
        await scrub(target, `Schema migrations did not start: ${describeError(err)}. Nothing was changed.`),
      );
    }
    if (outcome.status === 'waiting') {
      logger.info('waiting', { reason: outcome.reason });
      return { IsComplete: false };
    }
    const report = outcome.report;
    metrics.add('MigrationsApplied', report.applied.length);
    const drift = report.drift as { before?: { drift?: unknown[] }; after?: { drift?: unknown[] } } | undefined;
    if (drift) metrics.add('DriftFound', (drift.before?.drift?.length ?? 0) + (drift.after?.drift?.length ?? 0));
    metrics.addDuration('MigrationDuration', Date.now() - started);
    logger.info('deploy report', { report: await scrubObject(target, report) });
    if (!report.ok) {
      metrics.add('MigrationFailures', 1);
      if (report.restored) metrics.add('Restores', 1);
      throw new Error(await scrub(target, failureMessage(report) + outOfTime(report, context)));
    }
    return {
      IsComplete: true,
      Data: {
        FromVersion: report.from_version ?? 'none',
        ToVersion: report.to_version ?? 'none',
        Applied: String(report.applied.length),
        Snapshot: report.snapshot ?? 'none',
      },
    };
  }

  async function runLifecycle(
    settings: MigrationSettings,
    target: DeployTarget,
    context: InvocationContext,
    deployId = settings.deployId,
    applyPending = true,
  ): Promise<DeployOutcome> {
    const remaining = context.getRemainingTimeInMillis();
    const outcome = await runDeploy(
      { snapshots: target.snapshots, secrets: target.secrets },
      {
        serverUrl: target.serverUrl,
        roles: settings.roles,
        migrationsDir: deps.migrationsDir,
        deployId,
        applyPending,
        snapshotPrefix: settings.snapshotPrefix,
        snapshotRetention: settings.snapshotRetention,
        run: {
          // A statement must end before the invocation does, or it would outlive its connection.
          // Each statement's cap is the time left when it starts (lambda/engine/executor.ts).
          deadlineAt: Date.now() + Math.max(1_000, remaining - SAFETY_MARGIN_MS),
          lockWaitMs: Math.min(60_000, Math.max(1_000, remaining / 4)),
        },
        log: (message) => logger.info(message),
        connectRetryMs: Math.min(UNREACHABLE_RETRY_MS, remaining / 3),
        baseline: settings.baselineVersion,
        driftPolicy: settings.driftPolicy,
      },
    );
    return { ...outcome, report: withoutServerDetail(outcome.report) };
  }

  /**
   * A Delete while the stack's own creation rolls back: the instance must become deletable, or the
   * rollback ends ROLLBACK_FAILED. Never fails (that would be the same dead end); true when done.
   */
  async function releaseForFailedCreate(event: ProviderEvent): Promise<boolean> {
    try {
      const settings = parseProperties(event.ResourceProperties);
      const done = await deps.deletionProtection(settings).releaseForFailedCreate(event.StackId);
      if (!done)
        logger.info('failed first create: lifting deletion protection so the rollback can delete the instance');
      return done;
    } catch (err) {
      logger.error(
        'could not check or lift deletion protection for the rollback; see README, "A failed first deploy"',
        {
          error: describeError(err),
        },
      );
      metrics.add('RollbackProblems', 1);
      return true;
    }
  }

  /**
   * CloudFormation is rolling the stack back to the previous properties. Never applies anything; what
   * the failed deploy applied is handled by the environment's rollback policy (properties.ts). Never
   * fails either — that would leave the stack UPDATE_ROLLBACK_FAILED — except by polling again while
   * the migration lock is held elsewhere. Returns whether it is complete.
   */
  async function rollback(event: ProviderEvent, context: InvocationContext): Promise<boolean> {
    let target: DeployTarget | undefined;
    try {
      const settings = parseProperties(event.ResourceProperties);
      const failedDeployId = oldDeployId(event) ?? '';
      target = await deps.target(settings, event.StackId);
      const failedSnapshot = snapshotId(settings.snapshotPrefix, failedDeployId || 'unknown');
      const status = failedDeployId ? await target.snapshots.restoreStatus(failedSnapshot) : { state: 'none' as const };
      if (status.state === 'in-progress') {
        // A restore the failed deploy (or this rollback's policy) began: it is finished whatever happens.
        const state = await target.snapshots.restore(failedSnapshot, status.reason ?? 'stack rollback');
        if (state !== 'done') return false;
      } else if (status.state === 'none') {
        if (!(await bringBack(settings, target, failedDeployId, failedSnapshot, context))) return false;
      }
      return await lockdownOnly(settings, target, context);
    } catch (err) {
      if (err instanceof LockTimeoutError) {
        logger.warn('rollback: the migration lock is held by another session; trying again at the next poll', {
          error: err.message,
        });
        return false;
      }
      logger.error(
        'rollback could not restore the previous schema; the stack rollback goes on, fix the database by hand (see README, "On call")',
        { error: target ? await scrub(target, describeError(err)) : describeError(err) },
      );
      metrics.add('RollbackProblems', 1);
      metrics.add('MigrationFailures', 1);
      return true;
    }
  }

  /**
   * What the failed deploy applied beyond the version the previous properties describe, handled by
   * the policy. False while a restore it started is under way.
   */
  async function bringBack(
    settings: MigrationSettings,
    target: DeployTarget,
    failedDeployId: string,
    failedSnapshot: string,
    context: InvocationContext,
  ): Promise<boolean> {
    const ahead = await withMaster(settings, target, async (client) => {
      const rows = (await readLedger(client)).filter((r) => r.status === 'applied');
      return settings.schemaVersion !== undefined
        ? rows.filter((r) => r.version > settings.schemaVersion!)
        : rows.filter((r) => r.deployId === failedDeployId); // a template older than SchemaVersion
    });
    if (ahead.length === 0) return true;
    const versions = ahead.map((r) => `${r.version} (${r.name})`).join(', ');
    const leftAhead = (reason: string) => {
      logger.error(
        `rollback: the schema is left ahead of the stack: ${versions} stay applied (${reason}); the application's previous code runs against it (see README, "On call")`,
        { policy: settings.rollback, target: settings.schemaVersion?.toString() ?? 'unknown' },
      );
      metrics.add('SchemaAhead', 1);
      metrics.add('MigrationFailures', 1); // the alarm
    };
    switch (settings.rollback) {
      case 'keep':
        leftAhead('rollback policy keep: nothing written since the deploy is lost');
        return true;
      case 'restore': {
        if (!(await target.snapshots.list()).some((s) => s.id === failedSnapshot)) {
          leftAhead(`rollback policy restore, but the failed deploy took no snapshot ${failedSnapshot}`);
          return true;
        }
        logger.warn('rollback: restoring the failed deploy’s snapshot (rollback policy restore)', {
          snapshot: failedSnapshot,
        });
        metrics.add('Restores', 1);
        return (
          (await target.snapshots.restore(failedSnapshot, `stack rollback of deploy ${failedDeployId}`)) === 'done'
        );
      }
      case 'down-scripts':
        try {
          const reverted = await withMaster(settings, target, async (client) => {
            const options = {
              role: settings.roles.owner,
              lockWaitMs: Math.min(60_000, Math.max(1_000, context.getRemainingTimeInMillis() / 4)),
            };
            const result =
              settings.schemaVersion !== undefined
                ? await down(client, { ...options, to: settings.schemaVersion })
                : await revertDeploy(client, failedDeployId, options);
            if (result.error) throw result.error;
            return result.applied;
          });
          logger.info('rollback: reverted with the stored down scripts', {
            reverted: reverted.map((a) => `${a.version} ${a.name}`),
          });
        } catch (err) {
          // Only a missing or unusable down script leaves the schema ahead by choice; anything else (the
          // connection, a failing down script) is a rollback problem, and nothing is restored blindly.
          if (err instanceof NoDownScriptError) leftAhead(`rollback policy down-scripts: ${err.message}`);
          else if (err instanceof BadInputError)
            leftAhead(`rollback policy down-scripts: a stored down script cannot be run: ${err.message}`);
          else throw err;
        }
        return true;
    }
  }

  async function withMaster<T>(
    settings: MigrationSettings,
    target: DeployTarget,
    fn: (client: Awaited<ReturnType<typeof connect>>) => Promise<T>,
  ): Promise<T> {
    const master = await target.secrets.master();
    const client = await connect(withDatabase(withUser(target.serverUrl, master.username), settings.roles.database), {
      password: master.password,
      applicationName: 'orion-db rollback',
    });
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /** The lifecycle without applying anything (whatever the bundle carries): it re-asserts the lockdown. */
  async function lockdownOnly(
    settings: MigrationSettings,
    target: DeployTarget,
    context: InvocationContext,
  ): Promise<boolean> {
    const outcome = await runLifecycle(settings, target, context, `${settings.deployId}-rollback`, false);
    if (outcome.status === 'waiting') return false;
    if (!outcome.report.ok) {
      // A driver's message may echo a URL or a statement with a secret in it, like any other error logged here.
      logger.error('rollback: the previous schema is back but a check failed', {
        errors: await scrubObject(target, outcome.report.errors),
      });
      metrics.add('RollbackProblems', 1);
    }
    return true;
  }

  /**
   * Whether CloudFormation is rolling the stack back, or why that cannot be told now. Without
   * DescribeStacks, the deploy ids decide only when both are the construct's default, the synth time
   * (a rollback carries the earlier one). A deploy id may be any string, and Date.parse reads some as
   * dates ("1" and "2" are 2001-01-01 and 2001-02-01; "13" is not a date): guessing either way is
   * wrong somewhere (a deploy taken for a rollback applies nothing and succeeds; a rollback taken for a
   * deploy re-runs what failed), so the caller polls again, and DescribeStacks is asked again: the
   * answer then carries DescribeStacks' error, for the message should the hour run out.
   */
  async function rollingBack(event: ProviderEvent): Promise<boolean | { describeStacksError: string }> {
    try {
      return await deps.isRollingBack(event.StackId);
    } catch (err) {
      const now = synthTime(event.ResourceProperties?.DeployId);
      const old = synthTime(oldDeployId(event));
      const known = now !== undefined && old !== undefined;
      logger.warn(
        known
          ? 'DescribeStacks failed; judging rollback by the deploy ids (synth times)'
          : 'DescribeStacks failed and the deploy ids are not synth times: polling again to tell a rollback from a deploy',
        { error: describeError(err) },
      );
      return known ? now < old : { describeStacksError: describeError(err) };
    }
  }

  return { onEvent, isComplete };
}

/** A deploy id as the construct writes it by default (the synth time, ISO 8601 in UTC), in ms; else undefined. */
function synthTime(deployId: unknown): number | undefined {
  if (typeof deployId !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(deployId))
    return undefined;
  const ms = Date.parse(deployId);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The deploy id of the properties an Update replaces (the failed deploy, during a rollback). */
function oldDeployId(event: ProviderEvent): string | undefined {
  const old = (event as { OldResourceProperties?: Record<string, unknown> }).OldResourceProperties;
  return old?.DeployId === undefined ? undefined : String(old.DeployId);
}

/** The message CloudFormation shows: file, line, SQLSTATE, and what state the database is in. */
export function failureMessage(report: Report): string {
  const e = report.errors[0] ?? { message: 'unknown error' };
  const where = e.file ? `${e.file}${e.line ? `:${e.line}` : ''} ` : '';
  const state = e.sqlstate ? `SQLSTATE ${e.sqlstate}: ` : '';
  const version = report.to_version ?? 'none';
  const changed = report.applied.length > 0 || report.from_version !== report.to_version;
  const lockdownFailed = report.lockdown !== null && !report.lockdown.ok;
  const outcome = report.restored
    ? `The database was restored from snapshot ${report.snapshot} (version ${version}); the failed instance is kept as ${String(report.kept_as)}.`
    : changed || lockdownFailed
      ? `${describeState({ from: report.from_version, to: report.to_version, restore: 'none' })}${lockdownFailed ? ' The privilege lockdown did not complete; the next deploy re-asserts it.' : ''}`
      : `The database was left unchanged at version ${version}.`;
  return `Schema migration failed: ${where}${state}${e.message}. ${outcome}`;
}

/**
 * A statement canceled by the cap of this invocation's time (not a migration's own timeout): the
 * migration cannot finish inside one invocation, and polling again would not help (a Lambda timeout
 * is a failure to the Provider framework, never a second poll). Says how to run it instead.
 */
function outOfTime(report: Report, context: InvocationContext): string {
  const canceled = report.errors.some((e) => e.sqlstate === '57014');
  if (!canceled || context.getRemainingTimeInMillis() > SAFETY_MARGIN_MS + 10_000) return '';
  return (
    ' It could not finish within one invocation of the migration function (at most 14 minutes, less 1 to report):' +
    ' run it with `orion-db up` from inside the VPC (README, "Reaching the database"), or split the migration' +
    ' into parts that each fit.'
  );
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Removes the current secrets from a text: belt and braces, since server messages could echo SQL. */
async function scrub(target: DeployTarget, text: string): Promise<string> {
  const secrets = await Promise.all([target.secrets.master(), target.secrets.app()]).catch(() => []);
  return secrets.reduce((t, s) => (s.password ? t.split(s.password).join('***') : t), text);
}

async function scrubObject<T>(target: DeployTarget, value: T): Promise<T> {
  return JSON.parse(await scrub(target, JSON.stringify(value)));
}

/**
 * The server's DETAIL says which key or row failed, so it can hold the table's data (a duplicated
 * token): the CLI shows it to whoever runs it; the custom resource keeps it out of its logs and of what
 * CloudFormation shows.
 */
function withoutServerDetail(report: Report): Report {
  return { ...report, errors: report.errors.map(({ detail: _detail, ...entry }) => entry) };
}
