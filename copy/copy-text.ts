/**
 * Reading COPY's text format as it streams past, without parsing the rows: how many rows went by, and
 * the fields of the last one (a batch's last key, for the checkpoint). COPY ends every row with a
 * newline and escapes the ones inside values, so rows are counted by counting newlines.
 */
import { Transform, type TransformCallback } from 'node:stream';

const NEWLINE = 0x0a;

/** Passes COPY text through unchanged; `rows` and `lastRow()` describe what went by. */
export class RowTally extends Transform {
  rows = 0;
  /** The bytes from the start of the last complete row, or of the row still arriving. */
  private tail: Buffer[] = [];

  constructor(private readonly beforeEnd: (tally: RowTally) => Promise<void>) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) this.rows++;
    // Keep the bytes after the last newline that is not the chunk's final byte: the last row, whole or
    // still arriving (at most one row's bytes).
    const inner = chunk.length > 1 ? chunk.lastIndexOf(NEWLINE, chunk.length - 2) : -1;
    if (inner !== -1) this.tail = [chunk.subarray(inner + 1)];
    else if (this.tail.length && this.tail[this.tail.length - 1].at(-1) === NEWLINE) this.tail = [chunk];
    else this.tail.push(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.beforeEnd(this).then(
      () => done(),
      (err) => done(err),
    );
  }

  /** The fields of the last row, unescaped (null for \N); undefined when no row went by. */
  lastRow(): (string | null)[] | undefined {
    if (!this.rows) return undefined;
    const text = Buffer.concat(this.tail).toString('utf8');
    const line = text.endsWith('\n') ? text.slice(0, -1) : text;
    return line.split('\t').map(unescapeField);
  }
}

const ESCAPES: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One field of COPY's text format as the value it stands for. */
export function unescapeField(field: string): string | null {
  if (field === '\\N') return null;
  if (!field.includes('\\')) return field;
  return field.replace(/\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)/g, (_, e: string) => {
    if (e[0] === 'x' && e.length > 1) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return ESCAPES[e] ?? e;
  });
}
