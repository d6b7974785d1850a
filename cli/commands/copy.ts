/**
 * `orion-db copy --from SRC --to URL`: opens both ends, runs the copy engine (copy/copy.ts), and
 * shows progress on stderr: a live line per table on a terminal, one line per table otherwise.
 */
import { type CopyEvent, copyDatabase } from '../../copy/copy';
import { openSource } from '../../copy/open-source';
import { parseSource, postgresUrl } from '../../copy/source';
import { connect, redactUrl } from '../../lambda/engine/db';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from '../context';

/** Rows per batch, unless --batch-size says otherwise, where PostgreSQL's COPY text streams through unread. */
const STREAM_BATCH_SIZE = 50_000;

export async function copy(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const spec = parseSource(options.from!, '--from', options.cwd);
  const targetUrl = postgresUrl(options.target!, '--to');
  const source = await openSource(spec);
  try {
    const target = await connect(targetUrl, { applicationName: 'orion-db copy' });
    try {
      const result = await copyDatabase({
        source,
        target,
        targetDescription: redactUrl(targetUrl),
        tables: options.tables,
        batchSize: options.batchSize,
        // Streamed batches hold nothing in memory here; larger ones spend less on per-batch round trips.
        streamBatchSize: options.batchSizeGiven ? options.batchSize : STREAM_BATCH_SIZE,
        checkpointPath: options.checkpoint,
        truncate: options.truncate,
        lockWaitMs: options.lockWaitMs,
        onEvent: progressRenderer(ctx.progress, process.stderr.isTTY === true),
      });
      const report = emptyReport('copy');
      Object.assign(report, {
        source: source.description,
        target: redactUrl(targetUrl),
        // What ran: streamed PostgreSQL tables use their own size; per table in tables[].batch_size.
        batch_size: reportedBatchSize(result.tables.map((t) => t.batch_size)),
        checkpoint: options.checkpoint ?? null,
        ...result,
      });
      return report;
    } finally {
      await target.end();
    }
  } finally {
    await source.close();
  }
}

/** The one batch size the tables ran with; null when they differ or none ran in batches. */
function reportedBatchSize(sizes: readonly (number | null)[]): number | null {
  const ran = new Set(sizes.filter((n) => n !== null));
  return ran.size === 1 ? [...ran][0] : null;
}

/** Rows per second and the time left, per table; redrawn in place on a terminal. */
export function progressRenderer(print: (line: string) => void, live: boolean): (e: CopyEvent) => void {
  let started = 0;
  let startRows = 0;
  let lastDraw = 0;
  return (e) => {
    if (e.type === 'precheck') {
      if (!live) return;
      process.stderr.write(`\r\x1b[Kchecking unique keys: ${e.table}`);
    } else if (e.type === 'table') {
      started = Date.now();
      startRows = e.done;
      if (live) process.stderr.write('\r\x1b[K');
      print(
        `${e.table}: ${e.sourceRows.toLocaleString('en')} rows${e.done ? `, resuming after ${e.done.toLocaleString('en')}` : ''}` +
          (e.mode === 'whole' ? ' (in one transaction)' : ''),
      );
    } else if (e.type === 'rows' && live) {
      const now = Date.now();
      if (now - lastDraw < 200 && e.done < e.sourceRows) return;
      lastDraw = now;
      const rate = ((e.done - startRows) * 1000) / Math.max(1, now - started);
      const eta = rate > 0 ? Math.max(0, (e.sourceRows - e.done) / rate) : NaN;
      const pct = e.sourceRows ? Math.min(100, (100 * e.done) / e.sourceRows) : 100;
      process.stderr.write(
        `\r\x1b[K  ${e.table} ${e.done.toLocaleString('en')}/${e.sourceRows.toLocaleString('en')} (${pct.toFixed(0)} %)` +
          `  ${Math.round(rate).toLocaleString('en')} rows/s  ETA ${Number.isFinite(eta) ? `${Math.ceil(eta)} s` : '?'}`,
      );
    } else if (e.type === 'table-done') {
      if (live) process.stderr.write('\r\x1b[K');
      const rate = e.ms ? Math.round((e.copied * 1000) / e.ms) : 0;
      print(
        `  ${e.table}: copied ${e.copied.toLocaleString('en')} rows in ${(e.ms / 1000).toFixed(1)} s (${rate.toLocaleString('en')} rows/s)`,
      );
    }
  };
}
