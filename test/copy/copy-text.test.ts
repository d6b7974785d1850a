/**
 * Counting rows and finding the last one in COPY text as it streams past, however the stream is cut
 * into chunks (a chunk may end mid-row, mid-escape, or hold many rows).
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { copyField } from '../../copy/convert';
import { RowTally, unescapeField } from '../../copy/copy-text';

async function tally(chunks: Buffer[]): Promise<{ rows: number; last: (string | null)[] | undefined; out: Buffer }> {
  const got: Buffer[] = [];
  let atEnd: { rows: number; last: (string | null)[] | undefined } | undefined;
  const t = new RowTally(async (x) => {
    atEnd = { rows: x.rows, last: x.lastRow() };
  });
  await pipeline(
    Readable.from(chunks),
    t,
    new Writable({
      write(chunk, _e, done) {
        got.push(chunk);
        done();
      },
    }),
  );
  return { ...atEnd!, out: Buffer.concat(got) };
}

function cut(bytes: Buffer, at: number[]): Buffer[] {
  const points = [...new Set(at.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const parts: Buffer[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) parts.push(bytes.subarray(from, p));
    from = Math.max(from, p);
  }
  return parts;
}

const value = fc.oneof(
  fc.constant(null),
  fc.string({ unit: fc.constantFrom('a', 'ü', '✓', '\t', '\n', '\r', '\\', 'N', ' ', '\b', '\v', '\f') }),
);

describe('RowTally', () => {
  test('rows and the last row, any rows, any cuts', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(value, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (rows, at) => {
          const width = rows[0].length;
          const table = rows.map((r) => Array.from({ length: width }, (_, i) => r[i] ?? null));
          const text = Buffer.from(table.map((r) => `${r.map(copyField).join('\t')}\n`).join(''), 'utf8');
          const { rows: n, last, out } = await tally(cut(text, at));
          expect(out.equals(text)).toBe(true);
          expect(n).toBe(table.length);
          expect(last).toEqual(table.at(-1));
        },
      ),
    );
  });

  test('no rows: none counted, no last row', async () => {
    expect(await tally([])).toMatchObject({ rows: 0, last: undefined });
  });
});

describe('unescapeField', () => {
  test("COPY's escapes, \\N, octal and hex", () => {
    expect(unescapeField('\\N')).toBeNull();
    expect(unescapeField('a\\tb\\nc\\\\d\\re\\bf\\fg\\vh')).toBe('a\tb\nc\\d\re\bf\fg\vh');
    expect(unescapeField('\\101\\x42')).toBe('AB');
    expect(unescapeField('plain')).toBe('plain');
  });
});
