/**
 * `-- orion:` header directives: `--` comment lines before the first statement.
 */
import { BadInputError } from './errors';

export interface Directives {
  /** Run outside a transaction, one statement at a time. */
  readonly noTransaction: boolean;
  /** `lock_timeout` for this migration, in ms. */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` for this migration, in ms (0 = none). */
  readonly statementTimeoutMs?: number;
  /** Lint rules this file opts out of. */
  readonly allow: readonly string[];
  /** Extensions this migration needs to be available on the server. */
  readonly requiresExtensions: readonly string[];
}

const DIRECTIVE = /^--\s*orion:(\S*)(.*)$/;
/**
 * Looks meant as a directive but is not one (`-- Orion: no-transaction`, `-- orion no-transaction`):
 * an error, so it cannot be silently ignored. Prose that merely starts with "Orion" is a comment.
 */
const MISSPELT_DIRECTIVE =
  /^--\s*orion(?:\s*:|[\s_-]+(?:no-transaction|lock-timeout|statement-timeout|allow|requires-extension)\b)/i;
const UNITS: Record<string, number> = { ms: 1, s: 1000, min: 60_000, h: 3_600_000 };
const IDENTIFIER = /^[a-z_][a-z0-9_$-]{0,62}$/;
const RULE = /^[a-z][a-z0-9-]*$/;

/** Parses the header of a migration file. `file` names it in errors. */
export function parseDirectives(text: string, file: string): Directives {
  let noTransaction = false;
  let lockTimeoutMs: number | undefined;
  let statementTimeoutMs: number | undefined;
  const allow: string[] = [];
  const requiresExtensions: string[] = [];
  // Line by line, and only the header: a seed file can have millions of lines.
  for (let i = 0, start = 0; start <= text.length; i++) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === '') continue;
    if (!line.startsWith('--')) break; // the header ends at the first statement
    const where = { file, line: i + 1 };
    const bad = (message: string) => new BadInputError(message, where);
    const m = DIRECTIVE.exec(line);
    if (!m) {
      if (MISSPELT_DIRECTIVE.test(line))
        throw bad(`malformed directive "${line}" (expected "-- orion:<name> [value]")`);
      continue;
    }
    const [, name, rest] = m;
    const value = rest.trim();
    const once = <T>(current: T | undefined, v: T): T => {
      if (current !== undefined) throw bad(`directive orion:${name} given twice`);
      return v;
    };
    switch (name) {
      case 'no-transaction':
        if (value) throw bad(`orion:no-transaction takes no value, got "${value}"`);
        noTransaction = true;
        break;
      case 'lock-timeout':
        lockTimeoutMs = once(lockTimeoutMs, parseDuration(value, name, where));
        break;
      case 'statement-timeout':
        statementTimeoutMs = once(statementTimeoutMs, parseDuration(value, name, where));
        break;
      case 'allow':
        if (!RULE.test(value))
          throw bad(`orion:allow must name one lint rule (e.g. "-- orion:allow ban-drop-column"), got "${value}"`);
        allow.push(value);
        break;
      case 'requires-extension':
        if (!IDENTIFIER.test(value)) throw bad(`orion:requires-extension needs an extension name, got "${value}"`);
        requiresExtensions.push(value);
        break;
      default:
        throw bad(
          `unknown directive "orion:${name}" (known: no-transaction, lock-timeout, statement-timeout, allow, requires-extension)`,
        );
    }
  }
  return { noTransaction, lockTimeoutMs, statementTimeoutMs, allow, requiresExtensions };
}

/** `5s`, `500ms`, `10min`, `1h`, or `0` (no limit). */
export function parseDuration(value: string, name: string, where: { file?: string; line?: number } = {}): number {
  if (value === '0') return 0;
  const m = /^(\d+)(ms|s|min|h)$/.exec(value);
  if (!m)
    throw new BadInputError(
      `${where.file ? 'orion:' : '--'}${name} needs a duration like 500ms, 5s, 10min or 1h, got "${value}"`,
      where,
    );
  const ms = Number(m[1]) * UNITS[m[2]];
  if (ms > 24 * 3_600_000)
    throw new BadInputError(`${where.file ? 'orion:' : '--'}${name} of ${value} is over 24h`, where);
  return ms;
}
