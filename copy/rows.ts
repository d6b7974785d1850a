/**
 * Rows into the target: a batch converted to COPY text (a conversion failure names table, key and
 * column before anything is sent), and COPY … FROM STDIN through pg-copy-streams. A value the
 * server still refuses (a varchar too long, an enum label it does not know) is mapped back from
 * COPY's "line N, column C" to the row's key.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ClientBase } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdent as q } from '../lambda/engine/db';
import { ConversionProblem, copyField, isEscapeFree, type SourceValue } from './convert';
import { ConversionError } from './errors';
import { describeKey, type TablePlan } from './plan';

export interface EncodedBatch {
  readonly text: string;
  readonly rows: number;
  /** Target key values (text) of the last row, to find it again after a kill. */
  readonly lastKey: string[] | null;
}

/** Converts `rows` for `plan`; `firstRow` numbers rows in messages when the table has no key. */
export function encodeRows(plan: TablePlan, rows: readonly SourceValue[][], firstRow: number): EncodedBatch {
  const { converters } = plan;
  const width = converters.length;
  const plain = converters.map(isEscapeFree);
  // One string built by appending (V8 keeps it as a rope until it is written out): no array per row.
  let text = '';
  let r = 0;
  let c = 0;
  try {
    for (r = 0; r < rows.length; r++) {
      const row = rows[r];
      for (c = 0; c < width; c++) {
        const v = converters[c](row[c]);
        const field = v === null ? '\\N' : plain[c] ? v : copyField(v);
        text += c === 0 ? field : `\t${field}`;
      }
      text += '\n';
    }
  } catch (err) {
    if (!(err instanceof ConversionProblem)) throw err;
    throw new ConversionError(
      plan.target.name,
      describeKey(plan, rows[r], firstRow + r),
      plan.columns[c].name,
      `${err.message} (target type ${plan.columns[c].type})`,
    );
  }
  const last = rows[rows.length - 1];
  const lastKey =
    plan.mode === 'batches' && plan.keyIndexes && last ? plan.keyIndexes.map((i) => converters[i](last[i])!) : null;
  return { text, rows: rows.length, lastKey };
}

export function copySql(plan: TablePlan, table = `public.${q(plan.target.name)}`): string {
  return `COPY ${table} (${plan.columns.map((c) => q(c.name)).join(', ')}) FROM STDIN`;
}

/** Bytes per CopyData message: COPY does not need messages to end at rows, and the server caps a message at 1 GB. */
const MESSAGE_BYTES = 1 << 20;

/**
 * Runs `sql`, a simple query whose one COPY … FROM STDIN reads `data` (other statements may come before
 * and after it, e.g. BEGIN and COMMIT), sending the query, the data and CopyDone at once instead of
 * waiting for the server's CopyInResponse first: one round trip per batch, and the server works on it
 * while this process prepares the next one. Safe when a statement before the COPY fails: the server
 * ignores CopyData and CopyDone outside a COPY (the protocol says so for this case).
 */
export function sendCopy(client: ClientBase, sql: string, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: unknown;
    const query = {
      submit(connection: any) {
        connection.query(sql);
        for (let at = 0; at < data.length; at += MESSAGE_BYTES) {
          connection.sendCopyFromChunk(data.subarray(at, Math.min(at + MESSAGE_BYTES, data.length)));
        }
        connection.endCopyFrom();
      },
      handleCopyInResponse() {},
      handleCommandComplete() {},
      handleEmptyQuery() {},
      // pg calls this on the error, and handleReadyForQuery only on success.
      handleError(err: unknown) {
        failed = err;
        reject(err);
      },
      handleReadyForQuery() {
        if (!failed) resolve();
      },
      callback() {},
    };
    (client as any).query(query);
  });
}

/** Streams `chunks` into one COPY statement. */
export async function copyIn(client: ClientBase, sql: string, chunks: Iterable<string> | AsyncIterable<string>) {
  await pipeline(
    Readable.from(chunks, { objectMode: false }),
    client.query(copyFrom(sql)) as unknown as NodeJS.WritableStream,
  );
}

/**
 * A server error from COPY, with the row it names (COPY counts lines from 1 in the statement) when
 * `rowAt` can give it; other errors unchanged.
 */
export function explainCopyError(
  err: any,
  plan: TablePlan,
  rowAt: (line: number) => { row: readonly SourceValue[]; number: number } | undefined,
): unknown {
  const m = typeof err?.where === 'string' ? /COPY [^,]+, line (\d+)(?:, column ([^:]+))?/.exec(err.where) : null;
  if (!m) return err;
  const found = rowAt(Number(m[1]));
  const key = found ? describeKey(plan, found.row, found.number) : `line ${m[1]} of the COPY`;
  return new ConversionError(
    plan.target.name,
    key,
    m[2] ?? null,
    `the server refused it: ${err.message}`,
    err.code,
    err.detail || undefined,
  );
}
