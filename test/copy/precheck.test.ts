/**
 * The unique pre-check's review findings (#17): keys a SQLite unique index holds are trusted only when
 * their values reach the target unchanged (varchar(n) lengths, valid UTF-8), and the target's unique
 * indexes are read as PostgreSQL enforces them (INCLUDE columns are not key columns). Real SQLite files,
 * real PostgreSQL, the built CLI.
 */
import { describe, expect, test } from 'vitest';
import { openSqlite } from '../../copy/sqlite-source';
import { runCli } from '../helpers/cli';
import { adminQuery, createDatabase, query, uniqueName } from '../helpers/db';
import { sqliteFile } from '../helpers/sqlite';

async function target(schema: string): Promise<string> {
  const db = await createDatabase('orion_copy');
  await query(db.url, schema);
  return db.url;
}

const sqliteUrl = (path: string) => `sqlite:///${path}`;
const messages = (run: { json(): any }) => run.json().errors.map((e: { message: string }) => e.message);
const counts = (url: string) =>
  query(url, 'SELECT (SELECT count(*) FROM a)::int AS a, (SELECT count(*) FROM b)::int AS b');

describe('orion-db copy: unique pre-check against SQLite-held keys', () => {
  test("varchar(n): 'ab' and 'ab ' (distinct in SQLite) are one value in varchar(2); refused before anything is copied", async () => {
    const url = await target(`
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, code varchar(2) UNIQUE);`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1), (2);
      CREATE TABLE b (id INTEGER PRIMARY KEY, code TEXT UNIQUE); INSERT INTO b VALUES (1, 'ab'), (2, 'ab ');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(2);
    expect(messages(run)).toEqual([
      'table b: unique key b_code_key (code) would be violated: 2 source rows have (code) = (ab); nothing was copied',
    ]);
    expect(await counts(url)).toEqual([{ a: 0, b: 0 }]);
  });

  test('varchar(n): a key value longer than n is refused before anything is copied', async () => {
    const url = await target(`
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, code varchar(2) UNIQUE);`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1), (2);
      CREATE TABLE b (id INTEGER PRIMARY KEY, code TEXT UNIQUE); INSERT INTO b VALUES (1, 'ab'), (2, 'abc');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(1);
    expect(messages(run)).toEqual([
      'table b, key id=2, column code: the server refused it: value too long for type character varying(2)',
    ]);
    expect(await counts(url)).toEqual([{ a: 0, b: 0 }]);
  });

  test('varchar(n) keys within n, and unbounded varchar, are still left to the SQLite index', async () => {
    const url = await target(`CREATE TABLE b (id integer PRIMARY KEY, code varchar(3) UNIQUE, free varchar UNIQUE);`);
    const path = sqliteFile(`
      CREATE TABLE b (id INTEGER PRIMARY KEY, code TEXT UNIQUE, free TEXT UNIQUE);
      INSERT INTO b VALUES (1, 'ab', 'x  '), (2, 'ab ', 'x');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json().precheck).toMatchObject({ keys: 3, held_by_source: 3 });
  });

  test('invalid UTF-8 text is never taken as held by the SQLite index (it reads as U+FFFD)', async () => {
    const path = sqliteFile(`
      CREATE TABLE good (id INTEGER PRIMARY KEY, t TEXT UNIQUE); INSERT INTO good VALUES (1, 'a'), (2, 'é✓');
      CREATE TABLE bad (id INTEGER PRIMARY KEY, t TEXT UNIQUE);
      INSERT INTO bad VALUES (1, CAST(X'61ff' AS TEXT)), (2, CAST(X'61c3' AS TEXT));`);
    const source = await openSqlite(path);
    try {
      expect(await source.unchangedColumns!('good', [{ name: 't', kind: 'text' }])).toEqual([true]);
      expect(await source.unchangedColumns!('bad', [{ name: 't', kind: 'text' }])).toEqual([false]);
      expect(await source.unchangedColumns!('bad', [{ name: 't', kind: { maxLength: 10 } }])).toEqual([false]);
    } finally {
      await source.close();
    }
  });
});

describe('orion-db copy: unique indexes of the target as PostgreSQL enforces them', () => {
  test('UNIQUE (a) INCLUDE (b): only a is the key; (x, p) and (x, q) are refused before copying', async () => {
    const url = await target(`
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, k text, extra text, UNIQUE (k) INCLUDE (extra));`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);
      CREATE TABLE b (id INTEGER PRIMARY KEY, k TEXT, extra TEXT); INSERT INTO b VALUES (1, 'x', 'p'), (2, 'x', 'q');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(2);
    expect(messages(run)).toEqual([
      'table b: unique key b_k_extra_key (k) would be violated: 2 source rows have (k) = (x); nothing was copied',
    ]);
    expect(await counts(url)).toEqual([{ a: 0, b: 0 }]);
  });
});

describe('orion-db copy: a role that may not create what the pre-check needs', () => {
  test('a 42501 that is not the TEMPORARY privilege (no USAGE on a key column type) is the server error, not the TEMPORARY hint', async () => {
    const db = await createDatabase('orion_copy');
    const role = uniqueName('orion_app');
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'app-pw'`);
    try {
      await query(
        db.url,
        `CREATE TYPE mood AS ENUM ('ok', 'sad'); CREATE TABLE a (id integer PRIMARY KEY, m mood UNIQUE);
         REVOKE USAGE ON TYPE mood FROM PUBLIC; GRANT SELECT, INSERT ON a TO ${role}`,
      );
      const app = new URL(db.url);
      app.username = role;
      app.password = 'app-pw';
      const path = sqliteFile(`CREATE TABLE a (id INTEGER PRIMARY KEY, m TEXT); INSERT INTO a VALUES (1, 'ok');`);
      const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', app.toString(), '--json']);
      expect(run.code).not.toBe(0);
      const errors = JSON.stringify(run.json().errors);
      expect(errors).toContain('permission denied for type mood');
      expect(errors).not.toContain('TEMPORARY');
    } finally {
      await adminQuery(`DROP DATABASE ${db.name} WITH (FORCE)`);
      await adminQuery(`DROP ROLE ${role}`);
    }
  });
});

describe('orion-db copy: expression, partial and collation-defined unique indexes are checked', () => {
  test('ON (lower(label)), WHERE status = open, and a nondeterministic ICU collation: refused before copying, verify names them', async () => {
    const url = await target(`
      CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, label text, status text);
      CREATE UNIQUE INDEX b_open_label ON b (label) WHERE status = 'open';
      CREATE TABLE c (id integer PRIMARY KEY, label text);
      CREATE UNIQUE INDEX c_lower_label ON c (lower(label));
      CREATE TABLE d (id integer PRIMARY KEY, label text COLLATE ci UNIQUE);`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1), (2);
      CREATE TABLE b (id INTEGER PRIMARY KEY, label TEXT, status TEXT);
      INSERT INTO b VALUES (1, 'x', 'open'), (2, 'x', 'open'), (3, 'y', 'open'), (4, 'y', 'closed'), (5, 'y', 'closed');
      CREATE TABLE c (id INTEGER PRIMARY KEY, label TEXT UNIQUE); INSERT INTO c VALUES (1, 'Foo'), (2, 'foo'), (3, 'bar');
      CREATE TABLE d (id INTEGER PRIMARY KEY, label TEXT UNIQUE); INSERT INTO d VALUES (1, 'ABC'), (2, 'abc'), (3, 'x');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(2);
    const expected = [
      'table b: unique key b_open_label (label) would be violated: 2 source rows have (label) = (x)',
      'table c: unique key c_lower_label (lower(label)) would be violated: 2 source rows have (lower(label)) = (foo)',
      /^table d: unique key d_label_key \(label\) would be violated: 2 source rows have \(label\) = \((ABC|abc)\)/,
    ];
    const got = messages(run);
    expect(got).toHaveLength(3);
    for (const [i, e] of expected.entries()) {
      if (typeof e === 'string') expect(got[i]).toBe(`${e}; nothing was copied`);
      else expect(got[i]).toMatch(e);
    }
    expect(await query(url, 'SELECT (SELECT count(*) FROM a)::int AS a, (SELECT count(*) FROM b)::int AS b')).toEqual([
      { a: 0, b: 0 },
    ]);
    const verify = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(verify.code).toBe(1);
    expect(JSON.stringify(verify.json().errors)).toContain('c_lower_label (lower(label))');
  });

  test('rows outside a partial index, and distinct expression values, copy', async () => {
    const url = await target(`
      CREATE TABLE b (id integer PRIMARY KEY, label text, status text);
      CREATE UNIQUE INDEX b_open_label ON b (label) WHERE status = 'open';
      CREATE UNIQUE INDEX b_lower_id ON b (lower(label), id);`);
    const path = sqliteFile(`
      CREATE TABLE b (id INTEGER PRIMARY KEY, label TEXT, status TEXT);
      INSERT INTO b VALUES (1, 'x', 'open'), (2, 'x', 'closed'), (3, 'X', 'open');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(await query(url, 'SELECT count(*)::int AS n FROM b')).toEqual([{ n: 3 }]);
  });
});

describe('orion-db copy: SQLite text that is not valid UTF-8', () => {
  test('is refused in a text column naming table, key and column before its batch; a bytea column gets the bytes', async () => {
    const url = await target(`
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, name text, raw bytea);`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);
      CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT, raw TEXT);
      INSERT INTO b VALUES (1, 'ok', CAST(X'61ff' AS TEXT)), (2, 'real ' || char(65533), NULL),
                           (3, CAST(X'4dfc6c6c6572' AS TEXT), NULL), (4, 'later', NULL);`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--batch-size', '2', '--json']);
    expect(run.code, run.stderr).toBe(1);
    expect(messages(run)).toEqual([
      "table b, key id=3, column name: a 6-byte blob (x'4dfc6c6c6572') is not valid UTF-8 text, e.g. Latin-1 bytes in a SQLite TEXT value (target type text)",
    ]);
    expect(await query(url, `SELECT id, name, encode(raw, 'hex') AS raw FROM b ORDER BY id`)).toEqual([
      { id: 1, name: 'ok', raw: '61ff' },
      { id: 2, name: 'real \uFFFD', raw: null },
    ]);
  });

  test('in a unique key column: refused before anything is copied, naming the row', async () => {
    const url = await target(`
      CREATE TABLE a (id integer PRIMARY KEY);
      CREATE TABLE b (id integer PRIMARY KEY, code text UNIQUE);`);
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);
      CREATE TABLE b (id INTEGER PRIMARY KEY, code TEXT UNIQUE);
      INSERT INTO b VALUES (1, CAST(X'61ff' AS TEXT)), (2, CAST(X'61c3' AS TEXT));`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(1);
    expect(messages(run)).toEqual([
      "table b, key id=1, column code: a 2-byte blob (x'61ff') is not valid UTF-8 text, e.g. Latin-1 bytes in a SQLite TEXT value (target type text)",
    ]);
    expect(await counts(url)).toEqual([{ a: 0, b: 0 }]);
  });
});

describe('orion-db copy: a row the server refuses', () => {
  test('names table, key and column with the DETAIL, in text and as --json fields', async () => {
    const url = await target(`CREATE TABLE b (id integer PRIMARY KEY, n numeric(4,1));`);
    const path = sqliteFile(
      `CREATE TABLE b (id INTEGER PRIMARY KEY, n); INSERT INTO b VALUES (1, 1.5), (2, 123456.7);`,
    );
    const text = await runCli(['copy', '--from', sqliteUrl(path), '--to', url]);
    expect(text.code).toBe(1);
    expect(text.stderr).toContain(
      'error: SQLSTATE 22003: table b, key id=2, column n: the server refused it: numeric field overflow\n  DETAIL: A field with precision 4, scale 1 must round to an absolute value less than 10^3.',
    );
    const json = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--truncate', '--json']);
    expect(json.json().errors).toEqual([
      {
        sqlstate: '22003',
        message: 'table b, key id=2, column n: the server refused it: numeric field overflow',
        detail: 'A field with precision 4, scale 1 must round to an absolute value less than 10^3.',
        table: 'b',
        key: 'key id=2',
        column_name: 'n',
      },
    ]);
  });
});

describe('orion-db copy: which tables are copied', () => {
  test("SQLite's Accounts is the target's accounts; a copy that matches no table is refused, naming both sides", async () => {
    const url = await target(`CREATE TABLE accounts (id integer PRIMARY KEY, handle text);`);
    const path = sqliteFile(
      `CREATE TABLE Accounts (id INTEGER PRIMARY KEY, Handle TEXT); INSERT INTO Accounts VALUES (1, 'a');`,
    );
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('ok: 1 row copied into 1 table(s)');
    expect(await query(url, 'SELECT id, handle FROM accounts')).toEqual([{ id: 1, handle: 'a' }]);
    const other = sqliteFile(
      `CREATE TABLE users (id INTEGER PRIMARY KEY); CREATE TABLE notes (id INTEGER PRIMARY KEY);`,
    );
    const none = await runCli(['copy', '--from', sqliteUrl(other), '--to', url, '--truncate', '--json']);
    expect(none.code).toBe(2);
    expect(messages(none)).toEqual([
      'no table of the source has a table of that name in the target, so nothing would be copied: the source has ' +
        'notes, users, the target (schema public) accounts',
    ]);
    expect(await query(url, 'SELECT count(*)::int AS n FROM accounts')).toEqual([{ n: 1 }]);
  });

  test('a checkpoint of another copy names what differs, in agreement with how many do', async () => {
    const url = await target(`CREATE TABLE a (id integer PRIMARY KEY);`);
    const first = sqliteFile(`CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);`);
    const checkpoint = `${first}.checkpoint.json`;
    const done = await runCli(['copy', '--from', sqliteUrl(first), '--to', url, '--checkpoint', checkpoint]);
    expect(done.code, done.stderr).toBe(0);
    const second = sqliteFile(`CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (2);`);
    const run = await runCli(['copy', '--from', sqliteUrl(second), '--to', url, '--checkpoint', checkpoint]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--checkpoint ${checkpoint} belongs to another copy (its source differs: `);
  });
});
