/**
 * `orion-db copy`: rows from a SQLite file or a PostgreSQL database into the target's existing schema.
 *
 * Before anything is written: tables and columns are matched, the foreign-key order is found, the
 * target is checked to be empty (or resuming, or --truncate), and every primary and unique key of
 * the target is checked against the source. Then per table, parents first: key-ordered batches, each
 * one transaction with one COPY, the checkpoint naming the batch before its COMMIT (checkpoint.ts
 * says why that is exactly-once). The next batch is read and converted while the server takes the
 * current one. Memory holds one or two batches, whatever the table's size.
 *
 * Takes the migration lock, so no migration changes the schema under a copy and two copies never
 * interleave; a killed copy's lock goes with its connection, so the next run sees its last batch
 * either committed or rolled back, never still in flight.
 */
import { pipeline } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent as q } from '../lambda/engine/db';
import { BadInputError } from '../lambda/engine/errors';
import { acquireMigrationLock, releaseMigrationLock } from '../lambda/engine/lock';
import { Checkpoint, type TableProgress } from './checkpoint';
import { RowTally } from './copy-text';
import { ForeignKeyError, UniqueConflictError } from './errors';
import { type CopyOutSource, canCopyOut, type PostgresSourceTable } from './pg-source';
import { planTables, type TablePlan } from './plan';
import { findUniqueConflicts } from './precheck';
import { copyIn, copySql, type EncodedBatch, encodeRows, explainCopyError, sendCopy } from './rows';
import type { Position, Source } from './source';
import { foreignKeyOrder, readTargetSchema } from './target';

export interface CopyOptions {
  readonly source: Source;
  readonly target: ClientBase;
  /** The target URL without its password: part of the checkpoint's identity. */
  readonly targetDescription: string;
  readonly tables?: readonly string[];
  readonly batchSize: number;
  /** Rows per batch where the source's COPY text streams to the target unread (default: batchSize). */
  readonly streamBatchSize?: number;
  readonly checkpointPath?: string;
  readonly truncate: boolean;
  readonly lockWaitMs: number;
  readonly onEvent?: (event: CopyEvent) => void;
}

export type CopyEvent =
  | { type: 'precheck'; table: string }
  | { type: 'table'; table: string; sourceRows: number; done: number; mode: 'batches' | 'whole' }
  | { type: 'rows'; table: string; done: number; sourceRows: number }
  | { type: 'table-done'; table: string; copied: number; ms: number };

export interface TableResult {
  readonly table: string;
  /** Rows in the source when this table's copy started. */
  readonly source_rows: number;
  /** Rows copied by this run. */
  readonly copied: number;
  /** Rows copied by earlier runs of the same checkpoint. */
  readonly resumed_from: number;
  readonly ms: number;
  readonly rows_per_second: number | null;
  readonly mode: 'batches' | 'whole';
  /** Rows per batch as this run read them (streamed PostgreSQL batches have their own size); null when copied whole or already done. */
  readonly batch_size: number | null;
  readonly whole_because?: string;
}

export interface CopyResult {
  readonly tables: TableResult[];
  readonly resumed: boolean;
  readonly truncated: string[];
  /** `held_by_source`: keys a unique index of the source already guarantees, on values the target takes unchanged. */
  readonly precheck: { keys: number; held_by_source: number; ms: number } | null;
  readonly only_in_source: string[];
  readonly only_in_target: string[];
}

export async function copyDatabase(o: CopyOptions): Promise<CopyResult> {
  const schema = await readTargetSchema(o.target);
  const selection = planTables(await o.source.tables(), schema, o.tables);
  const { order, cycle } = foreignKeyOrder(selection.plans.map((p) => p.target));
  if (cycle)
    throw new BadInputError(
      `tables ${cycle.join(', ')} reference each other in a cycle, so no order copies parents first; copy them with --tables in separate runs after making their foreign keys DEFERRABLE, or load them by hand`,
    );
  const plans = order.map((name) => selection.plans.find((p) => p.target.name === name)!);
  if (o.truncate) {
    const outside = [...schema.values()].filter(
      (t) => !order.includes(t.name) && t.references.some((r) => order.includes(r)),
    );
    if (outside.length)
      throw new BadInputError(
        `--truncate: ${outside.map((t) => t.name).join(', ')} reference(s) copied tables but are not copied, and ` +
          'PostgreSQL truncates a referenced table only together with the tables referencing it; add them to --tables',
      );
  }
  const checkpoint = Checkpoint.open(
    o.checkpointPath,
    { source: o.source.description, target: o.targetDescription, tables: order },
    o.truncate,
  );
  await o.target.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET statement_timeout = 0`);
  await acquireMigrationLock(o.target, o.lockWaitMs);
  try {
    for (const plan of plans) await settlePending(o.target, plan, checkpoint);
    const notEmpty: string[] = [];
    for (const plan of plans) {
      if (checkpoint.state.progress[plan.target.name]) continue;
      const { rows } = await o.target.query(`SELECT EXISTS (SELECT 1 FROM public.${q(plan.target.name)}) AS any`);
      if (rows[0].any) notEmpty.push(plan.target.name);
    }
    if (notEmpty.length && !o.truncate)
      throw new BadInputError(
        `target table(s) ${notEmpty.join(', ')} already have rows; nothing was copied. Pass --truncate to empty ` +
          `the copied tables first${o.checkpointPath ? '' : ', or --checkpoint FILE of the copy that filled them to resume it'}`,
      );
    let precheck: CopyResult['precheck'] = null;
    if (!checkpoint.state.prechecked) {
      const started = Date.now();
      const held = { n: 0 };
      const conflicts = await findUniqueConflicts(
        o.source,
        o.target,
        plans,
        Math.max(o.batchSize, 5000),
        (table) => o.onEvent?.({ type: 'precheck', table }),
        held,
      );
      if (conflicts.length) throw new UniqueConflictError(conflicts);
      precheck = {
        keys: plans.reduce((n, p) => n + p.target.uniqueKeys.length, 0),
        held_by_source: held.n,
        ms: Date.now() - started,
      };
      checkpoint.state.prechecked = true;
    }
    const truncated = o.truncate ? order : [];
    if (o.truncate && order.length) {
      await o.target.query(`TRUNCATE ${order.map((t) => `public.${q(t)}`).join(', ')}`);
    }
    checkpoint.save();
    const tables: TableResult[] = [];
    for (const plan of plans) tables.push(await copyTable(o, plan, checkpoint));
    return {
      tables,
      resumed: checkpoint.resumed,
      truncated,
      precheck,
      only_in_source: selection.onlyInSource,
      only_in_target: selection.onlyInTarget,
    };
  } finally {
    await releaseMigrationLock(o.target).catch(() => {});
  }
}

/** A batch named pending by a killed run: committed if its last row is in the target. */
async function settlePending(client: ClientBase, plan: TablePlan, checkpoint: Checkpoint): Promise<void> {
  const progress = checkpoint.state.progress[plan.target.name];
  if (!progress?.pending) return;
  const { pending } = progress;
  const table = `public.${q(plan.target.name)}`;
  const { rows } = pending.lastKey
    ? await client.query(
        `SELECT 1 FROM ${table} WHERE ${plan.target.primaryKey!.map((c, i) => `${q(c)} = $${i + 1}`).join(' AND ')}`,
        [...pending.lastKey],
      )
    : await client.query(`SELECT 1 FROM ${table} LIMIT 1`);
  if (rows.length) {
    progress.rows += pending.rows;
    progress.after = pending.end;
    if (!pending.lastKey) progress.status = 'done';
  }
  progress.pending = null;
  checkpoint.save();
}

async function copyTable(o: CopyOptions, plan: TablePlan, checkpoint: Checkpoint): Promise<TableResult> {
  const name = plan.target.name;
  const progress = checkpoint.table(name);
  const resumedFrom = progress.rows;
  const sourceRows = await o.source.count(plan.source.name);
  const started = Date.now();
  let batchSize: number | null = null;
  if (progress.status !== 'done') {
    o.onEvent?.({ type: 'table', table: name, sourceRows, done: progress.rows, mode: plan.mode });
    if (plan.mode === 'whole') await copyWhole(o, plan, checkpoint, progress, sourceRows);
    else if (streamable(o.source, plan)) {
      batchSize = o.streamBatchSize ?? o.batchSize;
      await copyStreamed(o, plan, o.source, checkpoint, progress, sourceRows);
    } else {
      batchSize = o.batchSize;
      await copyBatches(o, plan, checkpoint, progress, sourceRows);
    }
    await validateForeignKeys(o.target, plan);
    await advanceSequences(o.target, plan);
    progress.status = 'done';
    checkpoint.save();
  }
  const ms = Date.now() - started;
  const copied = progress.rows - resumedFrom;
  o.onEvent?.({ type: 'table-done', table: name, copied, ms });
  return {
    table: name,
    source_rows: sourceRows,
    copied,
    resumed_from: resumedFrom,
    ms,
    rows_per_second: copied && ms ? Math.round((copied * 1000) / ms) : null,
    mode: plan.mode,
    batch_size: batchSize,
    ...(plan.whole ? { whole_because: plan.whole } : {}),
  };
}

async function copyBatches(
  o: CopyOptions,
  plan: TablePlan,
  checkpoint: Checkpoint,
  progress: TableProgress,
  sourceRows: number,
): Promise<void> {
  const sql = copySql(plan);
  let inflight: Promise<void> | undefined;
  const settle = async () => {
    if (!inflight) return;
    const sent = inflight;
    inflight = undefined;
    await sent;
    const pending = progress.pending!;
    progress.rows += pending.rows;
    progress.after = pending.end;
    progress.pending = null;
    o.onEvent?.({ type: 'rows', table: plan.target.name, done: progress.rows, sourceRows });
  };
  try {
    for await (const batch of o.source.batches(plan.source, plan.sourceColumns, o.batchSize, progress.after)) {
      // Converted while the previous batch is still on its way to the server.
      const encoded = encodeRows(plan, batch.rows, progress.rows + (progress.pending?.rows ?? 0) + 1);
      await settle();
      progress.pending = { end: batch.end, rows: encoded.rows, lastKey: encoded.lastKey };
      checkpoint.save();
      inflight = sendBatch(o.target, plan, sql, encoded, batch.rows);
      // Keep a rejected batch from being reported as unhandled before settle() awaits it.
      inflight.catch(() => {});
    }
  } finally {
    // An error in a later batch still lets the one already sent finish and be recorded.
    try {
      await settle();
    } finally {
      checkpoint.save();
    }
  }
}

async function sendBatch(
  client: ClientBase,
  plan: TablePlan,
  sql: string,
  encoded: EncodedBatch,
  rows: readonly (readonly unknown[])[],
): Promise<void> {
  try {
    await sendCopy(client, batchSql(plan, sql), Buffer.from(encoded.text, 'utf8'));
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw explainCopyError(err, plan, (line) =>
      rows[line - 1] ? { row: rows[line - 1] as never, number: line } : undefined,
    );
  }
}

/** One batch's transaction as one query: the foreign keys set aside, the COPY, the keys back, COMMIT. */
function batchSql(plan: TablePlan, copy: string): string {
  const aside = foreignKeysAside(plan);
  return `BEGIN;${aside?.drop ?? ''}${copy};${aside?.restore ?? ''}COMMIT`;
}

/** The source's COPY text can go to the target unread: a PostgreSQL source, same types, its key among the columns. */
function streamable(source: Source, plan: TablePlan): source is Source & CopyOutSource {
  const keyColumns = (plan.source as PostgresSourceTable).keyColumns;
  return (
    canCopyOut(source) &&
    plan.passThrough &&
    !!keyColumns?.length &&
    keyColumns.every((k) => plan.sourceColumns.includes(k)) &&
    !!plan.keyIndexes?.length
  );
}

/**
 * PostgreSQL to PostgreSQL when no column needs converting: each batch is the source's `COPY (SELECT
 * … ORDER BY key LIMIT n) TO STDOUT` streamed into the target's COPY as it arrives, never parsed
 * here. Only newlines are counted and the last row kept: its key is the batch's end (for the next
 * batch and the checkpoint). The checkpoint names the batch as pending before CopyDone is sent, so
 * before the server can COMMIT it, exactly as copyBatches does.
 */
async function copyStreamed(
  o: CopyOptions,
  plan: TablePlan,
  source: CopyOutSource,
  checkpoint: Checkpoint,
  progress: TableProgress,
  sourceRows: number,
): Promise<void> {
  const table = plan.source as PostgresSourceTable;
  const endAt = table.keyColumns!.map((k) => plan.sourceColumns.indexOf(k));
  const lastKeyAt = plan.keyIndexes!;
  const sql = batchSql(plan, copySql(plan));
  const batchSize = o.streamBatchSize ?? o.batchSize;
  for (;;) {
    let rows = 0;
    let end: Position | null = null;
    const tally = new RowTally(async (t) => {
      const last = t.lastRow();
      if (!last) return;
      rows = t.rows;
      end = endAt.map((i) => last[i]!);
      progress.pending = { end, rows, lastKey: lastKeyAt.map((i) => last[i]!) };
      checkpoint.save();
    });
    try {
      await pipeline(
        source.copyOut(table, plan.sourceColumns, batchSize, progress.after),
        tally,
        o.target.query(copyFrom(sql)) as unknown as NodeJS.WritableStream,
      );
    } catch (err) {
      // A pending batch stays pending: whether it committed is settled by its last key on the next run.
      await o.target.query('ROLLBACK').catch(() => {});
      // The row a refusal names by line is looked up again in the source, by its place in the batch.
      const line = /COPY [^,]+, line (\d+)/.exec((err as any)?.where ?? '')?.[1];
      const keyColumns = plan.keyIndexes!.map((i) => plan.sourceColumns[i]);
      const key = line
        ? await source.rowAt(table, keyColumns, progress.after, Number(line)).catch(() => undefined)
        : undefined;
      const row: (string | null)[] = [];
      plan.keyIndexes!.forEach((at, i) => {
        row[at] = key?.[i] ?? null;
      });
      throw explainCopyError(err, plan, (n) => (key ? { row, number: progress.rows + n } : undefined));
    }
    if (!rows) return;
    progress.rows += rows;
    progress.after = end;
    progress.pending = null;
    o.onEvent?.({ type: 'rows', table: plan.target.name, done: progress.rows, sourceRows });
    if (rows < batchSize) return;
  }
}

/**
 * The table's foreign keys, dropped and added back NOT VALID in the same transaction as each batch,
 * so rows are not checked one by one as they arrive (that took three quarters of the server's time
 * for a child table) and a kill at any moment leaves every key in place: at worst NOT VALID, which
 * still checks new rows. Each key is validated in one pass when its table is complete.
 * Only for tables the user owns; otherwise rows are checked as they arrive.
 */
function foreignKeysAside(plan: TablePlan): { drop: string; restore: string } | null {
  const keys = plan.target.foreignKeys;
  if (!keys.length) return null;
  const table = `public.${q(plan.target.name)}`;
  return {
    drop: `ALTER TABLE ${table} ${keys.map((k) => `DROP CONSTRAINT ${q(k.name)}`).join(', ')};`,
    restore: `ALTER TABLE ${table} ${keys
      .map((k) => `ADD CONSTRAINT ${q(k.name)} ${k.definition.replace(/ NOT VALID$/, '')} NOT VALID`)
      .join(', ')};`,
  };
}

/**
 * Validates the keys set aside while the table's rows arrived. All of them, also one that was NOT
 * VALID before: every row of the table is new, and after a kill a key can no longer tell whether it
 * was NOT VALID before the copy or because of it.
 */
async function validateForeignKeys(client: ClientBase, plan: TablePlan): Promise<void> {
  for (const key of plan.target.foreignKeys) {
    try {
      await client.query(`ALTER TABLE public.${q(plan.target.name)} VALIDATE CONSTRAINT ${q(key.name)}`);
    } catch (err: any) {
      if (err?.code !== '23503') throw err;
      throw new ForeignKeyError(plan.target.name, key.name, `${err.detail ?? err.message}`);
    }
  }
}

/** One transaction and one COPY statement for the whole table. */
async function copyWhole(
  o: CopyOptions,
  plan: TablePlan,
  checkpoint: Checkpoint,
  progress: TableProgress,
  sourceRows: number,
): Promise<void> {
  let done = 0;
  async function* chunks() {
    for await (const batch of o.source.batches(plan.source, plan.sourceColumns, o.batchSize, null)) {
      const encoded = encodeRows(plan, batch.rows, done + 1);
      done += encoded.rows;
      o.onEvent?.({ type: 'rows', table: plan.target.name, done, sourceRows });
      yield encoded.text;
    }
  }
  const aside = foreignKeysAside(plan);
  await o.target.query(`BEGIN;${aside?.drop ?? ''}`);
  try {
    await copyIn(o.target, copySql(plan), chunks());
    if (aside) await o.target.query(aside.restore);
  } catch (err) {
    await o.target.query('ROLLBACK').catch(() => {});
    throw explainCopyError(err, plan, () => undefined);
  }
  progress.pending = { end: null, rows: done, lastKey: null };
  checkpoint.save();
  await o.target.query('COMMIT');
  progress.rows = done;
  progress.pending = null;
}

/** Serial and identity columns continue after the copied values, not from 1. */
async function advanceSequences(client: ClientBase, plan: TablePlan): Promise<void> {
  for (const [column, sequence] of plan.target.sequences) {
    if (!plan.columns.some((c) => c.name === column)) continue;
    await client.query(
      `SELECT setval($1::regclass, m) FROM (SELECT max(${q(column)}) AS m FROM public.${q(plan.target.name)}) s
        WHERE m IS NOT NULL`,
      [sequence],
    );
  }
}
