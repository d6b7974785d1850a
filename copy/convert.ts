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
  const converter = pickConverter(column);
  return converter;
}

/**
 * Converters whose text never holds a backslash, tab, newline or carriage return (uuids, times,
 * numbers, booleans): their values go into COPY text without looking for something to escape.
 */
const ESCAPE_FREE = new WeakSet<Converter>();
const escapeFree = (c: Converter): Converter => {
  ESCAPE_FREE.add(c);
  return c;
};

export function isEscapeFree(converter: Converter): boolean {
  return ESCAPE_FREE.has(converter);
}

const timestamptzConverter = escapeFree((v) => toTimestamp(v, true));
const timestampConverter = escapeFree((v) => toTimestamp(v, false));
const int2Converter = escapeFree((v) => toInteger(v, 16));
const int4Converter = escapeFree((v) => toInteger(v, 32));
const int8Converter = escapeFree((v) => toInteger(v, 64));
const numericConverter = escapeFree((v) => toNumber(v, NUMERIC));
const floatConverter = escapeFree((v) => toNumber(v, FLOAT));
const jsonbConverter: Converter = (v) => toJson(v, true);
const jsonConverter: Converter = (v) => toJson(v, false);

function pickConverter(column: TargetColumn): Converter {
  if (column.isArray) return toArray;
  switch (column.baseType) {
    case 'uuid':
      return toUuid;
    case 'timestamptz':
      return timestamptzConverter;
    case 'timestamp':
      return timestampConverter;
    case 'date':
      return toDate;
    case 'bool':
      return toBoolean;
    case 'jsonb':
      return jsonbConverter;
    case 'json':
      return jsonConverter;
    case 'bytea':
      return toBytea;
    case 'int2':
      return int2Converter;
    case 'int4':
      return int4Converter;
    case 'int8':
      return int8Converter;
    case 'numeric':
      return numericConverter;
    case 'float4':
    case 'float8':
      return floatConverter;
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
      // Also SQLite text whose bytes are not UTF-8 (sqlite-source.ts passes those on as bytes).
      const hex = Buffer.from(v.subarray(0, 16)).toString('hex');
      throw new ConversionProblem(
        `${describe(v)} (x'${hex}'${v.length > 16 ? '…' : ''}) is not valid UTF-8 text, e.g. Latin-1 bytes in a SQLite TEXT value`,
      );
    }
  }
  return String(v);
}

const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

function toUuid(v: SourceValue): string | null {
  if (v === null) return null;
  if (v instanceof Uint8Array) {
    if (v.length !== 16) fail(v, 'a uuid (16 bytes)');
    const h = Buffer.from(v).toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  if (typeof v === 'string' && CANONICAL_UUID.test(v)) return v;
  const m = typeof v === 'string' ? UUID.exec(v.trim()) : null;
  if (!m) fail(v, 'a uuid');
  return `${m[1]}-${m[2]}-${m[3]}-${m[4]}-${m[5]}`.toLowerCase();
}

escapeFree(toUuid);

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

escapeFree(toBoolean);

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
  /** Whole seconds since the epoch, UTC. */
  readonly seconds: number;
  /** Digits after the decimal point, as written. */
  readonly fraction: string;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The date of a day number since 1970-01-01 (civil_from_days). */
function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp + (mp < 10 ? 3 : -9);
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

/** An ISO-8601 text's parts, validated (a 30th of February is not a date); undefined if not ISO. */
function isoParts(v: string) {
  const m = ISO.exec(v);
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', zone] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const valid =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= (month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]) &&
    Number(h) <= 23 &&
    Number(mi) <= 59 &&
    Number(s) <= 59;
  return {
    valid,
    year,
    month,
    day,
    h: Number(h),
    mi: Number(mi),
    s: Number(s),
    fraction,
    zone,
    plain: y.length === 4 && !v.includes(','),
  };
}

function parseInstant(v: SourceValue): Instant {
  if (typeof v === 'bigint') v = Number(v);
  if (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v)) v = Number(v);
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) fail(v, 'a time');
    const seconds = Math.abs(v) >= MILLISECONDS_FROM ? v / 1000 : v;
    const whole = Math.floor(seconds);
    const micros = Math.round((seconds - whole) * 1e6);
    if (micros === 1e6) return { seconds: whole + 1, fraction: '' };
    return { seconds: whole, fraction: micros ? String(micros).padStart(6, '0').replace(/0+$/, '') : '' };
  }
  const p = typeof v === 'string' ? isoParts(v) : undefined;
  if (!p) fail(v, 'a time (ISO-8601 text or unix seconds/milliseconds)');
  if (!p.valid) fail(v, 'a valid date and time');
  let offsetMinutes = 0;
  if (p.zone && !/^(z|utc)$/i.test(p.zone)) {
    const z = /^([+-])(\d{2}):?(\d{2})?$/.exec(p.zone)!;
    offsetMinutes = (z[1] === '-' ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3] ?? 0));
  }
  const seconds = daysFromCivil(p.year, p.month, p.day) * 86400 + p.h * 3600 + p.mi * 60 + p.s - offsetMinutes * 60;
  return { seconds, fraction: p.fraction.replace(/0+$/, '') };
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : String(n));

function formatInstant(t: Instant, withZone: boolean): string {
  const days = Math.floor(t.seconds / 86400);
  const rest = t.seconds - days * 86400;
  const [y, m, d] = civilFromDays(days);
  const year = y >= 0 && y <= 9999 ? String(y).padStart(4, '0') : fail(t.seconds, 'a time within the years 0–9999');
  const time = `${pad2(Math.floor(rest / 3600))}:${pad2(Math.floor((rest % 3600) / 60))}:${pad2(rest % 60)}`;
  const base = `${year}-${pad2(m)}-${pad2(d)} ${time}${t.fraction ? `.${t.fraction}` : ''}`;
  return withZone ? `${base}+00` : base;
}

const digit = (s: string, i: number) => {
  const c = s.charCodeAt(i) - 48;
  return c >= 0 && c <= 9 ? c : -100;
};
const two = (s: string, i: number) => digit(s, i) * 10 + digit(s, i + 1);

/**
 * The usual shapes, `YYYY-MM-DD[T ]HH:MM:SS[.f…][Z|±HH[:MM]]`, checked without the general parser:
 * true exactly when isoParts() would find them valid and plain, so they may go through as written.
 */
function plainIsoFast(s: string, withZone: boolean): boolean {
  const n = s.length;
  if (n < 19) return false;
  const century = two(s, 0);
  const yy = two(s, 2);
  const y = century * 100 + yy;
  const mo = two(s, 5);
  const d = two(s, 8);
  const sep = s.charCodeAt(10);
  if (century < 0 || yy < 0 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || (sep !== 84 && sep !== 32))
    return false;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return false;
  const h = two(s, 11);
  const mi = two(s, 14);
  const sec = two(s, 17);
  if (mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) return false;
  if (d > (mo === 2 && isLeap(y) ? 29 : DAYS_IN_MONTH[mo - 1])) return false;
  let i = 19;
  if (i < n && s.charCodeAt(i) === 46) {
    i++;
    const from = i;
    while (i < n && digit(s, i) >= 0) i++;
    if (i === from) return false;
  }
  if (i === n) return true;
  if (!withZone) return false;
  const z = s.charCodeAt(i);
  if ((z === 90 || z === 122) && i + 1 === n) return true;
  if (z !== 43 && z !== 45) return false;
  if (i + 3 === n) return two(s, i + 1) >= 0;
  if (i + 6 === n) return two(s, i + 1) >= 0 && s.charCodeAt(i + 3) === 58 && two(s, i + 4) >= 0;
  return false;
}

function toTimestamp(v: SourceValue, withZone: boolean): string | null {
  if (v === null) return null;
  if (typeof v === 'string') {
    if (plainIsoFast(v, withZone)) return v;
    // Valid ISO text that PostgreSQL reads the same way goes through as written: the target session
    // is in UTC, so text without a zone means UTC (SQLAlchemy's convention) for both column types.
    const p = isoParts(v);
    if (p?.valid && p.plain && (withZone || !p.zone)) return v.trim();
  }
  return formatInstant(parseInstant(v), withZone);
}

escapeFree(toDate);

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
