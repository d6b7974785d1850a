/**
 * Values read from a source (SQLite's storage classes, or PostgreSQL's text output) converted to what
 * the *target* column's type accepts, as the text COPY reads. A value that does not convert throws a
 * ConversionProblem; the caller adds table, key and column.
 *
 * Written by hand: no library converts SQLite's loosely typed values (ISO text or unix seconds for
 * a time, 0/1 for a boolean, …) to PostgreSQL's types. PostgreSQL still parses every value, so a
 * converter only has to choose the right text and refuse what would otherwise be stored wrongly.
 */
import type { TargetColumn } from './target';

/** What a source hands over for one value: SQLite's null/integer/real/text/blob, or a boolean. */
export type SourceValue = null | string | number | bigint | boolean | Uint8Array;

/** The text PostgreSQL's input function gets, or null for NULL. */
export type Converter = (value: SourceValue) => string | null;

export class ConversionProblem extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function converterFor(column: TargetColumn): Converter {
  if (column.isArray) return toArray;
  switch (column.baseType) {
    case 'uuid':
      return toUuid;
    case 'timestamptz':
      return (v) => toTimestamp(v, true);
    case 'timestamp':
      return (v) => toTimestamp(v, false);
    case 'date':
      return toDate;
    case 'bool':
      return toBoolean;
    case 'jsonb':
      return (v) => toJson(v, true);
    case 'json':
      return (v) => toJson(v, false);
    case 'bytea':
      return toBytea;
    case 'int2':
      return (v) => toInteger(v, 16);
    case 'int4':
      return (v) => toInteger(v, 32);
    case 'int8':
      return (v) => toInteger(v, 64);
    case 'numeric':
      return (v) => toNumber(v, NUMERIC);
    case 'float4':
    case 'float8':
      return (v) => toNumber(v, FLOAT);
    default:
      return toText;
  }
}

function describe(v: SourceValue): string {
  if (v instanceof Uint8Array) return `a ${v.length}-byte blob`;
  const s = typeof v === 'string' ? JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v) : String(v);
  return `${typeof v === 'string' ? 'text' : typeof v === 'boolean' ? 'boolean' : 'number'} ${s}`;
}

function fail(v: SourceValue, what: string): never {
  throw new ConversionProblem(`${describe(v)} is not ${what}`);
}

function noNul(s: string): string {
  if (s.includes('\0')) throw new ConversionProblem('text contains a NUL character, which PostgreSQL cannot store');
  return s;
}

export function toText(v: SourceValue): string | null {
  if (v === null) return null;
  if (typeof v === 'string') return noNul(v);
  if (v instanceof Uint8Array) {
    try {
      return noNul(utf8.decode(v));
    } catch {
      throw new ConversionProblem(`${describe(v)} is not valid UTF-8 text`);
    }
  }
  return String(v);
}

const UUID = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

function toUuid(v: SourceValue): string | null {
  if (v === null) return null;
  if (v instanceof Uint8Array) {
    if (v.length !== 16) fail(v, 'a uuid (16 bytes)');
    const h = Buffer.from(v).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  const m = typeof v === 'string' ? UUID.exec(v.trim()) : null;
  if (!m) fail(v, 'a uuid');
  return `${m[1]}-${m[2]}-${m[3]}-${m[4]}-${m[5]}`.toLowerCase();
}

const TRUE = new Set(['1', 't', 'true', 'y', 'yes', 'on']);
const FALSE = new Set(['0', 'f', 'false', 'n', 'no', 'off']);

function toBoolean(v: SourceValue): string | null {
  if (v === null) return null;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (typeof v === 'number' || typeof v === 'bigint') {
    if (v === 0 || v === 0n) return 'f';
    if (v === 1 || v === 1n) return 't';
    fail(v, 'a boolean (0 or 1)');
  }
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (TRUE.has(s)) return 't';
    if (FALSE.has(s)) return 'f';
  }
  fail(v, 'a boolean');
}

const INTEGER = /^\s*[+-]?\d+\s*$/;

function toInteger(v: SourceValue, bits: 16 | 32 | 64): string | null {
  if (v === null) return null;
  let n: bigint;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'number' && Number.isInteger(v)) n = BigInt(v);
  else if (typeof v === 'boolean') n = v ? 1n : 0n;
  else if (typeof v === 'string' && INTEGER.test(v)) n = BigInt(v.trim());
  else fail(v, `an integer`);
  const max = (1n << BigInt(bits - 1)) - 1n;
  if (n > max || n < -max - 1n) fail(v, `within the range of a ${bits}-bit integer`);
  return n.toString();
}

const NUMERIC = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*(nan|[+-]?inf(inity)?)\s*$/i;
const FLOAT = NUMERIC;

function toNumber(v: SourceValue, shape: RegExp): string | null {
  if (v === null) return null;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string' && shape.test(v)) return v.trim();
  fail(v, 'a number');
}

function toJson(v: SourceValue, binary: boolean): string | null {
  if (v === null) return null;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  const s = v instanceof Uint8Array ? toText(v)! : v;
  try {
    JSON.parse(s);
  } catch (err) {
    throw new ConversionProblem(`${describe(v)} is not JSON (${(err as Error).message})`);
  }
  if (binary && s.includes('\\u0000'))
    throw new ConversionProblem('JSON text contains \\u0000, which jsonb cannot store');
  return noNul(s);
}

function toBytea(v: SourceValue): string | null {
  if (v === null) return null;
  if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
  if (typeof v === 'string') return `\\x${Buffer.from(v, 'utf8').toString('hex')}`;
  fail(v, 'bytes (a blob or text)');
}

/** A JSON array in text (how SQLite applications usually keep lists) becomes an array literal. */
function toArray(v: SourceValue): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') fail(v, 'an array (a JSON array or an array literal)');
  const s = v.trim();
  if (!s.startsWith('[')) return noNul(s);
  let parsed: unknown;
  try {
    parsed = JSON.parse(s);
  } catch {
    fail(v, 'a JSON array');
  }
  return noNul(arrayLiteral(parsed));
}

function arrayLiteral(value: unknown): string {
  if (Array.isArray(value)) return `{${value.map(arrayLiteral).join(',')}}`;
  if (value === null) return 'NULL';
  if (typeof value === 'object') return quoteElement(JSON.stringify(value));
  return quoteElement(String(value));
}

function quoteElement(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

// Times. SQLite has no time type: applications keep ISO-8601 text (SQLAlchemy: "2024-01-02 03:04:05.123456",
// without a zone, meaning UTC) or unix seconds / milliseconds in an integer or real.

const ISO =
  /^\s*([+-]?\d{4,6})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?\s*$/;
/** Below this an epoch number is seconds (up to the year 5138), at or above it milliseconds (after 1973-03-03). */
const MILLISECONDS_FROM = 1e11;

interface Instant {
  /** Whole seconds since the epoch, as written (local to `zoned` === false) or UTC. */
  readonly seconds: number;
  /** Digits after the decimal point, as written. */
  readonly fraction: string;
  readonly zoned: boolean;
}

function parseInstant(v: SourceValue): Instant {
  if (typeof v === 'bigint') v = Number(v);
  if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) v = Number(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(v, 'a time');
    const seconds = Math.abs(v) >= MILLISECONDS_FROM ? v / 1000 : v;
    const whole = Math.floor(seconds);
    const micros = Math.round((seconds - whole) * 1e6);
    return { seconds: whole, fraction: micros ? String(micros).padStart(6, '0').replace(/0+$/, '') : '', zoned: true };
  }
  const m = typeof v === 'string' ? ISO.exec(v) : null;
  if (!m) fail(v, 'a time (ISO-8601 text or unix seconds/milliseconds)');
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = m;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  date.setUTCHours(Number(h), Number(mi), Number(s), 0);
  if (
    date.getUTCFullYear() !== Number(y) ||
    date.getUTCMonth() !== Number(mo) - 1 ||
    date.getUTCDate() !== Number(d) ||
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(s) > 59
  ) {
    fail(v, 'a valid date and time');
  }
  let offsetMinutes = 0;
  if (zone && !/^(z|utc)$/i.test(zone)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(zone)!;
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0));
  }
  return { seconds: date.getTime() / 1000 - offsetMinutes * 60, fraction: fraction.replace(/0+$/, ''), zoned: true };
}

function formatInstant(t: Instant, withZone: boolean): string {
  const iso = new Date(t.seconds * 1000).toISOString(); // 2024-01-02T03:04:05.000Z
  const base = `${iso.slice(0, 10)} ${iso.slice(11, 19)}${t.fraction ? `.${t.fraction}` : ''}`;
  return withZone ? `${base}+00` : base;
}

function toTimestamp(v: SourceValue, withZone: boolean): string | null {
  if (v === null) return null;
  const t = parseInstant(v);
  if (!Number.isFinite(t.seconds) || Math.abs(t.seconds) > 8.64e12) fail(v, 'a time within the supported range');
  return formatInstant(t, withZone);
}

function toDate(v: SourceValue): string | null {
  if (v === null) return null;
  if (typeof v === 'string') {
    const m = ISO.exec(v);
    // A date written without a time is that date, whatever the zone.
    if (m && m[4] === undefined) return toTimestamp(v, false)!.slice(0, 10);
  }
  return toTimestamp(v, false)!.slice(0, 10);
}

const COPY_SPECIAL = /[\\\n\r\t]/;
const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** One value in COPY's text format. */
export function copyField(value: string | null): string {
  if (value === null) return '\\N';
  return COPY_SPECIAL.test(value) ? value.replace(/[\\\n\r\t]/g, (c) => COPY_ESCAPES[c]) : value;
}
