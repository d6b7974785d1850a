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
});
