/**
 * Splits and inspects SQL with the real PostgreSQL parser (libpg-query, WASM).
 */

import { setFlagsFromString } from 'node:v8';
import type * as LibPgQuery from 'libpg-query';
import { BadInputError } from './errors';

export interface Statement {
  /** The statement text, without its trailing semicolon. */
  readonly sql: string;
  /** 1-based line of the statement's first token within its file. */
  readonly line: number;
  /** Parse-tree node kind, e.g. `CreateStmt`, `IndexStmt`. */
  readonly kind: string;
  /** The parse-tree node (libpg-query JSON). */
  readonly node: Record<string, any>;
  /** Why this statement cannot run inside a transaction block, if it cannot. */
  readonly nonTransactionalReason?: string;
}

let loaded: Promise<void> | undefined;
let parser: typeof LibPgQuery | undefined;
/**
 * Loads the parser once per process (≈ 20 ms, most of it WebAssembly compiling in the background,
 * so callers start it early and await it late); every later parse is synchronous.
 */
export function loadParser(): Promise<void> {
  loaded ??= (async () => {
    // Baseline (Liftoff) code only: parsing is short-lived, and optimising the parser's hot functions
    // in the background competed for the CPU with the server it feeds (measured in bench/; of V8's
    // switches this one measured best, though V8 lists it among its testing flags: should a later V8
    // drop it, it prints "unrecognized flag" and everything works as before, only slower).
    setFlagsFromString('--liftoff-only');
    // require, not import(): Node's CommonJS loader takes a third of the ES module loader's time here.
    const lib = require('libpg-query') as typeof LibPgQuery;
    await lib.loadModule();
    parser = lib;
  })();
  return loaded;
}

export function parserLoaded(): boolean {
  return parser !== undefined;
}

/**
 * Text parsed in one call. The parser's WebAssembly heap grows to ~130x the SQL it parses and never
 * shrinks, so large files are parsed in pieces of about this size.
 */
const CHUNK_CHARS = 128 * 1024;
/** Statements larger than this keep only their top-level fields: a 100 KB INSERT needs no full tree. */
const FULL_NODE_MAX_CHARS = 64 * 1024;

/**
 * Splits `text` into statements. Throws BadInputError naming file, line and column on a syntax error.
 * `loadParser()` must have resolved first.
 *
 * A large file is parsed a piece at a time. A piece is proposed to end at a `;` that ends a line, and
 * accepted only when the parser took all of it as complete statements, the last ending with that `;`:
 * the lexer cannot be inside a string, comment or dollar-quoted body there (that would be an
 * unterminated token, an error), so the piece's statements are exactly the file's. Otherwise an
 * earlier `;` is tried, then a larger piece.
 */
export function splitStatements(text: string, file: string): Statement[] {
  const statements: Statement[] = [];
  const lines = new LineCounter(text);
  let start = 0;
  while (start < text.length) {
    const { end, stmts } = nextPiece(text, start);
    const piece = start === 0 && end === text.length ? text : text.slice(start, end);
    const parsed: ParseOutcome = stmts ? { ok: true, stmts } : tryParse(piece);
    if (!parsed.ok) {
      const err = parsed.error as any;
      // libpg-query reports a 0-based character offset (the input's length for "at end of input").
      const cursor = err?.sqlDetails?.cursorPosition;
      const at = lineAndColumn(
        text,
        start + (typeof cursor === 'number' && cursor >= 0 ? Math.min(cursor, piece.length) : piece.length),
      );
      throw new BadInputError(`syntax error: ${err?.message ?? err}`, { file, ...at });
    }
    const toChar = offsets(piece);
    for (const raw of parsed.stmts) statements.push(toStatement(piece, start, raw, lines, toChar));
    start = end;
  }
  return statements;
}

/**
 * Where the piece starting at `start` ends: a verified statement boundary (with the piece's parsed
 * statements), or the text's end (to be parsed by the caller).
 */
function nextPiece(text: string, start: number): { end: number; stmts?: any[] } {
  let size = CHUNK_CHARS;
  while (text.length - start > size) {
    let limit = start + size;
    for (let tries = 0; tries < 4; tries++) {
      const semicolon = text.lastIndexOf(';\n', limit - 2);
      if (semicolon <= start) break;
      const end = semicolon + 1;
      const piece = text.slice(start, end);
      const parsed = tryParse(piece);
      const last = parsed.ok ? parsed.stmts.at(-1) : undefined;
      if (parsed.ok && last && endsAt(piece, last)) return { end, stmts: parsed.stmts };
      limit = semicolon;
    }
    size *= 4; // a statement larger than the piece (or `;` at line ends inside a string): look further
  }
  return { end: text.length };
}

type ParseOutcome = { ok: true; stmts: any[] } | { ok: false; error: unknown };

function tryParse(sql: string): ParseOutcome {
  try {
    return { ok: true, stmts: parser!.parseSync(sql).stmts ?? [] };
  } catch (error) {
    return { ok: false, error };
  }
}

/**
 * Parser locations are UTF-8 byte offsets. For ASCII text they are character offsets too; otherwise
 * they are converted with a cursor that only moves forward (statements come in order).
 */
function offsets(piece: string): (byteOffset: number) => number {
  if (Buffer.byteLength(piece) === piece.length) return (b) => b;
  const bytes = Buffer.from(piece, 'utf8');
  let byte = 0;
  let char = 0;
  return (b) => {
    if (b < byte) byte = char = 0;
    char += bytes.subarray(byte, b).toString('utf8').length;
    byte = b;
    return char;
  };
}

/** Whether the last statement is terminated by the `;` that ends the piece. */
function endsAt(piece: string, raw: any): boolean {
  if (!raw.stmt_len) return false; // it ran to the end of the piece, unterminated
  return offsets(piece)((raw.stmt_location ?? 0) + raw.stmt_len) === piece.length - 1;
}

function toStatement(
  piece: string,
  pieceStart: number,
  raw: any,
  lines: LineCounter,
  toChar: (b: number) => number,
): Statement {
  const from = toChar(raw.stmt_location ?? 0);
  const to = raw.stmt_len ? toChar((raw.stmt_location ?? 0) + raw.stmt_len) : piece.length;
  const rawSql = piece.slice(from, to);
  // The parser counts leading whitespace and comments into a statement; point at its first token.
  const lead = rawSql.length - rawSql.trimStart().length;
  const kind = Object.keys(raw.stmt)[0];
  const full = raw.stmt[kind];
  const node = rawSql.length > FULL_NODE_MAX_CHARS ? topLevelFields(full) : full;
  return {
    sql: rawSql.trim(),
    line: lines.lineAt(pieceStart + from + lead),
    kind,
    node,
    nonTransactionalReason: nonTransactionalReason(kind, full),
  };
}

function topLevelFields(node: Record<string, any>): Record<string, any> {
  const slim: Record<string, any> = {};
  for (const [k, v] of Object.entries(node)) if (v === null || typeof v !== 'object' || k === 'relation') slim[k] = v;
  return slim;
}

/** Line numbers for increasing offsets, in one pass over the text. */
class LineCounter {
  private offset = 0;
  private line = 1;
  constructor(private readonly text: string) {}
  lineAt(charOffset: number): number {
    if (charOffset < this.offset) {
      this.offset = 0;
      this.line = 1;
    }
    for (let i = this.text.indexOf('\n', this.offset); i !== -1 && i < charOffset; i = this.text.indexOf('\n', i + 1))
      this.line++;
    this.offset = charOffset;
    return this.line;
  }
}

export function lineAndColumn(text: string, charOffset: number): { line: number; column: number } {
  let line = 1;
  let lastNewline = -1;
  for (let i = 0; i < charOffset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lastNewline = i;
    }
  }
  return { line, column: charOffset - lastNewline };
}

/**
 * Statements PostgreSQL refuses inside a transaction block: every caller of PreventInTransactionBlock
 * in PostgreSQL 15 and 16 that the parse tree can tell apart (utility.c, vacuum.c, cluster.c,
 * indexcmds.c, dbcommands.c, subscriptioncmds.c, discard.c). Decided only at run time, and so left
 * to the server: REINDEX or CLUSTER of a partitioned table, DROP SUBSCRIPTION of one without a slot
 * (counted here, to be safe). COMMIT/ROLLBACK PREPARED are transaction control, refused earlier.
 */
function nonTransactionalReason(kind: string, node: any): string | undefined {
  switch (kind) {
    case 'IndexStmt':
      return node.concurrent ? 'CREATE INDEX CONCURRENTLY' : undefined;
    case 'DropStmt':
      return node.concurrent ? 'DROP INDEX CONCURRENTLY' : undefined;
    case 'ReindexStmt':
      if (option(node.params, 'concurrently', false)) return 'REINDEX CONCURRENTLY';
      return REINDEX_MANY[node.kind];
    case 'VacuumStmt':
      return node.is_vacuumcmd ? 'VACUUM' : undefined; // ANALYZE alone may run in a transaction
    case 'ClusterStmt':
      return node.relation ? undefined : 'CLUSTER without a table';
    case 'AlterTableStmt':
      return (node.cmds ?? []).some(
        (c: any) => c.AlterTableCmd?.subtype === 'AT_DetachPartition' && c.AlterTableCmd.def?.PartitionCmd?.concurrent,
      )
        ? 'ALTER TABLE … DETACH PARTITION … CONCURRENTLY'
        : undefined;
    case 'AlterSystemStmt':
      return 'ALTER SYSTEM';
    case 'CreatedbStmt':
      return 'CREATE DATABASE';
    case 'DropdbStmt':
      return 'DROP DATABASE';
    case 'AlterDatabaseStmt':
      return (node.options ?? []).some((o: any) => o.DefElem?.defname === 'tablespace')
        ? 'ALTER DATABASE … SET TABLESPACE'
        : undefined;
    case 'CreateTableSpaceStmt':
      return 'CREATE TABLESPACE';
    case 'DropTableSpaceStmt':
      return 'DROP TABLESPACE';
    case 'CreateSubscriptionStmt':
      // create_slot defaults to connect, which defaults to true.
      return option(node.options, 'create_slot', option(node.options, 'connect', true))
        ? 'CREATE SUBSCRIPTION (creating a replication slot)'
        : undefined;
    case 'AlterSubscriptionStmt':
      if (node.kind === 'ALTER_SUBSCRIPTION_REFRESH') return 'ALTER SUBSCRIPTION … REFRESH PUBLICATION';
      return PUBLICATION_CHANGES.has(node.kind) && option(node.options, 'refresh', true)
        ? 'ALTER SUBSCRIPTION … PUBLICATION with refresh'
        : undefined;
    case 'DropSubscriptionStmt':
      return 'DROP SUBSCRIPTION';
    case 'DiscardStmt':
      return node.target === 'DISCARD_ALL' ? 'DISCARD ALL' : undefined;
    default:
      return undefined;
  }
}

const REINDEX_MANY: Record<string, string> = {
  REINDEX_OBJECT_SCHEMA: 'REINDEX SCHEMA',
  REINDEX_OBJECT_SYSTEM: 'REINDEX SYSTEM',
  REINDEX_OBJECT_DATABASE: 'REINDEX DATABASE',
};

const PUBLICATION_CHANGES = new Set([
  'ALTER_SUBSCRIPTION_SET_PUBLICATION',
  'ALTER_SUBSCRIPTION_ADD_PUBLICATION',
  'ALTER_SUBSCRIPTION_DROP_PUBLICATION',
]);

/** A boolean option of a `WITH (…)` list, as PostgreSQL's defGetBoolean reads it. */
function option(defs: unknown, name: string, fallback: boolean): boolean {
  const def = ((defs as any[]) ?? []).find((d) => d?.DefElem?.defname === name)?.DefElem;
  if (!def) return fallback;
  const arg = def.arg;
  if (arg === undefined) return true; // `(concurrently)` alone means true
  if (arg.Boolean) return Boolean(arg.Boolean.boolval);
  if (arg.Integer) return arg.Integer.ival !== 0 && arg.Integer.ival !== undefined;
  // `off`/`on` unquoted parse as a type name, quoted or `false`/`true` as a string.
  const text = String(arg.String?.sval ?? arg.TypeName?.names?.at(-1)?.String?.sval ?? '').toLowerCase();
  return !['false', 'off', '0', 'no', 'f', 'n'].includes(text);
}
