/**
 * The hand-written calendar arithmetic of the time conversions, against JavaScript's Date over the
 * years 0001–9999, and ISO text in every zone form against the instant it names.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { converterFor } from '../../copy/convert';
import type { TargetColumn } from '../../copy/target';

const column = (baseType: string): TargetColumn => ({
  name: 'c',
  type: baseType,
  baseType,
  isArray: false,
  notNull: false,
  hasDefault: false,
  deterministic: true,
});
const timestamptz = converterFor(column('timestamptz'));
const timestamp = converterFor(column('timestamp'));
const date = converterFor(column('date'));
const FIRST = -62135596800; // 0001-01-01T00:00:00Z
const LAST = 253402300799; // 9999-12-31T23:59:59Z

const iso = (seconds: number) => {
  const d = new Date(0);
  d.setTime(seconds * 1000);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.000Z$/, '');
};

describe('time conversions', () => {
  test('unix seconds and milliseconds give the instant Date gives, over years 1–9999', () => {
    fc.assert(
      fc.property(fc.integer({ min: FIRST, max: LAST }), (s) => {
        if (Math.abs(s) < 1e11) expect(timestamptz(s)).toBe(`${iso(s)}+00`);
        // Milliseconds from ±1e11 on (SQLite integers arrive as BigInt).
        if (Math.abs(s) >= 1e8) expect(timestamp(BigInt(s) * 1000n)).toBe(iso(s));
      }),
      { numRuns: 2000 },
    );
  });

  test('ISO text with a zone becomes UTC for timestamp; text PostgreSQL reads alike goes through as written', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: FIRST + 86400, max: LAST - 86400 }),
        fc.integer({ min: -14 * 60, max: 14 * 60 }),
        (s, offset) => {
          const local = iso(s + offset * 60).replace(' ', 'T');
          const sign = offset < 0 ? '-' : '+';
          const zone = `${sign}${String(Math.floor(Math.abs(offset) / 60)).padStart(2, '0')}:${String(Math.abs(offset) % 60).padStart(2, '0')}`;
          expect(timestamp(`${local}${zone}`)).toBe(iso(s));
          expect(timestamptz(`${local}${zone}`)).toBe(`${local}${zone}`);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('fractions, dates, and what is refused', () => {
    expect(timestamptz(1704164645.25)).toBe('2024-01-02 03:04:05.25+00');
    expect(timestamptz(1704164645123)).toBe('2024-01-02 03:04:05.123+00');
    expect(timestamp('2024-01-02T05:04:05.5+02:00')).toBe('2024-01-02 03:04:05.5');
    expect(date('2024-01-02T23:30:00-02:00')).toBe('2024-01-03');
    expect(date(0)).toBe('1970-01-01');
    expect(() => timestamptz('2023-02-29 00:00:00')).toThrow('is not a valid date and time');
    expect(timestamptz('2024-02-29 00:00:00')).toBe('2024-02-29 00:00:00');
    expect(() => timestamptz('yesterday')).toThrow('is not a time');
    expect(() => timestamptz(Number.POSITIVE_INFINITY)).toThrow('is not a time');
  });

  test('the fast path for the usual ISO shapes decides as the general parser does (which also reads a leading space)', () => {
    const ch = (xs: string) => fc.constantFrom(...xs.split(''));
    const d = ch('0123456789');
    const shaped = fc
      .tuple(
        fc.array(d, { minLength: 4, maxLength: 4 }),
        fc.constantFrom('-', '/'),
        fc.integer({ min: 0, max: 13 }).map((n) => String(n).padStart(2, '0')),
        fc.integer({ min: 0, max: 32 }).map((n) => String(n).padStart(2, '0')),
        fc.constantFrom('T', ' ', 't'),
        fc.oneof(
          fc
            .tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 61 }))
            .map((t) => t.map((n) => String(n).padStart(2, '0'))),
          fc.array(ch('0123456789:x'), { minLength: 8, maxLength: 8 }),
        ),
        fc.constantFrom('', '.', '.5', '.123456', ',5'),
        fc.constantFrom('', 'Z', 'z', '+08', '-02:30', '+0530', 'UTC', '+1', ' ', 'x'),
      )
      .map(([y, dash, mo, day, t, time, fraction, zone]) =>
        [
          y.join(''),
          dash,
          mo,
          '-',
          day,
          t,
          Array.isArray(time) && time.length === 3 ? time.join(':') : time.join(''),
          fraction,
          zone,
        ].join(''),
      );
    const outcome = (f: (v: string) => string | null, v: string) => {
      try {
        return f(v);
      } catch (err) {
        return (err as Error).message.replace(/^text "\s*/, 'text "');
      }
    };
    fc.assert(
      fc.property(shaped, (v) => {
        for (const f of [timestamptz, timestamp]) expect(outcome(f, v)).toBe(outcome(f, ` ${v}`));
      }),
      { numRuns: 5000 },
    );
    expect(timestamptz('2024-02-29T23:59:59.5+05:30')).toBe('2024-02-29T23:59:59.5+05:30');
    expect(timestamp('2024-02-29 23:59:59.5Z')).toBe('2024-02-29 23:59:59.5');
    expect(() => timestamptz('2023-02-29T00:00:00Z')).toThrow('is not a valid date and time');
  });
});
