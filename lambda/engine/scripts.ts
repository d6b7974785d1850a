/**
 * One migration script (a file, or one direction of a dbmate/goose file): its text, its header
 * directives, and its statements parsed on first use.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { type Directives, parseDirectives } from './directives';
import { BadInputError, BadInputErrors } from './errors';
import { loadParser, parserLoaded, type Statement, splitStatements } from './sql';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * One SQL file. Its statements are parsed on first use, so a run that applies nothing parses
 * nothing; `prepareScripts` parses (and validates) the ones about to run, before anything runs.
 */
export class MigrationScript {
  private parsed?: readonly Statement[];
  constructor(
    /** File name, relative to the folder. */
    readonly file: string,
    readonly text: string,
    readonly directives: Directives,
  ) {}

  get statements(): readonly Statement[] {
    if (!parserLoaded()) throw new Error(`internal: ${this.file} parsed before prepareScripts()`);
    this.parsed ??= parseAndValidate(this.file, this.text, this.directives);
    return this.parsed;
  }
}

/** Parses and validates scripts; every problem of every script is reported together. */
export async function prepareScripts(scripts: readonly (MigrationScript | undefined)[]): Promise<void> {
  if (!scripts.some(Boolean)) return; // nothing to run: a no-op deploy needs no parser
  await loadParser();
  const errors: BadInputError[] = [];
  for (const script of scripts) {
    try {
      void script?.statements;
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      errors.push(err);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new BadInputErrors(errors);
}

/** Decodes one script and reads its directives; its SQL is parsed on first use. */
export function readScript(file: string, bytes: Buffer, overrides: Partial<Directives> = {}): MigrationScript {
  // Checked, then decoded by Buffer: an ASCII file becomes a one-byte string with no UTF-16 copy on the way.
  if (!isUtf8(bytes)) throw new BadInputError('file is not valid UTF-8', { file, line: firstInvalidUtf8Line(bytes) });
  return scriptFromText(file, bytes.toString('utf8'), overrides);
}

/**
 * A script from text already decoded. `overrides` carry what a tool's own markers say (dbmate's
 * `transaction:false`, goose's `NO TRANSACTION`, …), on top of the `-- orion:` directives.
 */
export function scriptFromText(file: string, text: string, overrides: Partial<Directives> = {}): MigrationScript {
  if (text.includes('\0')) throw new BadInputError('file contains NUL bytes (binary file?)', { file });
  if (text.trim() === '') throw new BadInputError('file is empty', { file });
  const directives = parseDirectives(text, file);
  return new MigrationScript(file, text, {
    ...directives,
    noTransaction: directives.noTransaction || Boolean(overrides.noTransaction),
  });
}

function parseAndValidate(file: string, text: string, directives: Directives): Statement[] {
  const statements = splitWithMetaCommandHint(text, file);
  if (statements.length === 0) throw new BadInputError('file has no SQL statements (only comments)', { file });
  for (const s of statements) {
    if (s.kind === 'TransactionStmt') {
      throw new BadInputError(
        'transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) is not allowed in a migration: orion-db manages transactions; use "-- orion:no-transaction" for statements that cannot run in one',
        { file, line: s.line },
      );
    }
    if (s.nonTransactionalReason && !directives.noTransaction) {
      throw new BadInputError(
        `${s.nonTransactionalReason} cannot run inside a transaction: put it in its own file marked "-- orion:no-transaction"`,
        { file, line: s.line },
      );
    }
  }
  return statements;
}

/** The parser rejects `\i file.sql` as a syntax error; say what it really is. */
function splitWithMetaCommandHint(text: string, file: string): Statement[] {
  try {
    return splitStatements(text, file);
  } catch (err) {
    const line = err instanceof BadInputError ? err.position.line : undefined;
    if (line && /^\s*\\/.test(text.split('\n')[line - 1] ?? '')) {
      throw new BadInputError(
        'psql meta-commands (\\i, \\set, …) are not SQL: orion-db sends each file to the server as it is',
        { file, line },
      );
    }
    throw err;
  }
}

function firstInvalidUtf8Line(bytes: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 10) {
      try {
        decoder.decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return line;
}
