/**
 * Reads a migrations folder into validated `Migration`s. Every problem is found before
 * anything runs; all of them are reported together.
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import { type Dirent, readdirSync, readFileSync, statSync } from 'node:fs';
import { sep } from 'node:path';
import { type Directives, parseDirectives } from './directives';
import { BadInputError, BadInputErrors } from './errors';
import { loadParser, parserLoaded, type Statement, splitStatements } from './sql';

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

export interface Migration {
  readonly version: bigint;
  readonly name: string;
  /** sha256 of the up file's bytes, hex. */
  readonly checksum: string;
  readonly up: MigrationScript;
  readonly down?: MigrationScript;
}

/** The one naming rule for a migration's name (DESIGN.md), used by the loader and `orion-db new`. */
export const MIGRATION_NAME = /^[A-Za-z0-9_.-]+$/;
export const MIGRATION_NAME_RULE = 'letters, digits, "_", "." and "-"';
// golang-migrate's pattern, narrowed to the characters DESIGN.md allows in a name.
const FILE_NAME = new RegExp(`^(\\d+)_(${MIGRATION_NAME.source.slice(1, -1)})\\.(up|down)\\.sql$`);
const MAX_VERSION = 9223372036854775807n; // the ledger's bigint

/** Parses a migration file name; returns undefined for a name that is not a migration. */
export function parseFileName(file: string): { version: bigint; name: string; direction: 'up' | 'down' } | undefined {
  const m = FILE_NAME.exec(file);
  if (!m) return undefined;
  return { version: BigInt(m[1]), name: m[2], direction: m[3] as 'up' | 'down' };
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Loads and validates every migration in `dir`, in version order. With `parse: false` the SQL is
 * parsed later, by `prepareScripts`, for the migrations that will run.
 */
export async function loadMigrations(dir: string, options: { parse?: boolean } = {}): Promise<Migration[]> {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err: any) {
    throw new BadInputError(`cannot read migrations folder ${dir}: ${err.code ?? err.message}`);
  }
  const errors: BadInputError[] = [];
  const byVersion = new Map<
    bigint,
    { name: string; up?: MigrationScript; checksum?: string; down?: MigrationScript; files: string[] }
  >();
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const file = entry.name;
    if (!file.endsWith('.sql')) continue; // README.md and friends
    try {
      const parsed = parseFileName(file);
      if (!parsed) {
        throw new BadInputError(
          `bad migration file name: expected NNNNNN_name.up.sql or NNNNNN_name.down.sql, name of ${MIGRATION_NAME_RULE}`,
          { file },
        );
      }
      if (parsed.version === 0n) throw new BadInputError('version 0 is not allowed: versions start at 1', { file });
      if (parsed.version > MAX_VERSION) throw new BadInputError(`version has more than 19 digits`, { file });
      const path = `${dir}${sep}${file}`;
      // The directory entry's type comes with the listing; only a symbolic link costs a stat.
      if (!(entry.isFile() || (entry.isSymbolicLink() && statSync(path, { throwIfNoEntry: false })?.isFile())))
        throw new BadInputError('not a regular file', { file });
      const bytes = readFileSync(path);
      const script = readScript(file, bytes);
      let slot = byVersion.get(parsed.version);
      if (!slot) {
        slot = { name: parsed.name, files: [] };
        byVersion.set(parsed.version, slot);
      }
      slot.files.push(file);
      const existing = parsed.direction === 'up' ? slot.up : slot.down;
      if (existing || slot.name !== parsed.name) {
        throw new BadInputError(
          `duplicate version ${parsed.version}: also used by ${slot.files.filter((f) => f !== file).join(', ')}`,
          { file },
        );
      }
      if (parsed.direction === 'up') {
        slot.up = script;
        slot.checksum = sha256(bytes); // the bytes themselves are not kept: a seed file can be 50 MB
      } else {
        slot.down = script;
      }
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      errors.push(err);
    }
  }
  const migrations: Migration[] = [];
  for (const [version, slot] of byVersion) {
    if (!slot.up) {
      if (slot.down) errors.push(new BadInputError('down file without its up file', { file: slot.down.file }));
      continue;
    }
    migrations.push({ version, name: slot.name, checksum: slot.checksum!, up: slot.up, down: slot.down });
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new BadInputErrors(errors);
  migrations.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  if (options.parse ?? true) await prepareScripts(migrations.flatMap((m) => [m.up, m.down]));
  return migrations;
}

/** Decodes one script and reads its directives; its SQL is parsed on first use. */
export function readScript(file: string, bytes: Buffer): MigrationScript {
  // Checked, then decoded by Buffer: an ASCII file becomes a one-byte string with no UTF-16 copy on the way.
  if (!isUtf8(bytes)) throw new BadInputError('file is not valid UTF-8', { file, line: firstInvalidUtf8Line(bytes) });
  const text = bytes.toString('utf8');
  if (text.includes('\0')) throw new BadInputError('file contains NUL bytes (binary file?)', { file });
  if (text.trim() === '') throw new BadInputError('file is empty', { file });
  return new MigrationScript(file, text, parseDirectives(text, file));
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
