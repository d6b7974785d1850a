/**
 * Runs a plan against one connection: transactional batches (a fast joined path, and a precise
 * statement-by-statement path that pins failures to file and line), non-transactional files with
 * recorded progress, and reverts. Every failure is returned as a value after rolling back.
 */
import type { ClientBase } from 'pg';
import { type Batch, type BatchSplit, planBatches, splitPointFor55P04 } from './batches';
import { isSessionEndedByServer, quoteIdent, quoteQualified } from './db';
import { MigrationFailedError } from './errors';
import type { MigrationScript } from './files';
import {
  CREATE_LEDGER,
  completeIncomplete,
  deleteAttemptQuery,
  finishAttempt,
  insertAppliedQuery,
  type LedgerRow,
  progressQuery,
  recordFailure,
  revertQuery,
  startAttempt,
  startIncomplete,
} from './ledger';
import type { LockHolder } from './lock';
import { maxVersion, type PendingMigration, type Plan, type PlanOptions } from './plan';
import type { Statement } from './sql';

export type RunEvent =
  | { type: 'lock-wait'; holder?: LockHolder }
  | { type: 'batch-start'; versions: bigint[] }
  | { type: 'batch-split'; split: BatchSplit }
  | { type: 'applied'; version: bigint; name: string; ms: number }
  | { type: 'reverted'; version: bigint; name: string; ms: number }
  | { type: 'retry'; attempt: number; delayMs: number; reason: string }
  | { type: 'cleanup'; version: bigint; sql: string }
  | { type: 'failed'; error: MigrationFailedError };

export interface RunOptions extends PlanOptions {
  /** Recorded in the ledger with every row. */
  readonly deployId?: string;
  /** How long to wait for another run's lock. @default 60 000 ms */
  readonly lockWaitMs?: number;
  /** `lock_timeout` of a migration without the directive. @default 5 000 ms */
  readonly defaultLockTimeoutMs?: number;
  /** `statement_timeout` of a migration without the directive. @default 0 (none) */
  readonly defaultStatementTimeoutMs?: number;
  /** Upper bound on any statement's time. @default none */
  readonly maxStatementTimeoutMs?: number;
  /**
   * When every statement must have ended (epoch ms; a Lambda's end, less the time to report): each
   * statement's timeout is the time left when it starts, not when the run began. @default none
   */
  readonly deadlineAt?: number;
  /** Retries of a transactional batch that failed on a lock timeout (55P03). @default 3 */
  readonly lockRetries?: number;
  /** Run the migrations' SQL as this role (`SET ROLE`), so it owns what they create. */
  readonly role?: string;
  /** Run pending transactional migrations and roll them back. */
  readonly dryRun?: boolean;
  readonly onEvent?: (event: RunEvent) => void;
}

export interface AppliedReport {
  readonly version: bigint;
  readonly name: string;
  readonly ms: number;
}

export interface SkippedReport {
  readonly version: bigint;
  readonly name: string;
  readonly reason: string;
}

export interface RunResult {
  readonly fromVersion: bigint | null;
  readonly toVersion: bigint | null;
  /** Migrations that committed (or, in a dry run, that would have). */
  readonly applied: readonly AppliedReport[];
  /** Migrations still pending after the run. */
  readonly pending: readonly { version: bigint; name: string }[];
  /** Where pending transactional migrations were committed in more than one batch, and why. */
  readonly splits: readonly BatchSplit[];
  /** What a dry run could not rehearse in a rolled-back transaction, and why. */
  readonly skipped: readonly SkippedReport[];
  /** Set when a migration failed; the run stopped there. */
  readonly error?: MigrationFailedError;
  /** True when a failure happened after something had committed in this run. */
  readonly partiallyApplied: boolean;
  /**
   * True when the run stopped because the connection was lost without a word from the server (the
   * network, a failover): the last batch may or may not have committed, and only the ledger can tell.
   */
  readonly connectionLost: boolean;
  /**
   * True when the server ended the session itself (FATAL 57P01 or 57P02). An operator's
   * pg_terminate_backend and a graceful restart or Multi-AZ failover both send 57P01: only the server's
   * start time, read on a new connection, tells them apart (lambda/lifecycle/failover.ts).
   */
  readonly endedByServer: boolean;
  /**
   * Set when the connection was lost (or the session ended) between a statement that cannot run in a
   * transaction block and its progress write: whether it finished, only its old session can tell.
   */
  readonly inDoubt?: { readonly file: string; readonly line: number; readonly sql: string };
  readonly dryRun: boolean;
  /** What was recorded as applied from another tool's ledger or a baseline (adopt/), before anything ran. */
  readonly adoption?: Plan['adoption'];
  /** Objects whose ownership moved to the migrations' role with the adoption. */
  readonly ownershipTaken?: readonly string[];
}

const BACKOFF_MS = 200;
/** How long past a query's cap its connection may stay silent before it is taken for dead. */
export const READ_TIMEOUT_MARGIN_MS = 15_000;
/**
 * Size of one joined query of the fast path; larger batches go in several. A joined query is a copy
 * of its statements and garbage once sent: small enough, it dies young. At 1 MB the copies piled up in
 * the old generation (a 50 MB seed file peaked at 200–215 MB RSS, against ≈ 180 MB now).
 */
const JOINED_QUERY_CHARS = 64 * 1024;

export class Executor {
  private readonly applied: AppliedReport[] = [];
  private committed = false;
  /** A statement that ran outside a transaction block and whose progress is not yet recorded. */
  private inDoubt: RunResult['inDoubt'];
  constructor(
    private readonly client: ClientBase,
    private readonly options: RunOptions,
  ) {}

  async run(plan: Plan): Promise<RunResult> {
    let error: MigrationFailedError | undefined;
    const splits: BatchSplit[] = [];
    const skipped: SkippedReport[] = [];
    const dryRun = Boolean(this.options.dryRun);
    const queue: Batch[] = planBatches(plan.pending);
    const skipRest = (reason: string) => {
      for (const b of queue.splice(0))
        for (const { migration: m } of b.migrations) skipped.push({ version: m.version, name: m.name, reason });
    };
    while (queue.length && !error) {
      const batch = queue.shift()!;
      const alone = batch.migrations[0].migration.up.directives.noTransaction;
      if (alone && dryRun) {
        queue.unshift(batch);
        skipRest(
          `${batch.migrations[0].migration.up.file} runs outside a transaction: it cannot be rehearsed and rolled back`,
        );
        break;
      }
      const outcome = alone ? await this.runAlone(batch.migrations[0]) : await this.runBatch(batch.migrations);
      if (outcome instanceof SplitAt) {
        // The server refused an enum value the parse tree did not show as used: commit up to the
        // migration that added it, then run the rest again, once.
        const first = batch.migrations.slice(0, outcome.index + 1);
        const rest = batch.migrations.slice(outcome.index + 1);
        const split = {
          after: first.at(-1)!.migration.version,
          before: rest[0].migration.version,
          reason: outcome.reason,
        };
        queue.unshift({ migrations: first, split }, { migrations: rest, split: batch.split });
        continue;
      }
      error = outcome;
      if (error || !batch.split) continue;
      splits.push(batch.split);
      this.options.onEvent?.({ type: 'batch-split', split: batch.split });
      if (dryRun) skipRest(`would run after ${batch.split.after} commits: ${batch.split.reason}`);
    }
    const done = new Set(dryRun ? [] : this.applied.map((a) => a.version));
    const connectionLost = error !== undefined && isConnectionLoss(error.cause);
    const endedByServer = error !== undefined && isSessionEndedByServer(error.cause);
    return {
      fromVersion: plan.currentVersion,
      toVersion: dryRun ? plan.currentVersion : maxVersion(plan.currentVersion, this.applied),
      applied: this.applied,
      pending: plan.pending
        .filter((p) => !done.has(p.migration.version))
        .map((p) => ({ version: p.migration.version, name: p.migration.name })),
      splits,
      skipped,
      error,
      partiallyApplied: Boolean(error) && this.committed,
      connectionLost,
      endedByServer,
      inDoubt: connectionLost || endedByServer ? this.inDoubt : undefined,
      dryRun,
    };
  }

  async revert(
    applied: readonly LedgerRow[],
    targets: readonly LedgerRow[],
    scripts: readonly MigrationScript[],
  ): Promise<RunResult> {
    let error: MigrationFailedError | undefined;
    const reverted: AppliedReport[] = [];
    const skipped: SkippedReport[] = [];
    // Consecutive transactional down scripts revert together, atomically.
    for (let i = 0; i < targets.length && !error; ) {
      let j = i + 1;
      if (!scripts[i].directives.noTransaction) while (j < targets.length && !scripts[j].directives.noTransaction) j++;
      const rows = targets.slice(i, j);
      const group = scripts.slice(i, j);
      const tx = !scripts[i].directives.noTransaction;
      if (!tx && this.options.dryRun) {
        // Outside a transaction nothing can be rolled back: a dry run stops here, and says so.
        const reason = `${scripts[i].file} runs outside a transaction: it cannot be rehearsed and rolled back`;
        for (const r of targets.slice(i)) skipped.push({ version: r.version, name: r.name, reason });
        break;
      }
      error = await this.withRetries(tx, async () => {
        const timings = await this.runEach(
          rows.map((r, k) => ({ version: r.version, name: r.name, script: group[k] })),
          tx,
        );
        const q = revertQuery(rows.map((r) => r.id));
        await this.client.query(q.text, q.values);
        if (tx) await this.client.query(this.options.dryRun ? 'ROLLBACK' : 'COMMIT');
        if (!this.options.dryRun) this.committed = true;
        for (const t of timings) {
          reverted.push(t);
          this.options.onEvent?.({ type: 'reverted', ...t });
        }
      });
      i = j;
    }
    const remaining = applied.filter((r) => !reverted.some((x) => x.version === r.version) || this.options.dryRun);
    return {
      fromVersion: maxVersion(null, applied),
      toVersion: maxVersion(null, remaining),
      applied: reverted,
      pending: [],
      splits: [],
      skipped,
      error,
      partiallyApplied: Boolean(error) && this.committed,
      connectionLost: error !== undefined && isConnectionLoss(error.cause),
      endedByServer: error !== undefined && isSessionEndedByServer(error.cause),
      dryRun: Boolean(this.options.dryRun),
    };
  }

  /**
   * All migrations of `group` and their ledger rows in one transaction; a `SplitAt` when the server
   * refused a new enum value (55P04) that an earlier migration of the group added.
   */
  private async runBatch(group: readonly PendingMigration[]): Promise<MigrationFailedError | SplitAt | undefined> {
    this.options.onEvent?.({ type: 'batch-start', versions: group.map((p) => p.migration.version) });
    // Written before the batch and deleted by its commit: if this process dies, the attempt stays on record.
    const first = group[0].migration;
    const attemptId = this.options.dryRun
      ? undefined
      : await startAttempt(
          this.client,
          { version: first.version, name: first.name, checksum: first.checksum },
          this.options.deployId ?? null,
        );
    return this.withRetries(
      true,
      async (lastTry) => {
        let timings: AppliedReport[];
        try {
          timings = await this.runJoined(group);
        } catch (err) {
          // A server error in the joined run does not say which statement failed: run the batch
          // again one statement at a time, which reports file and line (or succeeds, if it was transient).
          if (!isSqlError(err)) throw err; // the session is gone (a socket error, or the server ended it)
          if ((err as { code?: unknown }).code === '55P03' && !lastTry) throw err; // retried after a backoff; pinned down on the last try
          await this.client.query('ROLLBACK');
          timings = await this.runEach(
            group.map(({ migration: m }) => ({ version: m.version, name: m.name, script: m.up })),
            true,
          );
          // It ran twice (the first time rolled back, but not its sequences or notifications): say so.
          const reason = `the batch failed as a whole (${(err as Error).message}) and then succeeded statement by statement`;
          this.options.onEvent?.({ type: 'retry', attempt: 1, delayMs: 0, reason });
        }
        const q = insertAppliedQuery(
          group.map(({ migration: m }, i) => ({
            version: m.version,
            label: m.label,
            name: m.name,
            checksum: m.checksum,
            downSql: m.down?.text ?? null,
            executionMs: timings[i].ms,
          })),
          this.options.deployId ?? null,
        );
        await this.client.query(q.text, q.values);
        if (attemptId !== undefined) await this.client.query(deleteAttemptQuery(attemptId));
        await this.client.query(this.options.dryRun ? 'ROLLBACK' : 'COMMIT');
        if (!this.options.dryRun) this.committed = true;
        for (const t of timings) {
          this.applied.push(t);
          this.options.onEvent?.({ type: 'applied', ...t });
        }
      },
      group,
      attemptId,
    ).catch((err) => {
      if (err instanceof SplitAt) return err;
      throw err;
    });
  }

  /**
   * The fast path: BEGIN and the whole batch sent as multi-statement queries (a few round trips in
   * all, whatever the number of migrations), with a server timestamp after each migration for its time.
   */
  private async runJoined(group: readonly PendingMigration[]): Promise<AppliedReport[]> {
    const MARK = 'SELECT clock_timestamp() AS orion_mark';
    const pieces: string[] = ['BEGIN', ...(this.options.dryRun ? [CREATE_LEDGER] : []), MARK];
    // The server's cap on each piece (0: quick bookkeeping; Infinity: a statement without one).
    const caps: number[] = pieces.map(() => 0);
    let settings = '';
    for (const { migration } of group) {
      const s = this.settingsSql(migration.up, 'SET LOCAL');
      if (s !== settings) {
        settings = s;
        pieces.push(s);
        caps.push(0);
      }
      const cap = this.statementTimeout(migration.up) || Number.POSITIVE_INFINITY;
      for (const st of migration.up.statements) {
        const left = this.timeLeftSql(migration.up);
        if (left) {
          pieces.push(left);
          caps.push(0);
        }
        pieces.push(st.sql);
        caps.push(cap);
      }
      pieces.push(MARK);
      caps.push(0);
    }
    if (this.options.role) pieces.push('RESET ROLE');
    const marks: number[] = [];
    let chunk: string[] = [];
    let size = 0;
    let chunkCap = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      // The newline ends a `--` comment that closes a statement: joined with ';' alone, the ';' would be
      // commented out and two statements would run together.
      // The chunk's cap: its statements' caps together, and never past the deadline (timeLeftSql).
      const left =
        this.options.deadlineAt === undefined
          ? Number.POSITIVE_INFINITY
          : Math.max(1, this.options.deadlineAt - Date.now());
      const cap = Math.min(chunkCap, left);
      const result = await this.client.query(this.withReadTimeout(chunk.join('\n;\n'), Number.isFinite(cap) ? cap : 0));
      for (const r of Array.isArray(result) ? result : [result]) {
        if (r.fields?.[0]?.name === 'orion_mark') marks.push((r.rows[0].orion_mark as Date).getTime());
      }
      chunk = [];
      size = 0;
      chunkCap = 0;
    };
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i];
      if (size + piece.length > JOINED_QUERY_CHARS) await flush();
      chunk.push(piece); // a statement larger than a query goes alone, as it is: joining one string copies nothing
      size += piece.length;
      chunkCap += caps[i] ?? 0;
    }
    await flush();
    return group.map(({ migration }, i) => ({
      version: migration.version,
      name: migration.name,
      ms: marks[i + 1] - marks[i],
    }));
  }

  /**
   * The precise path (and the one for down scripts): each statement on its own, so a failure is
   * pinned to its file and line. In a transaction, it is begun here; the caller ends it.
   */
  private async runEach(
    items: readonly { version: bigint; name: string; script: MigrationScript }[],
    inTransaction: boolean,
  ): Promise<AppliedReport[]> {
    if (inTransaction) await this.client.query(this.options.dryRun ? `BEGIN; ${CREATE_LEDGER}` : 'BEGIN');
    const timings: AppliedReport[] = [];
    for (const { version, name, script } of items) {
      const started = performance.now();
      await this.runScript(version, script, 0, inTransaction);
      timings.push({ version, name, ms: Math.round(performance.now() - started) });
    }
    return timings;
  }

  private settingsSql(script: MigrationScript, scope: 'SET' | 'SET LOCAL'): string {
    return `${scope} lock_timeout = ${this.lockTimeout(script)}; ${scope} statement_timeout = ${this.statementTimeout(script)}${this.roleSql(scope)}`;
  }

  /** `; SET [LOCAL] ROLE owner` when migrations run as a role, else nothing. */
  private roleSql(scope: 'SET' | 'SET LOCAL'): string {
    return this.options.role ? `; ${scope} ROLE ${quoteIdent(this.options.role)}` : '';
  }

  /** One non-transactional migration, statement by statement, resuming an interrupted attempt. */
  private runAlone(p: PendingMigration): Promise<MigrationFailedError | undefined> {
    const m = p.migration;
    this.options.onEvent?.({ type: 'batch-start', versions: [m.version] });
    return this.withRetries(false, async () => {
      const started = performance.now();
      const id =
        p.incompleteId ??
        (await startIncomplete(
          this.client,
          { version: m.version, label: m.label, name: m.name, checksum: m.checksum, downSql: m.down?.text ?? null },
          this.options.deployId ?? null,
        ));
      await this.runScript(m.version, m.up, p.resumeFrom, false, id);
      const ms = Math.round(performance.now() - started);
      await completeIncomplete(this.client, id, ms);
      this.applied.push({ version: m.version, name: m.name, ms });
      this.options.onEvent?.({ type: 'applied', version: m.version, name: m.name, ms });
    }, [p]);
  }

  /**
   * Runs a script's statements from `from`. In a transaction, settings are SET LOCAL; outside one,
   * progress is written to the ledger after each statement (`incompleteId`).
   */
  private async runScript(
    version: bigint,
    script: MigrationScript,
    from: number,
    inTransaction: boolean,
    incompleteId?: bigint,
  ): Promise<void> {
    const scope = inTransaction ? 'SET LOCAL' : 'SET';
    const role = this.roleSql(scope);
    await this.client.query(this.settingsSql(script, scope));
    try {
      for (let i = from; i < script.statements.length; i++) {
        const statement = script.statements[i];
        if (!inTransaction) await this.cleanUpFailedIndex(version, statement);
        if (this.options.deadlineAt !== undefined)
          await this.client.query(`${scope} statement_timeout = ${this.statementTimeout(script)}`);
        const progress = incompleteId === undefined ? '' : `RESET ROLE; ${progressQuery(incompleteId, i + 1)}${role}`;
        if (progress && !needsOwnQuery(statement)) {
          // One simple query is one implicit transaction: the statement and its progress commit together
          // or not at all, so a resume after a lost connection never runs a committed statement again.
          try {
            await this.client.query(
              this.withReadTimeout(`${statement.sql}\n;\n${progress}`, this.statementTimeout(script)),
            );
          } catch (err) {
            throw new StatementError(script.file, statement, err);
          }
          this.committed = true;
          continue;
        }
        // Outside any transaction block (CREATE INDEX CONCURRENTLY…): between the statement and its
        // progress, a lost connection leaves the outcome unknown; the caller must not resume blindly.
        if (progress) this.inDoubt = { file: script.file, line: statement.line, sql: statement.sql };
        try {
          await this.client.query(this.withReadTimeout(statement.sql, this.statementTimeout(script)));
        } catch (err) {
          throw new StatementError(script.file, statement, err);
        }
        if (progress) {
          this.committed = true; // from here on, a failure leaves this statement committed
          await this.client.query(progress);
          this.inDoubt = undefined;
        }
      }
    } finally {
      if (!inTransaction)
        await this.client.query('RESET lock_timeout; RESET statement_timeout; RESET ROLE').catch(() => {});
    }
    if (inTransaction && role) await this.client.query('RESET ROLE');
  }

  /** A failed CREATE INDEX CONCURRENTLY leaves an INVALID index behind; drop it before retrying. */
  private async cleanUpFailedIndex(version: bigint, s: Statement): Promise<void> {
    if (s.kind !== 'IndexStmt' || !s.node.concurrent || !s.node.idxname) return;
    const name = quoteQualified(s.node.relation?.schemaname, s.node.idxname);
    const { rows } = await this.client.query(
      `SELECT 1 FROM pg_index WHERE indexrelid = to_regclass($1) AND NOT indisvalid`,
      [name],
    );
    if (rows.length === 0) return;
    const sql = `DROP INDEX CONCURRENTLY IF EXISTS ${name}`;
    this.options.onEvent?.({ type: 'cleanup', version, sql });
    await this.client.query(sql);
  }

  /** Says which lock a timed-out statement waited for, and who holds it. */
  private async withLockHolders(failure: MigrationFailedError, s: Statement): Promise<MigrationFailedError> {
    const relation = s.node.relation;
    if (!relation?.relname) return failure;
    const name = quoteQualified(relation.schemaname, relation.relname);
    const { rows } = await this.client
      .query(
        `SELECT l.pid, a.application_name, l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.relation = to_regclass($1) AND l.granted AND l.pid <> pg_backend_pid() ORDER BY l.pid LIMIT 3`,
        [name],
      )
      .catch(() => ({ rows: [] as any[] }));
    const holders = rows.map((r) => `pid ${r.pid} "${r.application_name}" (${r.mode})`).join(', ');
    const detail = `${failure.serverMessage}: waiting for a lock on ${relation.relname}${holders ? ` held by ${holders}` : ''}`;
    return new MigrationFailedError(failure.file, failure.line, failure.sqlstate, detail, { cause: failure.cause });
  }

  /**
   * The query with pg's read timeout (query_timeout) set from the server's own cap on it, plus a
   * margin: past that, silence means a dead socket (a hard failover), noticed then rather than at the
   * connection's timeout. Without a cap (0), the connection's own timeout, if any, applies.
   */
  private withReadTimeout(text: string, capMs: number): string | { text: string; query_timeout: number } {
    return capMs > 0 ? { text, query_timeout: Math.ceil(capMs) + READ_TIMEOUT_MARGIN_MS } : text;
  }

  private lockTimeout(script: MigrationScript): number {
    return this.cap(script.directives.lockTimeoutMs ?? this.options.defaultLockTimeoutMs ?? 5_000);
  }

  private statementTimeout(script: MigrationScript): number {
    return this.cap(script.directives.statementTimeoutMs ?? this.options.defaultStatementTimeoutMs ?? 0);
  }

  /** 0 means "no limit" to PostgreSQL, so a cap replaces it too. */
  private cap(ms: number): number {
    const { maxStatementTimeoutMs, deadlineAt } = this.options;
    const left = deadlineAt === undefined ? undefined : deadlineAt - Date.now();
    const bounds = [maxStatementTimeoutMs, left].filter((v): v is number => v !== undefined);
    const max = bounds.length ? Math.min(...bounds) : undefined;
    return max !== undefined && (ms === 0 || ms > max) ? Math.max(1, Math.floor(max)) : ms;
  }

  /**
   * In a joined batch, before each statement: its statement_timeout from the time left at the moment
   * the server reaches it (its own clock), so a statement late in a long batch gets only what is left.
   */
  private timeLeftSql(script: MigrationScript): string | undefined {
    const { deadlineAt } = this.options;
    if (deadlineAt === undefined) return undefined;
    const own = script.directives.statementTimeoutMs ?? this.options.defaultStatementTimeoutMs ?? 0;
    const max = this.options.maxStatementTimeoutMs;
    const bounds = [
      own || undefined,
      max,
      `${Math.floor(deadlineAt)} - (extract(epoch FROM clock_timestamp()) * 1000)::bigint`,
    ]
      .filter((b) => b !== undefined)
      .join(', ');
    return `SELECT set_config('statement_timeout', greatest(1, least(${bounds}))::bigint::text, true) AS orion_time_left`;
  }

  /**
   * Runs `attempt`; on failure rolls back, records the failure in the ledger and returns it.
   * A lock timeout (55P03) of a transactional attempt is retried with exponential backoff; an enum
   * value used before its commit (55P04) throws `SplitAt` when an earlier migration of `group` added it.
   */
  private async withRetries(
    inTransaction: boolean,
    attempt: (lastTry: boolean) => Promise<void>,
    group: readonly PendingMigration[] = [],
    attemptId?: bigint,
  ): Promise<MigrationFailedError | undefined> {
    const retries = this.options.lockRetries ?? 3;
    for (let n = 0; ; n++) {
      try {
        await attempt(n >= retries);
        return undefined;
      } catch (err) {
        if (inTransaction) await this.client.query('ROLLBACK').catch(() => {});
        let failure = toMigrationFailure(err, group);
        if (inTransaction && failure.sqlstate === '55P03' && n < retries) {
          const delayMs = BACKOFF_MS * 2 ** n;
          this.options.onEvent?.({ type: 'retry', attempt: n + 1, delayMs, reason: failure.message });
          await new Promise((r) => setTimeout(r, delayMs));
          continue;
        }
        if (inTransaction && failure.sqlstate === '55P04') {
          const at = splitPointFor55P04(group, failure.file);
          if (at !== undefined) {
            // Not a failure of the deploy: the batch runs again in two (the caller's doing).
            if (attemptId !== undefined) await this.client.query(deleteAttemptQuery(attemptId)).catch(() => {});
            throw new SplitAt(
              at,
              `${failure.file}:${failure.line}: ${failure.serverMessage} (55P04, seen by the server)`,
            );
          }
          failure = new MigrationFailedError(
            failure.file,
            failure.line,
            failure.sqlstate,
            `${failure.serverMessage}: the value is added in this same migration; add it in an earlier migration, so that it is committed before it is used`,
            { cause: failure.cause },
          );
        }
        // Only the reported failure says who holds the lock: no catalog query before each retry.
        if (failure.sqlstate === '55P03' && err instanceof StatementError)
          failure = await this.withLockHolders(failure, err.statement);
        const failed = group.find((p) => p.migration.up.file === failure.file)?.migration;
        if (failed && !this.options.dryRun) {
          const entry = {
            version: failed.version,
            name: failed.name,
            checksum: failed.checksum,
            line: failure.line,
            sqlstate: failure.sqlstate ?? null,
            message: failure.serverMessage,
          };
          // The connection may be gone: then the attempt row says "interrupted", and the report has the failure.
          await (attemptId !== undefined
            ? finishAttempt(this.client, attemptId, entry)
            : recordFailure(this.client, entry, this.options.deployId ?? null)
          ).catch(() => {});
        }
        this.options.onEvent?.({ type: 'failed', error: failure });
        return failure;
      }
    }
  }
}

/** An error the server raised about SQL, after which the session is still usable. */
function isSqlError(err: unknown): boolean {
  const { code, severity } = (err ?? {}) as { code?: unknown; severity?: unknown };
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && severity !== 'FATAL' && severity !== 'PANIC';
}

/**
 * Whether the session was lost without the server saying why (a reset or closed socket: the network,
 * a failover), as opposed to SQL failing. A session the server ended itself (FATAL 57P01, 57P02) is
 * `isSessionEndedByServer`: running again could undo an operator's decision, so the caller looks closer.
 */
function isConnectionLoss(err: unknown): boolean {
  const e = err as { severity?: unknown; code?: unknown; message?: unknown };
  if (typeof e?.severity === 'string') return false;
  // node-pg's own errors ("Connection terminated unexpectedly", "… is not queryable") and socket errno codes.
  return (
    (typeof e?.code === 'string' && /^E[A-Z]+$/.test(e.code)) ||
    /connection|not queryable|socket|read timeout/i.test(String(e?.message)) // read timeout: pg's query_timeout, a silent socket
  );
}

/** Run `migrations[0..index]` as one batch and the rest as another. */
class SplitAt {
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {}
}

/**
 * Statements that cannot share a query with their progress write: those PostgreSQL refuses in a
 * transaction block, and REINDEX/CLUSTER, which the server refuses there only for a partitioned table.
 */
function needsOwnQuery(s: Statement): boolean {
  return Boolean(s.nonTransactionalReason) || s.kind === 'ReindexStmt' || s.kind === 'ClusterStmt';
}

/** A statement's error with its file and statement attached, before it becomes a MigrationFailedError. */
class StatementError extends Error {
  constructor(
    readonly file: string,
    readonly statement: Statement,
    override readonly cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause));
  }
}

function toMigrationFailure(err: unknown, group: readonly PendingMigration[]): MigrationFailedError {
  if (err instanceof StatementError) {
    const pg = err.cause as { code?: string; position?: string; message?: string; detail?: string; hint?: string };
    let line = err.statement.line;
    const position = Number(pg.position);
    if (position > 0) line += (err.statement.sql.slice(0, position - 1).match(/\n/g) ?? []).length;
    // HINT is the server's advice; DETAIL says which key or row, so it may hold the table's data (a
    // duplicated token): it goes to the person running the CLI, not into CloudFormation's events.
    const message = pg.hint
      ? `${pg.message ?? 'unknown error'} (HINT: ${pg.hint.replace(/\.$/, '')})`
      : (pg.message ?? 'unknown error');
    return new MigrationFailedError(err.file, line, pg.code, message, { cause: err.cause, detail: pg.detail });
  }
  // Not a statement of a migration: the bookkeeping or the COMMIT itself (a dropped connection).
  const e = err as { code?: string; message?: string };
  const files = group.map((p) => p.migration.up.file);
  // The server's own error (a SQLSTATE, even at COMMIT) ends the transaction: the batch rolled back.
  // A lost connection, or the server ending the session (57P01…, 08…), leaves the COMMIT's outcome unknown.
  const rolledBack = typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && !/^(57P|08)/.test(e.code);
  const outcome = rolledBack
    ? 'it was rolled back'
    : 'it either committed whole or not at all; run "orion-db status" to see which';
  return new MigrationFailedError(
    files.at(-1) ?? '(ledger)',
    0,
    e.code,
    `${e.message ?? String(err)} — while running the batch ${files.join(', ')}: ${outcome}`,
    { cause: err },
  );
}
