/**
 * `orion-db copy` from real SQLite files (built by the sqlite3 shell) and from PostgreSQL into a real
 * PostgreSQL, run as users run it: the built CLI in a child process.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { runCli } from '../helpers/cli';
import { adminQuery, client, createDatabase, query, SOP_MIGRATIONS, uniqueName } from '../helpers/db';
import { rdsMaster } from '../helpers/rds';
import { sqliteExec, sqliteFile } from '../helpers/sqlite';

const TYPED_TARGET = `
  CREATE TABLE typed (
    id bigint PRIMARY KEY, u uuid, ts timestamptz, tsn timestamp, d date, b boolean, j jsonb, js json,
    bin bytea, n numeric(12,3), i2 smallint, i4 integer, big bigint, f double precision, t text, tags text[]
  );`;

const TYPED_SOURCE = `
  CREATE TABLE typed (id INTEGER PRIMARY KEY, u, ts, tsn, d, b, j, js, bin, n, i2, i4, big, f, t, tags);
  INSERT INTO typed VALUES
    (1, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '2024-01-02T03:04:05Z', '2024-01-02 03:04:05.123456', '2024-01-02', 1,
        '{"a":[1,2],"ü":"✓"}', '{"b":  1}', X'00ff10', '12.5', 7, -2147483648, 4611686018427387904, 1.5,
        'Ωmega' || char(9) || 'tab' || char(10) || 'newline\\back', '["fr","de"]'),
    (2, '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12}', 1704164645, 1704164645123, '2024-01-02T23:30:00-02:00', 'true',
        NULL, NULL, 'text', 3, NULL, '42', '-9223372036854775808', 'NaN', 12, '{x,y}'),
    (3, X'a0eebc999c0b4ef8bb6d6bb9bd380a13', '2024-01-02 05:04:05+02:00', '2024-01-02T03:04:05Z', 1704164645, 0,
        '[1,"x",null]', '[]', NULL, 1.25, -32768, 0, 0, -0.5, NULL, NULL),
    (4, NULL, 1704164645.25, NULL, NULL, NULL, 'true', '"s"', NULL, NULL, NULL, NULL, NULL, NULL, '', '[]');`;

async function target(schema: string): Promise<string> {
  const db = await createDatabase('orion_copy');
  await query(db.url, schema);
  return db.url;
}

const sqliteUrl = (path: string) => `sqlite:///${path}`; // an absolute path: sqlite:////abs/path.db

describe('orion-db copy: conversion to the target types', () => {
  test('SQLite values become uuid, timestamptz (ISO text, unix s/ms), boolean, jsonb, bytea, numeric, arrays', async () => {
    const url = await target(TYPED_TARGET);
    const run = await runCli(['copy', '--from', sqliteUrl(sqliteFile(TYPED_SOURCE)), '--to', url, '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json()).toMatchObject({ ok: true, command: 'copy', tables: [{ table: 'typed', copied: 4 }] });
    const c = await client(url);
    await c.query(`SET TimeZone = 'UTC'`);
    const { rows: result } = await c.query(
      `SELECT id, u::text, ts::text, tsn::text, d::text, b, j::text, js::text, encode(bin, 'hex') AS bin, n::text,
              i2, i4, big::text, f::text, t, tags::text FROM typed ORDER BY id`,
    );
    await c.end();
    expect(result).toEqual([
      {
        id: '1',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        ts: '2024-01-02 03:04:05+00',
        tsn: '2024-01-02 03:04:05.123456',
        d: '2024-01-02',
        b: true,
        j: '{"a": [1, 2], "ü": "✓"}',
        js: '{"b":  1}',
        bin: '00ff10',
        n: '12.500',
        i2: 7,
        i4: -2147483648,
        big: '4611686018427387904',
        f: '1.5',
        t: 'Ωmega\ttab\nnewline\\back',
        tags: '{fr,de}',
      },
      {
        id: '2',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
        ts: '2024-01-02 03:04:05+00',
        tsn: '2024-01-02 03:04:05.123',
        d: '2024-01-03',
        b: true,
        j: null,
        js: null,
        bin: Buffer.from('text').toString('hex'),
        n: '3.000',
        i2: null,
        i4: 42,
        big: '-9223372036854775808',
        f: 'NaN',
        t: '12',
        tags: '{x,y}',
      },
      {
        id: '3',
        u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13',
        ts: '2024-01-02 03:04:05+00',
        tsn: '2024-01-02 03:04:05',
        d: '2024-01-02',
        b: false,
        j: '[1, "x", null]',
        js: '[]',
        bin: null,
        n: '1.250',
        i2: -32768,
        i4: 0,
        big: '0',
        f: '-0.5',
        t: null,
        tags: null,
      },
      {
        id: '4',
        u: null,
        ts: '2024-01-02 03:04:05.25+00',
        tsn: null,
        d: null,
        b: null,
        j: 'true',
        js: '"s"',
        bin: null,
        n: null,
        i2: null,
        i4: null,
        big: null,
        f: null,
        t: '',
        tags: '{}',
      },
    ]);
  });

  test('a value that does not convert names table, key and column; earlier batches stay, the checkpoint resumes', async () => {
    const url = await target(`CREATE TABLE items (id integer PRIMARY KEY, u uuid NOT NULL, at timestamptz);`);
    const path = sqliteFile(`
      CREATE TABLE items (id INTEGER PRIMARY KEY, u TEXT, at TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
      INSERT INTO items SELECT i, printf('00000000-0000-4000-8000-%012d', i), '2024-05-06 07:08:09' FROM n;
      UPDATE items SET u = 'not-a-uuid' WHERE id = 180;`);
    const checkpoint = join(dirname(path), 'checkpoint.json');
    const args = ['copy', '--from', sqliteUrl(path), '--to', url, '--batch-size', '100', '--checkpoint', checkpoint];
    const failed = await runCli([...args, '--json']);
    expect(failed.code).toBe(1);
    expect(failed.json().errors).toEqual([
      {
        message: 'table items, key id=180, column u: text "not-a-uuid" is not a uuid (target type uuid)',
        table: 'items',
        key: 'key id=180',
        column_name: 'u',
      },
    ]);
    expect((await query(url, 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(100);
    sqliteExec(path, `UPDATE items SET u = '00000000-0000-4000-8000-000000000180' WHERE id = 180;`);
    // The same command with --truncate would discard the committed batch and its checkpoint: refused.
    const saved = readFileSync(checkpoint, 'utf8');
    const truncating = await runCli([...args, '--truncate']);
    expect(truncating.code).toBe(2);
    expect(truncating.stderr).toContain(
      `--truncate: --checkpoint ${checkpoint} holds an unfinished run of this same copy (100 row(s) committed), ` +
        'which --truncate would discard; nothing was changed. To resume it, run the same command without ' +
        `--truncate; to start over, delete ${checkpoint} (or give another --checkpoint file) and run with --truncate`,
    );
    expect(readFileSync(checkpoint, 'utf8')).toBe(saved);
    expect((await query(url, 'SELECT count(*)::int AS n FROM items'))[0].n).toBe(100);
    const resumed = await runCli([...args, '--json']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({
      resumed: true,
      tables: [{ table: 'items', copied: 150, resumed_from: 100 }],
    });
    expect(
      await query(url, 'SELECT count(*)::int AS n, count(DISTINCT id)::int AS d, sum(id)::int AS s FROM items'),
    ).toEqual([{ n: 250, d: 250, s: (250 * 251) / 2 }]);
    // A finished checkpoint holds nothing to lose: --truncate starts the copy over.
    const again = await runCli([...args, '--truncate', '--json']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ resumed: false, tables: [{ table: 'items', copied: 250, resumed_from: 0 }] });
  });

  test('a value the server refuses (too long for its varchar) names the row by key, read again from SQLite', async () => {
    const url = await target(`CREATE TABLE codes (id integer PRIMARY KEY, code varchar(3) NOT NULL);`);
    const path = sqliteFile(`
      CREATE TABLE codes (id INTEGER PRIMARY KEY, code TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
      INSERT INTO codes SELECT i, 'c' || i FROM n;
      UPDATE codes SET code = 'toolong' WHERE id = 17;`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--batch-size', '10', '--json']);
    expect(run.code).toBe(1);
    expect(run.json().errors).toEqual([
      {
        sqlstate: '22001',
        message:
          'table codes, key id=17, column code: the server refused it: value too long for type character varying(3)',
        table: 'codes',
        key: 'key id=17',
        column_name: 'code',
      },
    ]);
    expect(await query(url, 'SELECT count(*)::int AS n FROM codes')).toEqual([{ n: 10 }]);
  });

  test('a bad time and a bad boolean are refused with the row named; a text with NUL is refused', async () => {
    const url = await target(`CREATE TABLE e (k text PRIMARY KEY, at timestamptz, ok boolean, note text);`);
    for (const [values, column, problem] of [
      [`('a', '2024-02-30 10:00:00', 1, 'x')`, 'at', 'text "2024-02-30 10:00:00" is not a valid date and time'],
      [`('b', '2024-02-03', 2, 'x')`, 'ok', 'number 2 is not a boolean (0 or 1)'],
      [`('c', NULL, 0, 'nul' || char(0) || 'byte')`, 'note', 'text contains a NUL character'],
    ]) {
      const path = sqliteFile(`CREATE TABLE e (k TEXT PRIMARY KEY, at, ok, note); INSERT INTO e VALUES ${values};`);
      const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
      expect(run.code).toBe(1);
      expect(run.json().errors[0].message).toContain(`table e, key k=${values[2]}, column ${column}: ${problem}`);
    }
    expect(await query(url, 'SELECT count(*)::int AS n FROM e')).toEqual([{ n: 0 }]);
  });
});

describe('orion-db copy: before anything is written', () => {
  test('unique and primary keys of the target are checked against the source, on converted values', async () => {
    const url = await target(`
      CREATE TABLE owners (id integer PRIMARY KEY);
      INSERT INTO owners VALUES (1);
      CREATE TABLE tokens (id uuid PRIMARY KEY, owner integer REFERENCES owners (id), kind text, value text,
                           UNIQUE (owner, kind, value));
      DELETE FROM owners;`);
    const path = sqliteFile(`
      CREATE TABLE owners (id INTEGER PRIMARY KEY);
      INSERT INTO owners VALUES (1);
      CREATE TABLE tokens (id TEXT PRIMARY KEY, owner, kind TEXT, value TEXT);
      INSERT INTO tokens VALUES
        ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 1, 'viewer', 'v1'),
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, 'viewer', 'v2'),
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 1, 'speaker', 's'),
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13', '1', 'speaker', 's'),
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14', NULL, 'speaker', 's'),
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15', NULL, 'speaker', 's');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code).toBe(2);
    expect(run.json().errors).toEqual([
      {
        message:
          'table tokens: unique key tokens_pkey (id) would be violated: 2 source rows have (id) = (a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11); nothing was copied',
      },
      {
        message:
          'table tokens: unique key tokens_owner_kind_value_key (owner, kind, value) would be violated: 2 source rows have (owner, kind, value) = (1, speaker, s); nothing was copied',
      },
    ]);
    expect(
      await query(url, 'SELECT (SELECT count(*) FROM owners)::int AS o, (SELECT count(*) FROM tokens)::int AS t'),
    ).toEqual([{ o: 0, t: 0 }]);
  });

  test('a key a SQLite unique index already holds is not grouped again, unless its values change on the way', async () => {
    const schema = `CREATE TABLE h (id uuid PRIMARY KEY, n text UNIQUE, code text UNIQUE, at timestamptz UNIQUE)`;
    const source = (rows: string) =>
      sqliteFile(
        `CREATE TABLE h (id TEXT PRIMARY KEY, n UNIQUE, code TEXT UNIQUE, at UNIQUE); INSERT INTO h VALUES ${rows};`,
      );
    // SQLite calls 1 and '1', or two spellings of one instant, distinct; the target does not.
    const clash = await runCli([
      'copy',
      '--from',
      sqliteUrl(
        source(`('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1, 'x', '2024-01-01T00:00:00Z'),
                ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', '1', 'y', '2024-01-01 02:00:00+02:00')`),
      ),
      '--to',
      await target(schema),
      '--json',
    ]);
    expect(clash.code, clash.stderr).toBe(2);
    expect(clash.json().errors.map((e: { message: string }) => e.message)).toEqual([
      'table h: unique key h_at_key (at) would be violated: 2 source rows have (at) = (2024-01-01 00:00:00+00); nothing was copied',
      'table h: unique key h_n_key (n) would be violated: 2 source rows have (n) = (1); nothing was copied',
    ]);
    const clean = await runCli([
      'copy',
      '--from',
      sqliteUrl(
        source(`('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'one', 'x', '2024-01-01T00:00:00Z'),
                ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12', 'two', 'y', '2024-01-02T00:00:00Z')`),
      ),
      '--to',
      await target(schema),
      '--json',
    ]);
    expect(clean.code, clean.stderr).toBe(0);
    // id, n and code are left to SQLite's indexes; at (a time, spelled many ways) is grouped by the target.
    expect(clean.json().precheck).toMatchObject({ keys: 4, held_by_source: 3 });
  });

  test('a target table with rows is refused unless --truncate; nothing is written', async () => {
    const url = await target(`CREATE TABLE a (id integer PRIMARY KEY, v text); INSERT INTO a VALUES (99, 'old');`);
    const path = sqliteFile(
      `CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO a VALUES (1, 'new'), (2, 'new');`,
    );
    const refused = await runCli(['copy', '--from', sqliteUrl(path), '--to', url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('target table(s) a already have rows; nothing was copied. Pass --truncate');
    expect(await query(url, 'SELECT id FROM a')).toEqual([{ id: 99 }]);
    const truncated = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--truncate', '--json']);
    expect(truncated.code, truncated.stderr).toBe(0);
    expect(truncated.json().truncated).toEqual(['a']);
    expect(await query(url, 'SELECT id, v FROM a ORDER BY id')).toEqual([
      { id: 1, v: 'new' },
      { id: 2, v: 'new' },
    ]);
  });

  test('columns: a source column without a target column, or a required target column without a source, is refused', async () => {
    const url = await target(
      `CREATE TABLE a (id integer PRIMARY KEY, must text NOT NULL); CREATE TABLE b (id integer PRIMARY KEY);`,
    );
    const path = sqliteFile(
      `CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE b (id INTEGER PRIMARY KEY, extra TEXT);`,
    );
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code).toBe(2);
    expect(run.json().errors.map((e: { message: string }) => e.message)).toEqual([
      'table a: the source has no column must, which the target requires (NOT NULL, no default)',
      'table b: source column(s) extra have no column in the target; their data would be lost',
    ]);
  });

  test('SRC forms: sqlite:///relative, sqlite:////absolute, postgresql+driver://; bad forms name the flag', async () => {
    const url = await target(`CREATE TABLE a (id integer PRIMARY KEY);`);
    const path = sqliteFile(`CREATE TABLE a (id INTEGER PRIMARY KEY); INSERT INTO a VALUES (1);`, 'rules.db');
    const relative = await runCli(
      ['copy', '--from', 'sqlite:///rules.db', '--to', url.replace(/^postgres:/, 'postgresql+psycopg:')],
      {
        cwd: dirname(path),
      },
    );
    expect(relative.code, relative.stderr).toBe(0);
    expect(relative.stdout).toContain('ok: 1 row copied into 1 table(s)');
    const twoSlashes = await runCli(['copy', '--from', 'sqlite://rules.db', '--to', url]);
    expect(twoSlashes.code).toBe(2);
    expect(twoSlashes.stderr).toContain(
      '--from: a SQLite source is sqlite:///relative/path.db or sqlite:////absolute/path.db',
    );
    const plainPath = await runCli(['copy', '--from', '/tmp/rules.db', '--to', url]);
    expect(plainPath.code).toBe(2);
    expect(plainPath.stderr).toContain('--from: expected a postgres:// URL or sqlite:///path.db, got "/tmp/rules.db"');
    for (const secretBearing of ['host=db user=u password=hunter2 dbname=d', 'u:hunter2/x@db:5432/d']) {
      const refused = await runCli(['copy', '--from', 'sqlite:///rules.db', '--to', secretBearing]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).not.toContain('hunter2');
    }
    const missing = await runCli(['copy', '--from', 'sqlite:////nowhere/rules.db', '--to', url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--from: no SQLite file at /nowhere/rules.db');
    const notSqlite = sqliteFile('');
    writeFileSync(notSqlite, 'this is not a database');
    const garbage = await runCli(['copy', '--from', sqliteUrl(notSqlite), '--to', url]);
    expect(garbage.code).toBe(2);
    expect(garbage.stderr).toContain(`--from: ${notSqlite} is not a readable SQLite database`);
  });
});

describe('orion-db copy: order, keys and sequences', () => {
  test('parents before children, self-references and tables without a primary key in one statement, sequences advanced', async () => {
    const url = await target(`
      CREATE TABLE z_parent (id serial PRIMARY KEY, name text NOT NULL);
      CREATE TABLE a_child (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, parent_id int NOT NULL REFERENCES z_parent (id));
      CREATE TABLE tree (id int PRIMARY KEY, parent_id int REFERENCES tree (id));
      CREATE TABLE log (at timestamptz NOT NULL, message text);`);
    const path = sqliteFile(`
      CREATE TABLE z_parent (id INTEGER PRIMARY KEY, name TEXT);
      CREATE TABLE a_child (id INTEGER PRIMARY KEY, parent_id INTEGER);
      CREATE TABLE tree (id INTEGER PRIMARY KEY, parent_id INTEGER);
      CREATE TABLE log (at TEXT, message TEXT);
      INSERT INTO z_parent VALUES (1, 'p1'), (7, 'p7');
      INSERT INTO a_child VALUES (10, 7), (11, 1), (12, 7);
      INSERT INTO tree VALUES (1, 5), (2, 5), (3, 1), (5, NULL);
      INSERT INTO log VALUES ('2024-01-01T00:00:00Z', 'a'), (1704067200, 'a');`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--batch-size', '2', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const tables = run.json().tables;
    expect(tables.map((t: { table: string }) => t.table)).toEqual(['log', 'tree', 'z_parent', 'a_child']);
    expect(tables).toMatchObject([
      { table: 'log', mode: 'whole', whole_because: 'the target table has no primary key', copied: 2 },
      {
        table: 'tree',
        mode: 'whole',
        whole_because: 'it references itself (a parent row may come after its children)',
        copied: 4,
      },
      { table: 'z_parent', mode: 'batches', copied: 2 },
      { table: 'a_child', mode: 'batches', copied: 3 },
    ]);
    // The report's per-table counts and timings.
    for (const t of tables) {
      expect(t).toMatchObject({ source_rows: t.copied, resumed_from: 0 });
      expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(t.rows_per_second === null || t.rows_per_second >= 0).toBe(true);
    }
    expect(run.json().precheck).toMatchObject({ keys: expect.any(Number), ms: expect.any(Number) });
    expect(await query(url, `INSERT INTO z_parent (name) VALUES ('next') RETURNING id`)).toEqual([{ id: 8 }]);
    expect(await query(url, `INSERT INTO a_child (parent_id) VALUES (1) RETURNING id`)).toEqual([{ id: '13' }]);
    expect(await query(url, `SELECT count(DISTINCT at)::int AS n FROM log`)).toEqual([{ n: 1 }]);
    // Foreign keys set aside while rows arrived are back, validated, as they were defined.
    expect(
      await query(
        url,
        `SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def, convalidated AS valid
           FROM pg_constraint WHERE contype = 'f' ORDER BY 1`,
      ),
    ).toEqual([
      { t: 'a_child', def: 'FOREIGN KEY (parent_id) REFERENCES z_parent(id)', valid: true },
      { t: 'tree', def: 'FOREIGN KEY (parent_id) REFERENCES tree(id)', valid: true },
    ]);
  });

  test('a child row whose parent is not in the source is named when its foreign key is validated', async () => {
    const url = await target(`
      CREATE TABLE parent (id int PRIMARY KEY);
      CREATE TABLE child (id int PRIMARY KEY, parent_id int REFERENCES parent (id) ON DELETE CASCADE);`);
    const path = sqliteFile(`
      CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER);
      INSERT INTO parent VALUES (1); INSERT INTO child VALUES (10, 1), (11, 2);`);
    const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code).toBe(1);
    expect(run.json().errors).toEqual([
      {
        sqlstate: '23503',
        message:
          'table child: foreign key child_parent_id_fkey does not hold for the copied rows: Key (parent_id)=(2) is not present in table "parent". ' +
          'The rows stay, with the key NOT VALID; fix the source and copy again with --truncate',
      },
    ]);
    expect(
      await query(
        url,
        `SELECT pg_get_constraintdef(oid) AS def, convalidated AS valid FROM pg_constraint WHERE contype = 'f'`,
      ),
    ).toEqual([{ def: 'FOREIGN KEY (parent_id) REFERENCES parent(id) ON DELETE CASCADE NOT VALID', valid: false }]);
  });
});

describe('orion-db copy: PostgreSQL to PostgreSQL', () => {
  test('copies by primary key and verify compares; a changed row is named by its key', async () => {
    const schema = `CREATE TABLE activities (id uuid PRIMARY KEY, title text NOT NULL, at timestamptz NOT NULL, meta jsonb);`;
    const source = await target(schema);
    await query(
      source,
      `INSERT INTO activities SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'Réunion ' || i,
              '2024-01-01T00:00:00Z'::timestamptz + i * interval '1 minute', jsonb_build_object('i', i)
         FROM generate_series(1, 2500) i`,
    );
    const url = await target(schema);
    const run = await runCli(['copy', '--from', source, '--to', url, '--batch-size', '1000', '--json']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.json().tables).toMatchObject([{ table: 'activities', copied: 2500, mode: 'batches' }]);
    const same = await runCli(['verify', '--from', source, '--to', url, '--sample', '1']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toContain(
      'ok: row counts match in 1 table(s); a 100 % sample (2500 rows) matched value for value; no unique-key conflicts in --from (1 keys checked)',
    );
    await query(url, `UPDATE activities SET title = 'changed' WHERE id = '00000000-0000-4000-8000-000000000042'`);
    const changed = await runCli(['verify', '--from', source, '--to', url, '--sample', '1', '--json']);
    expect(changed.code).toBe(1);
    expect(changed.json().errors).toEqual([
      {
        message:
          'table activities: same row count (2500) but the sampled rows differ: key id=00000000-0000-4000-8000-000000000042 differs in title',
      },
    ]);
  });
});

describe('orion-db copy: PostgreSQL to PostgreSQL, streamed (same column types)', () => {
  // Keys with a tab, a newline, a backslash, a quote and unicode: COPY escapes them, and the batch's
  // last key is read back from that text to resume after it.
  const SCHEMA = `CREATE TABLE notes (a text, b int, v text, at timestamptz, PRIMARY KEY (a, b), CHECK (v <> 'bad'));`;
  const ROWS = `INSERT INTO notes SELECT k, i % 2, 'v' || i, '2024-01-01T00:00:00Z'::timestamptz + i * interval '1 hour'
                  FROM generate_series(1, 10) i,
                       LATERAL (SELECT (ARRAY[E'tab\\there', E'new\\nline', E'back\\\\slash', 'it''s', 'Ωmega ✓'])[i % 5 + 1]
                                       || E'\\t\\\\' || i AS k) k`;

  test('a refused row stops the copy with its batch; the re-run resumes after the last committed key, exactly once', async () => {
    const source = await target(SCHEMA.replace(", CHECK (v <> 'bad')", ''));
    await query(source, ROWS);
    await query(source, `UPDATE notes SET v = 'bad' WHERE v = 'v7'`);
    const url = await target(SCHEMA);
    const checkpoint = join(dirname(sqliteFile('CREATE TABLE x (a)')), 'pg-checkpoint.json');
    const args = ['copy', '--from', source, '--to', url, '--batch-size', '3', '--checkpoint', checkpoint, '--json'];
    const failed = await runCli(args);
    expect(failed.code).toBe(1);
    const bad = (await query(source, `SELECT a, b FROM notes WHERE v = 'bad'`))[0];
    expect(failed.json().errors).toEqual([
      {
        sqlstate: '23514',
        // The row as a whole is refused: no column is named (it printed `column ?`), the DETAIL is kept.
        message: `table notes, key a=${bad.a}, b=${bad.b}: the server refused it: new row for relation "notes" violates check constraint "notes_v_check"`,
        detail: expect.stringContaining('Failing row contains ('),
        table: 'notes',
        key: `key a=${bad.a}, b=${bad.b}`,
        column_name: null,
      },
    ]);
    // The batches before the refused one are committed: the rows ordered first by (a, b).
    const ordered = (await query(source, 'SELECT a, b FROM notes ORDER BY a, b')).map((r) => `${r.a}/${r.b}`);
    const badAt = ordered.indexOf(
      (await query(source, `SELECT a, b FROM notes WHERE v = 'bad'`)).map((r) => `${r.a}/${r.b}`)[0],
    );
    const committed = Math.floor(badAt / 3) * 3;
    expect((await query(url, 'SELECT a, b FROM notes ORDER BY a, b')).map((r) => `${r.a}/${r.b}`)).toEqual(
      ordered.slice(0, committed),
    );
    const saved = JSON.parse(readFileSync(checkpoint, 'utf8')).progress.notes;
    expect(saved.rows).toBe(committed);
    if (committed) expect(`${saved.after[0]}/${saved.after[1]}`).toBe(ordered[committed - 1]);

    await query(source, `UPDATE notes SET v = 'fixed' WHERE v = 'bad'`);
    const resumed = await runCli(args);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.json()).toMatchObject({
      resumed: true,
      tables: [{ table: 'notes', resumed_from: committed, copied: 10 - committed }],
    });
    const verify = await runCli(['verify', '--from', source, '--to', url, '--sample', '1']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(await query(url, 'SELECT count(*)::int AS n FROM notes')).toEqual([{ n: 10 }]);
  });

  test('the report gives the batch size that ran: streamed batches have their own, --batch-size still decides', async () => {
    const schema = 'CREATE TABLE n (id int PRIMARY KEY, v text);';
    const source = await target(schema);
    await query(source, `INSERT INTO n SELECT i, 'v' || i FROM generate_series(1, 10) i`);
    const streamed = await runCli(['copy', '--from', source, '--to', await target(schema), '--json']);
    expect(streamed.code, streamed.stderr).toBe(0);
    expect(streamed.json()).toMatchObject({ batch_size: 50_000, tables: [{ table: 'n', batch_size: 50_000 }] });
    const given = await runCli(['copy', '--from', source, '--to', await target(schema), '--batch-size', '4', '--json']);
    expect(given.json()).toMatchObject({ batch_size: 4, tables: [{ table: 'n', batch_size: 4 }] });
    const path = sqliteFile(`CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO n VALUES (1, 'a');`);
    const fromSqlite = await runCli(['copy', '--from', sqliteUrl(path), '--to', await target(schema), '--json']);
    expect(fromSqlite.json()).toMatchObject({ batch_size: 1000, tables: [{ table: 'n', batch_size: 1000 }] });
  });

  test('the unique pre-check groups same-typed keys on the source: a conflict is named and nothing is copied', async () => {
    const source = await target('CREATE TABLE codes (id int PRIMARY KEY, code text, region int);');
    await query(
      source,
      `INSERT INTO codes VALUES (1, 'x', 1), (2, 'y', 1), (3, 'x', 1), (4, 'x', NULL), (5, 'x', NULL)`,
    );
    const url = await target('CREATE TABLE codes (id int PRIMARY KEY, code text, region int, UNIQUE (code, region));');
    const run = await runCli(['copy', '--from', source, '--to', url, '--json']);
    expect(run.code).toBe(2);
    // Rows with a NULL in the key do not conflict (NULLS DISTINCT), as in the target.
    expect(run.json().errors).toEqual([
      {
        message:
          'table codes: unique key codes_code_region_key (code, region) would be violated: 2 source rows have (code, region) = (x, 1); nothing was copied',
      },
    ]);
    expect(await query(url, 'SELECT count(*)::int AS n FROM codes')).toEqual([{ n: 0 }]);
  });
});

describe('orion-db verify from SQLite', () => {
  test('counts, a sample compared on target types (text times equal timestamptz), unique keys; a changed row is named', async () => {
    const path = sqliteFile(`
      CREATE TABLE activities (id TEXT PRIMARY KEY, title TEXT, start_time TEXT, langs TEXT, active INTEGER);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)
      INSERT INTO activities SELECT printf('00000000-0000-4000-8000-%012d', i), 'Séance ' || i,
             CASE WHEN i % 2 THEN strftime('%Y-%m-%dT%H:%M:%S+08:00', 1700000000 + i, 'unixepoch') ELSE 1700000000 + i END,
             '["fr", "de"]', i % 2 FROM n;`);
    const url = await target(
      `CREATE TABLE activities (id uuid PRIMARY KEY, title text, start_time timestamptz, langs jsonb, active boolean);`,
    );
    expect((await runCli(['copy', '--from', sqliteUrl(path), '--to', url])).code).toBe(0);
    const same = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--sample', '0.5', '--json']);
    expect(same.code, same.stdout).toBe(0);
    const report = same.json();
    expect(report.tables.activities).toMatchObject({ from: { rows: 400 }, to: { rows: 400 } });
    expect(report.tables.activities.from.sample_hash).toBe(report.tables.activities.to.sample_hash);
    expect(report.sampled_rows).toBeGreaterThan(100);
    expect(report.sampled_rows).toBeLessThan(300);

    await query(
      url,
      `UPDATE activities SET start_time = start_time + interval '1 second' WHERE id = '00000000-0000-4000-8000-000000000007'`,
    );
    await query(url, `DELETE FROM activities WHERE id = '00000000-0000-4000-8000-000000000008'`);
    const changed = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--sample', '1', '--json']);
    expect(changed.code).toBe(1);
    expect(changed.json().errors).toEqual([
      { message: 'table activities: 400 rows in --from, 399 in --to' },
      {
        message:
          'table activities: sampled rows differ: key id=00000000-0000-4000-8000-000000000007 differs in start_time; ' +
          'key id=00000000-0000-4000-8000-000000000008 is missing from --to',
      },
    ]);
  });

  test('--tables compares only the tables named; a table in neither database is refused by name', async () => {
    const path = sqliteFile(`
      CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);
      CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT);
      INSERT INTO a VALUES (1, 'x'), (2, 'y');
      INSERT INTO b VALUES (1, 'x');`);
    const url = await target(
      `CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text);`,
    );
    expect((await runCli(['copy', '--from', sqliteUrl(path), '--to', url])).code).toBe(0);
    await query(url, `UPDATE b SET v = 'changed'`);
    const all = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--sample', '1', '--json']);
    expect(all.code).toBe(1);
    const onlyA = await runCli([
      'verify',
      '--from',
      sqliteUrl(path),
      '--to',
      url,
      '--tables',
      'a',
      '--sample',
      '1',
      '--json',
    ]);
    expect(onlyA.code, onlyA.stdout).toBe(0);
    expect(Object.keys(onlyA.json().tables)).toEqual(['a']);
    const unknown = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--tables', 'a,nope', '--json']);
    expect(unknown.code).toBe(2);
    expect(JSON.stringify(unknown.json().errors)).toMatch(/nope/);
  });

  test('--to as a role without TEMPORARY on the database: verify and the pre-check name the privilege and the URL to use', async () => {
    const db = await createDatabase('orion_copy');
    await query(db.url, `CREATE TABLE a (id uuid PRIMARY KEY, code text)`);
    const role = uniqueName('orion_app');
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'app-pw'`);
    try {
      await query(db.url, `REVOKE TEMPORARY ON DATABASE ${db.name} FROM PUBLIC; GRANT SELECT, INSERT ON a TO ${role}`);
      const app = new URL(db.url);
      app.username = role;
      app.password = 'app-pw';
      // code: uuids in two spellings, so the pre-check needs the server to group them.
      const path = sqliteFile(`CREATE TABLE a (id TEXT PRIMARY KEY, code TEXT UNIQUE);
        INSERT INTO a VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'x');`);
      const hint = (purpose: string) =>
        `--to: ${purpose} needs a temporary table, and role ${role} lacks the TEMPORARY privilege on database ${db.name} ` +
        `(permission denied to create temporary tables in database "${db.name}"); use the admin/master URL for --to ` +
        `(RDS's master has it), or GRANT TEMPORARY ON DATABASE "${db.name}" TO "${role}"`;
      const verify = await runCli(['verify', '--from', sqliteUrl(path), '--to', app.toString(), '--json']);
      expect(verify.code).toBe(2);
      expect(verify.json().errors).toEqual([{ message: hint('comparing the sampled rows') }]);
      const copy = await runCli(['copy', '--from', sqliteUrl(path), '--to', app.toString(), '--json']);
      expect(copy.code).toBe(2);
      expect(copy.json().errors).toEqual([{ message: hint('the unique pre-check') }]);
      expect(verify.stdout + copy.stdout).not.toContain('app-pw');
    } finally {
      await adminQuery(`DROP DATABASE ${db.name} WITH (FORCE)`);
      await adminQuery(`DROP ROLE ${role}`);
    }
  });

  test('a unique conflict in the source fails verify, naming table, key and values', async () => {
    const path = sqliteFile(`
      CREATE TABLE a (id TEXT PRIMARY KEY, code TEXT);
      INSERT INTO a VALUES ('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', 'x'), ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'y');`);
    const url = await target(`CREATE TABLE a (id uuid PRIMARY KEY, code text);`);
    const run = await runCli(['verify', '--from', sqliteUrl(path), '--to', url, '--json']);
    expect(run.code).toBe(1);
    expect(run.json().errors).toContainEqual({
      message:
        'table a: unique key a_pkey (id) would be violated: 2 source rows have (id) = (a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11) in --from',
    });
  });
});

describe('orion-db copy as an RDS-like master (not a superuser)', () => {
  test('into tables the master made: copy, --truncate, the pre-check and sequences need no superuser', async () => {
    const master = await rdsMaster();
    const name = uniqueName('orion_rds_copy');
    await query(master.url(), `CREATE DATABASE ${name}`);
    try {
      const url = master.url(name);
      await query(url, readFileSync(join(SOP_MIGRATIONS, '000001_init_schema.up.sql'), 'utf8'));
      await query(url, `ALTER TABLE viewer_entries ADD COLUMN n serial`);
      const path = sqliteFile(`
        CREATE TABLE activities (id TEXT PRIMARY KEY, title TEXT, description TEXT, speaker TEXT, start_time TEXT,
          end_time TEXT, input_language TEXT, target_languages TEXT, cover_url TEXT, status TEXT, viewer_url TEXT,
          created_at INTEGER, updated_at TEXT);
        INSERT INTO activities VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'T', NULL, 'S', '2024-01-02 03:04:05', NULL,
          'en', '["fr"]', NULL, 'scheduled', NULL, 1704164645000, '2024-01-02T03:04:05Z');
        CREATE TABLE activity_tokens (id TEXT PRIMARY KEY, activity_id TEXT, type TEXT, value TEXT, expires_at TEXT,
          max_audience INTEGER, created_at TEXT, status TEXT);
        CREATE TABLE viewer_entries (activity_id TEXT PRIMARY KEY, share_url TEXT, qr_type TEXT, qr_content TEXT,
          status TEXT, updated_at TEXT, n INTEGER);
        INSERT INTO viewer_entries VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'u', 'url', 'c', 'ready', 0, 41);`);
      const partial = await runCli([
        'copy',
        '--from',
        sqliteUrl(path),
        '--to',
        url,
        '--tables',
        'activities',
        '--truncate',
      ]);
      expect(partial.code).toBe(2);
      expect(partial.stderr).toContain(
        '--truncate: activity_tokens, viewer_entries reference(s) copied tables but are not copied',
      );
      for (const extra of [[], ['--truncate']]) {
        const run = await runCli(['copy', '--from', sqliteUrl(path), '--to', url, ...extra, '--json']);
        expect(run.code, run.stdout + run.stderr).toBe(0);
        expect(run.json().tables.map((t: { copied: number }) => t.copied)).toEqual([1, 0, 1]);
        expect(run.stdout + run.stderr).not.toContain(master.password);
      }
      expect(await query(url, `SELECT created_at = updated_at AS same FROM activities`)).toEqual([{ same: true }]);
      expect(await query(url, `SELECT nextval(pg_get_serial_sequence('viewer_entries', 'n'))::int AS n`)).toEqual([
        { n: 42 },
      ]);
    } finally {
      await adminQuery(`DROP DATABASE ${name} WITH (FORCE)`);
    }
  });
});
