import { parseSync } from 'libpg-query';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadParser, splitStatements } from '../../lambda/engine/sql';

beforeAll(() => loadParser());

/** What one parse of the whole text says: statement texts and first lines. */
function reference(text: string): { sql: string; line: number }[] {
  const bytes = Buffer.from(text);
  let line = 1;
  let counted = 0;
  return (parseSync(text).stmts ?? []).map((raw: any) => {
    const start = raw.stmt_location ?? 0;
    const sql = bytes.subarray(start, raw.stmt_len ? start + raw.stmt_len : bytes.length).toString();
    const lead = Buffer.byteLength(sql.slice(0, sql.length - sql.trimStart().length));
    for (; counted < start + lead; counted++) if (bytes[counted] === 10) line++;
    return { sql: sql.trim(), line };
  });
}

describe('splitStatements on large files (parsed in pieces)', () => {
  // Tricky statements: `;` at line ends inside strings, comments and dollar-quoted bodies.
  const tricky = [
    "INSERT INTO notes VALUES ('line one;\nline two;\n');",
    'CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\nBEGIN\n  PERFORM 1;\n  RETURN 2;\nEND\n$body$;',
    '/* a comment;\n spanning; lines;\n*/ SELECT 3;',
    'CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;',
    "SELECT 'ünïcødé ☃;\n';",
  ];

  test.each([0, 1, 7, 31, 997])('gives the same statements and lines as one parse (shift %i)', (shift) => {
    const parts: string[] = ['-- '.padEnd(shift + 3, 'x')];
    let size = 0;
    const add = (sql: string) => {
      parts.push(sql);
      size += sql.length + 1;
    };
    for (let i = 0; size < 900 * 1024; i++) {
      add(`INSERT INTO t VALUES (${i}, '${'v'.repeat(i % 50)}');`);
      if (i % 97 === 0) add(tricky[i % tricky.length]);
      if (i % 1013 === 0)
        add(`INSERT INTO big VALUES ${Array.from({ length: 400 }, (_, k) => `(${k}, 'row;')`).join(',\n')};`);
    }
    const text = parts.join('\n') + '\n';
    const mine = splitStatements(text, 'big.sql').map((s) => ({ sql: s.sql, line: s.line }));
    expect(mine).toEqual(reference(text));
  });

  test('a syntax error deep in a large file is reported at its line', () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `INSERT INTO t VALUES (${i});`);
    lines[15_000] = 'INSERT INTO t VALUES (oops'; // PostgreSQL notices at the next token, on the next line
    expect(() => splitStatements(lines.join('\n'), 'big.sql')).toThrow(
      /^big\.sql:15002:1: syntax error: syntax error at or near "INSERT"$/,
    );
  });
});
