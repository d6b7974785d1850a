/**
 * Splits and inspects SQL with the real PostgreSQL parser (libpg-query, WASM).
 * Locations from the parser are UTF-8 byte offsets, so all slicing is done on bytes.
 */
import { loadModule, parseSync } from 'libpg-query';
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
/** Loads the parser once per process (≈ 40 ms); every later parse is synchronous. */
export function loadParser(): Promise<void> {
  loaded ??= loadModule();
  return loaded;
}

/**
 * Splits `text` into statements. Throws BadInputError naming file, line and column on a syntax error.
 * `loadParser()` must have resolved first.
 */
export function splitStatements(text: string, file: string): Statement[] {
  const bytes = Buffer.from(text, 'utf8');
  let result;
  try {
    result = parseSync(text);
  } catch (err: any) {
    // libpg-query reports a 0-based character offset (the input's length for "at end of input").
    const cursor = err?.sqlDetails?.cursorPosition;
    const at = lineAndColumn(text, typeof cursor === 'number' && cursor >= 0 ? Math.min(cursor, text.length) : text.length);
    throw new BadInputError(`syntax error: ${err?.message ?? err}`, { file, ...at });
  }
  return (result.stmts ?? []).map((raw: any) => {
    const start = raw.stmt_location ?? 0;
    const len = raw.stmt_len ?? bytes.length - start;
    const rawSql = bytes.subarray(start, start + len).toString('utf8');
    // The parser counts leading whitespace and comments into a statement; point at its first token.
    const lead = rawSql.length - rawSql.trimStart().length;
    const kind = Object.keys(raw.stmt)[0];
    const node = raw.stmt[kind];
    const charStart = bytes.subarray(0, start).toString('utf8').length + lead;
    return {
      sql: rawSql.trim(),
      line: lineAndColumn(text, charStart).line,
      kind,
      node,
      nonTransactionalReason: nonTransactionalReason(kind, node),
    };
  });
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

/** PostgreSQL refuses these inside a transaction block (PreventInTransactionBlock). */
function nonTransactionalReason(kind: string, node: any): string | undefined {
  switch (kind) {
    case 'IndexStmt':
      return node.concurrent ? 'CREATE INDEX CONCURRENTLY' : undefined;
    case 'DropStmt':
      return node.concurrent ? 'DROP INDEX CONCURRENTLY' : undefined;
    case 'ReindexStmt':
      if ((node.params ?? []).some((p: any) => p.DefElem?.defname === 'concurrently')) return 'REINDEX CONCURRENTLY';
      return node.kind === 'REINDEX_OBJECT_SYSTEM' || node.kind === 'REINDEX_OBJECT_DATABASE' ? 'REINDEX SYSTEM/DATABASE' : undefined;
    case 'VacuumStmt':
      return node.is_vacuumcmd ? 'VACUUM' : undefined;
    case 'AlterSystemStmt':
      return 'ALTER SYSTEM';
    case 'CreatedbStmt':
      return 'CREATE DATABASE';
    case 'DropdbStmt':
      return 'DROP DATABASE';
    case 'CreateTableSpaceStmt':
      return 'CREATE TABLESPACE';
    case 'DropTableSpaceStmt':
      return 'DROP TABLESPACE';
    case 'CreateSubscriptionStmt':
      return 'CREATE SUBSCRIPTION';
    case 'DropSubscriptionStmt':
      return 'DROP SUBSCRIPTION';
    default:
      return undefined;
  }
}
