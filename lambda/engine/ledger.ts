/**
 * The history table `orion_schema_history`: one row per applied version, plus failed attempts and
 * the progress of a non-transactional migration (status `incomplete`).
 */
import type { ClientBase } from 'pg';

export const LEDGER_TABLE = 'public.orion_schema_history';

export type LedgerStatus = 'applied' | 'incomplete' | 'failed' | 'reverted';

export interface LedgerRow {
  /** A bigint identity: kept whole, never narrowed to a JavaScript number. */
  readonly id: bigint;
  readonly version: bigint;
  /** The version as its tool writes it (null in rows written before labels were kept). */
  readonly label: string | null;
  readonly name: string;
  readonly status: LedgerStatus;
  /** The tool whose ledger said this version was applied (see adopt/), or null when orion-db applied it. */
  readonly adoptedFrom: string | null;
  readonly checksum: string;
  readonly appliedAt: Date;
  readonly executionMs: number | null;
  readonly deployId: string | null;
  /** For `incomplete`: how many statements of the file have run. */
  readonly statementsDone: number | null;
}

/** What the runner writes for an applied migration. */
export interface AppliedEntry {
  readonly version: bigint;
  readonly label: string;
  readonly name: string;
  readonly checksum: string;
  readonly downSql: string | null;
  readonly executionMs: number;
}

export interface FailureEntry {
  readonly version: bigint;
  readonly name: string;
  readonly checksum: string;
  readonly line: number;
  readonly sqlstate: string | null;
  readonly message: string;
}

/** Idempotent: a dry run runs it inside its rolled-back transaction, so even the ledger leaves no trace. */
export const CREATE_LEDGER = `
CREATE TABLE IF NOT EXISTS ${LEDGER_TABLE} (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  version         bigint NOT NULL,
  name            text NOT NULL,
  status          text NOT NULL CHECK (status IN ('applied', 'incomplete', 'failed', 'reverted')),
  checksum        text NOT NULL,
  down_sql        text,
  applied_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  applied_by      text NOT NULL DEFAULT session_user,
  execution_ms    integer,
  deploy_id       text,
  statements_done integer,
  failed_line     integer,
  sqlstate        text,
  message         text,
  reverted_at     timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS orion_schema_history_current
  ON ${LEDGER_TABLE} (version) WHERE status IN ('applied', 'incomplete');
REVOKE ALL ON ${LEDGER_TABLE} FROM PUBLIC;
${upgradeSql()}`;

/**
 * Brings a ledger written by an earlier orion-db to today's shape, keeping every row: the tool's
 * version label (Flyway's `1.2.3`, whose ordering key alone would not say it), the tool a row was
 * adopted from, and version 0 allowed (Diesel's `00000000000000_diesel_initial_setup`).
 */
function upgradeSql(): string {
  return `ALTER TABLE ${LEDGER_TABLE}
  ADD COLUMN IF NOT EXISTS version_label text,
  ADD COLUMN IF NOT EXISTS adopted_from text,
  DROP CONSTRAINT IF EXISTS orion_schema_history_version_check,
  ADD CONSTRAINT orion_schema_history_version_check CHECK (version >= 0);`;
}

/** Creates the table if missing. Call with the migration lock held. */
export async function ensureLedger(client: ClientBase): Promise<void> {
  const { rows } = await client.query(
    `SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS exists,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('${LEDGER_TABLE}')
                       AND attname = 'adopted_from' AND NOT attisdropped) AS current`,
  );
  if (!rows[0].exists) await client.query(CREATE_LEDGER);
  else if (!rows[0].current) await client.query(upgradeSql()); // once, on the first run of this version
}

/**
 * Applied and incomplete rows, by version; empty when the table does not exist yet. Without the
 * stored down scripts: every run reads this, only a revert needs those (`readDownScripts`).
 */
export async function readLedger(client: ClientBase): Promise<LedgerRow[]> {
  const { rows } = await client.query(`SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS exists`);
  if (!rows[0].exists) return [];
  const result = await client.query(
    // Through to_jsonb: a ledger of an earlier orion-db, not yet upgraded, has no label columns.
    `SELECT id, version::text, name, status, checksum, applied_at, execution_ms, deploy_id, statements_done,
            to_jsonb(h) ->> 'version_label' AS version_label, to_jsonb(h) ->> 'adopted_from' AS adopted_from
       FROM ${LEDGER_TABLE} h WHERE status IN ('applied', 'incomplete') ORDER BY version`,
  );
  return result.rows.map((r) => ({
    id: BigInt(r.id),
    version: BigInt(r.version),
    label: r.version_label,
    adoptedFrom: r.adopted_from,
    name: r.name,
    status: r.status,
    checksum: r.checksum,
    appliedAt: r.applied_at,
    executionMs: r.execution_ms,
    deployId: r.deploy_id,
    statementsDone: r.statements_done,
  }));
}

/** A failed (or interrupted) attempt, as recorded. */
export interface FailedAttempt {
  readonly version: bigint;
  readonly name: string;
  /** When the attempt started. */
  readonly at: Date;
  readonly line: number | null;
  readonly sqlstate: string | null;
  readonly message: string;
}

/** The most recent failed attempt, or undefined (also when there is no ledger yet). */
export async function readLastFailure(client: ClientBase): Promise<FailedAttempt | undefined> {
  const { rows } = await client.query(`SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS exists`);
  if (!rows[0].exists) return undefined;
  const result = await client.query(
    `SELECT version::text, name, applied_at, failed_line, sqlstate, message
       FROM ${LEDGER_TABLE} WHERE status = 'failed' ORDER BY id DESC LIMIT 1`,
  );
  const r = result.rows[0];
  if (!r) return undefined;
  return {
    version: BigInt(r.version),
    name: r.name,
    at: r.applied_at,
    line: r.failed_line,
    sqlstate: r.sqlstate,
    message: r.message ?? '',
  };
}

/** The down scripts stored with these rows, by row id (null where none was stored). */
export async function readDownScripts(client: ClientBase, ids: readonly bigint[]): Promise<Map<bigint, string | null>> {
  const { rows } = await client.query(`SELECT id, down_sql FROM ${LEDGER_TABLE} WHERE id = ANY($1::bigint[])`, [
    ids.map(String),
  ]);
  return new Map(rows.map((r) => [BigInt(r.id), r.down_sql as string | null]));
}

/** One INSERT for a whole batch, so a batch costs one round trip of bookkeeping. */
export function insertAppliedQuery(
  entries: readonly AppliedEntry[],
  deployId: string | null,
): { text: string; values: unknown[] } {
  // One array per column: five parameters whatever the batch size (a VALUES list of 300 rows took
  // the server longer to parse and plan than to insert).
  return {
    text: `INSERT INTO ${LEDGER_TABLE} (version, name, status, checksum, down_sql, execution_ms, deploy_id, version_label)
           SELECT version, name, 'applied', checksum, down_sql, execution_ms, $6, label
           FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::integer[], $7::text[]) WITH ORDINALITY
                AS e(version, name, checksum, down_sql, execution_ms, label, n)
           ORDER BY n`,
    values: [
      entries.map((e) => e.version.toString()),
      entries.map((e) => e.name),
      entries.map((e) => e.checksum),
      entries.map((e) => e.downSql),
      entries.map((e) => e.executionMs),
      deployId,
      entries.map((e) => e.label),
    ],
  };
}

/** Records a failed attempt; run it outside the failed transaction so it survives the rollback. */
export async function recordFailure(client: ClientBase, f: FailureEntry, deployId: string | null): Promise<void> {
  await client.query(
    `INSERT INTO ${LEDGER_TABLE} (version, name, status, checksum, failed_line, sqlstate, message, deploy_id)
     VALUES ($1::bigint, $2, 'failed', $3, $4, $5, $6, $7)`,
    [f.version.toString(), f.name, f.checksum, f.line, f.sqlstate, f.message, deployId],
  );
}

/** Starts tracking a non-transactional migration; returns the row id. */
export async function startIncomplete(
  client: ClientBase,
  m: Omit<AppliedEntry, 'executionMs'>,
  deployId: string | null,
): Promise<bigint> {
  const { rows } = await client.query(
    `INSERT INTO ${LEDGER_TABLE} (version, name, status, checksum, down_sql, statements_done, deploy_id, version_label)
     VALUES ($1::bigint, $2, 'incomplete', $3, $4, 0, $5, $6) RETURNING id`,
    [m.version.toString(), m.name, m.checksum, m.downSql, deployId, m.label],
  );
  return BigInt(rows[0].id);
}

export function progressQuery(id: bigint, statementsDone: number): string {
  return `UPDATE ${LEDGER_TABLE} SET statements_done = ${statementsDone | 0} WHERE id = ${BigInt(id)}`;
}

export async function completeIncomplete(client: ClientBase, id: bigint, executionMs: number): Promise<void> {
  await client.query(
    `UPDATE ${LEDGER_TABLE} SET status = 'applied', execution_ms = $2, applied_at = clock_timestamp() WHERE id = $1`,
    [id.toString(), executionMs],
  );
}

/** Marks applied rows reverted (inside the down transaction). */
export function revertQuery(ids: readonly bigint[]): { text: string; values: unknown[] } {
  return {
    text: `UPDATE ${LEDGER_TABLE} SET status = 'reverted', reverted_at = clock_timestamp() WHERE id = ANY($1::bigint[])`,
    values: [ids.map(String)],
  };
}

const INTERRUPTED =
  'interrupted: the run stopped (process killed, connection lost) before this batch committed or rolled back';

/** A batch's attempt, written before it starts as an interrupted failure; its commit deletes it. */
export async function startAttempt(
  client: ClientBase,
  m: { version: bigint; name: string; checksum: string },
  deployId: string | null,
): Promise<bigint> {
  const { rows } = await client.query(
    `INSERT INTO ${LEDGER_TABLE} (version, name, status, checksum, message, deploy_id) VALUES ($1::bigint, $2, 'failed', $3, $4, $5) RETURNING id`,
    [m.version.toString(), m.name, m.checksum, INTERRUPTED, deployId],
  );
  return BigInt(rows[0].id);
}

export function deleteAttemptQuery(id: bigint): string {
  return `DELETE FROM ${LEDGER_TABLE} WHERE id = ${BigInt(id)}`;
}

/** Replaces an attempt's "interrupted" with what actually failed. */
export async function finishAttempt(client: ClientBase, id: bigint, f: FailureEntry): Promise<void> {
  await client.query(
    `UPDATE ${LEDGER_TABLE} SET version = $2::bigint, name = $3, checksum = $4, failed_line = $5, sqlstate = $6, message = $7 WHERE id = $1`,
    [id.toString(), f.version.toString(), f.name, f.checksum, f.line, f.sqlstate, f.message],
  );
}

/** A migration recorded as applied by another tool (or a proven baseline), not run by orion-db. */
export interface AdoptedEntry {
  readonly version: bigint;
  readonly label: string;
  readonly name: string;
  /** The current file's checksum: from here on, an edit to it is caught like any other. */
  readonly checksum: string;
  readonly downSql: string | null;
  /** When the other tool applied it, where its ledger says; else now. */
  readonly appliedAt: Date | null;
}

/**
 * Creates the ledger with the adopted rows, in the caller's transaction: both or neither, so a run
 * that dies here leaves no empty ledger that would hide the foreign one from the next run.
 */
export async function insertAdopted(
  client: ClientBase,
  entries: readonly AdoptedEntry[],
  from: string,
  deployId: string | null,
): Promise<void> {
  await client.query(CREATE_LEDGER);
  if (entries.length === 0) return;
  await client.query(
    `INSERT INTO ${LEDGER_TABLE} (version, version_label, name, status, checksum, down_sql, applied_at, deploy_id, adopted_from)
     SELECT version, label, name, 'applied', checksum, down_sql, coalesce(applied_at, clock_timestamp()), $7, $8
       FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) WITH ORDINALITY
            AS e(version, label, name, checksum, down_sql, applied_at, n)
      ORDER BY n`,
    [
      entries.map((e) => e.version.toString()),
      entries.map((e) => e.label),
      entries.map((e) => e.name),
      entries.map((e) => e.checksum),
      entries.map((e) => e.downSql),
      entries.map((e) => e.appliedAt),
      deployId,
      from,
    ],
  );
}

/** Whether `orion_schema_history` exists (even empty): then this database is orion-db's already. */
export async function ledgerExists(client: ClientBase): Promise<boolean> {
  return (await client.query(`SELECT to_regclass('${LEDGER_TABLE}') IS NOT NULL AS e`)).rows[0].e;
}
