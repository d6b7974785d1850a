import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { ACTIVE_RULES, lintMigrations, SAFE_ALTERNATIVES } from '../../lambda/engine/lint';
import { lintErrorsForSynth } from '../../lib/private/lint-at-synth';
import { synthStack } from '../helpers/cdk';
import { runCli } from '../helpers/cli';
import { createDatabase, HOPPSCOTCH, migrationsDir, SHIPPED_MIGRATIONS, SOP_MIGRATIONS } from '../helpers/db';

const NO_TX = '-- orion:no-transaction\n';

/** Lints one up file (with a down file, so missing-down stays quiet unless asked). */
async function rulesFor(up: string, options: { down?: boolean; extra?: Record<string, string> } = {}) {
  const files: Record<string, string> = { '000001_m.up.sql': up, ...options.extra };
  if (options.down ?? true) files['000001_m.down.sql'] = 'SELECT 1;';
  const { diagnostics } = await lintMigrations(migrationsDir(files));
  return diagnostics;
}

// Each rule: a migration that triggers it, and the safe alternative that does not.
const RULES: [rule: string, dangerous: string, safe: string][] = [
  [
    'require-concurrent-index-creation',
    'CREATE INDEX i ON activities (title);',
    `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON activities (title);`,
  ],
  [
    'adding-foreign-key-constraint',
    'ALTER TABLE activities ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES y (id);',
    'ALTER TABLE activities ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES y (id) NOT VALID;',
  ],
  [
    'constraint-missing-not-valid',
    'ALTER TABLE activities ADD CONSTRAINT ck CHECK (x > 0);',
    'ALTER TABLE activities ADD CONSTRAINT ck CHECK (x > 0) NOT VALID;',
  ],
  [
    'adding-not-nullable-field',
    'ALTER TABLE activities ALTER COLUMN title SET NOT NULL;',
    'ALTER TABLE activities ADD CONSTRAINT title_nn CHECK (title IS NOT NULL) NOT VALID;',
  ],
  [
    'adding-required-field',
    'ALTER TABLE activities ADD COLUMN z bigint NOT NULL;',
    'ALTER TABLE activities ADD COLUMN z bigint NOT NULL DEFAULT 0;',
  ],
  [
    'adding-field-with-default',
    'ALTER TABLE activities ADD COLUMN v uuid DEFAULT gen_random_uuid();',
    'ALTER TABLE activities ADD COLUMN v uuid;',
  ],
  [
    'changing-column-type',
    'ALTER TABLE activities ALTER COLUMN title TYPE varchar(10);',
    'ALTER TABLE activities ADD COLUMN title_short text;',
  ],
  [
    'disallowed-unique-constraint',
    'ALTER TABLE activities ADD CONSTRAINT u UNIQUE (title);',
    'ALTER TABLE activities ADD CONSTRAINT u UNIQUE USING INDEX u_idx;',
  ],
  [
    'adding-serial-primary-key-field',
    'ALTER TABLE activities ADD COLUMN pk serial PRIMARY KEY;',
    'ALTER TABLE activities ADD CONSTRAINT activities_pk PRIMARY KEY USING INDEX activities_pk_idx;',
  ],
  ['ban-drop-table', 'DROP TABLE old_things;', "COMMENT ON TABLE old_things IS 'unused, dropped in a later release';"],
  [
    'ban-drop-column',
    'ALTER TABLE activities DROP COLUMN speaker;',
    "COMMENT ON COLUMN activities.speaker IS 'unused';",
  ],
  ['ban-truncate', 'TRUNCATE activities;', "DELETE FROM activities WHERE created_at < now() - interval '1 year';"],
  ['ban-drop-schema', 'DROP SCHEMA legacy;', "COMMENT ON SCHEMA legacy IS 'unused';"],
  ['renaming-table', 'ALTER TABLE activities RENAME TO events;', 'CREATE VIEW events AS SELECT * FROM activities;'],
  [
    'renaming-column',
    'ALTER TABLE activities RENAME COLUMN title TO name;',
    'ALTER TABLE activities ADD COLUMN name text;',
  ],
  [
    'non-transactional-multiple-statements',
    `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x);\nCREATE INDEX CONCURRENTLY IF NOT EXISTS b ON t (y);`,
    `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x);`,
  ],
  [
    'non-transactional-not-retryable',
    `${NO_TX}CREATE INDEX CONCURRENTLY a ON t (x);`,
    `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS a ON t (x);`,
  ],
  ['identifier-too-long', `CREATE TABLE ${'t'.repeat(64)} (id bigint);`, `CREATE TABLE ${'t'.repeat(63)} (id bigint);`],
];

describe('lint rules', () => {
  test.each(RULES)('%s fires on the dangerous form and not on the safe one', async (rule, dangerous, safe) => {
    const fired = await rulesFor(dangerous);
    expect(fired.map((d) => d.rule)).toContain(rule);
    const d = fired.find((x) => x.rule === rule)!;
    expect(d).toMatchObject({ file: '000001_m.up.sql', severity: 'error' });
    expect(d.help, `${rule} says what to do instead`).toMatch(/\w{3}/);
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect((await rulesFor(safe)).map((x) => x.rule)).not.toContain(rule);
  });

  test.each([
    ['quoted, with spaces', `CREATE TABLE "${'a b '.repeat(16)}" (id bigint);`],
    ['quoted, with doubled quotes', `CREATE TABLE "${'ab""'.repeat(22)}" (id bigint);`],
    ['22 three-byte characters', `CREATE TABLE ${'表'.repeat(22)} (id bigint);`],
    ['a column, unicode-escaped', `CREATE TABLE t (U&"${'\\0061'.repeat(64)}" bigint);`],
  ])('identifier-too-long sees a long name however it is written (%s)', async (_, sql) => {
    expect((await rulesFor(sql)).map((d) => d.rule)).toContain('identifier-too-long');
  });

  test('every rule a finding can come from has its safe alternative', () => {
    const missing = ACTIVE_RULES.filter((r) => !SAFE_ALTERNATIVES[r]?.trim());
    expect(missing).toEqual([]);
    expect(ACTIVE_RULES).toContain('changing-column-type');
  });

  test('enum-value-used-in-same-transaction is a warning, matched on the label and, where the tree says, the type', async () => {
    const used = await rulesFor("ALTER TYPE mood ADD VALUE 'sad';\nUPDATE people SET m = 'sad';");
    expect(used.find((d) => d.rule === 'enum-value-used-in-same-transaction')).toMatchObject({
      severity: 'warning',
      line: 2,
      message: expect.stringContaining("may use enum value 'sad' of mood, added by 000001_m.up.sql:1"),
    });
    const cast = await rulesFor("ALTER TYPE mood ADD VALUE 'sad';\nSELECT 'sad'::mood;");
    expect(cast.find((d) => d.rule === 'enum-value-used-in-same-transaction')?.message).toMatch(
      /uses enum value 'sad'/,
    );
    const otherType = await rulesFor(
      "ALTER TYPE mood ADD VALUE 'sad';\nCREATE TYPE weather AS ENUM ('sad', 'sunny');\nCREATE TABLE days (w weather DEFAULT 'sad');\nSELECT 'sad'::weather;",
    );
    expect(otherType.map((d) => d.rule)).not.toContain('enum-value-used-in-same-transaction');
  });

  test('reports the line of the offending statement', async () => {
    const d = await rulesFor('SELECT 1;\n\n-- why\nALTER TABLE activities DROP COLUMN speaker;');
    expect(d).toEqual([expect.objectContaining({ rule: 'ban-drop-column', line: 4 })]);
  });

  test('a migration without a down file is a warning', async () => {
    expect(await rulesFor('SELECT 1;', { down: false })).toEqual([
      expect.objectContaining({ rule: 'missing-down', severity: 'warning', help: 'Add 000001_m.down.sql' }),
    ]);
  });

  test("a Prisma migration has no down file to add: the help says what the layout allows, not 'Add …/migration.sql'", async () => {
    const dir = migrationsDir({});
    mkdirSync(join(dir, '20240101000000_init'));
    writeFileSync(join(dir, '20240101000000_init', 'migration.sql'), 'SELECT 1;');
    const { diagnostics } = await lintMigrations(dir);
    const d = diagnostics.find((x) => x.rule === 'missing-down');
    expect(d?.file).toBe('20240101000000_init/migration.sql');
    expect(d?.help).toMatch(/rollback policy keep or restore/);
    expect(d?.help).not.toContain('migration.sql');
  });

  test('statements on a table created earlier in the same file are exempt from the lock rules', async () => {
    const d = await rulesFor(
      'CREATE TABLE speakers (id bigint, name text);\nCREATE INDEX speakers_name ON speakers (name);\nALTER TABLE speakers ADD CONSTRAINT u UNIQUE (name);\nALTER TABLE speakers ALTER COLUMN name SET NOT NULL;',
    );
    expect(d).toEqual([]);
    // …but not statements on that table before it was created, nor on other tables.
    const other = await rulesFor('CREATE TABLE speakers (id bigint);\nCREATE INDEX a_title ON activities (title);');
    expect(other.map((x) => x.rule)).toEqual(['require-concurrent-index-creation']);
  });

  test('-- orion:allow <rule> opts one file out of one rule', async () => {
    expect(await rulesFor('-- orion:allow ban-drop-column\nALTER TABLE activities DROP COLUMN speaker;')).toEqual([]);
    const other = await rulesFor('-- orion:allow ban-drop-table\nALTER TABLE activities DROP COLUMN speaker;');
    expect(other.map((x) => x.rule)).toEqual(['ban-drop-column']);
    await expect(rulesFor('-- orion:allow ban-drop-colum\nSELECT 1;')).rejects.toThrow(
      /unknown lint rule "ban-drop-colum"/,
    );
    await expect(rulesFor('-- orion:allow\nSELECT 1;')).rejects.toThrow(/must name one lint rule/);
  });

  test('orion-lint.json opts the project out of rules', async () => {
    expect(
      await rulesFor('SELECT 1;', { down: false, extra: { 'orion-lint.json': '{ "allow": ["missing-down"] }' } }),
    ).toEqual([]);
    await expect(
      rulesFor('SELECT 1;', { extra: { 'orion-lint.json': '{ "allow": ["no-such-rule"] }' } }),
    ).rejects.toThrow(/orion-lint\.json: "allow" names unknown lint rule\(s\) "no-such-rule"/);
  });

  test('a timestamp column is prefer-timestamp-tz, as squawk names it, and allowing it works under that name and the old one', async () => {
    const sql = 'CREATE TABLE events (id bigint PRIMARY KEY, at timestamp);';
    expect((await rulesFor(sql)).map((d) => d.rule)).toContain('prefer-timestamp-tz');
    for (const name of ['prefer-timestamp-tz', 'prefer-timestamptz']) {
      expect((await rulesFor(`-- orion:allow ${name}\n${sql}`)).map((d) => d.rule)).not.toContain(
        'prefer-timestamp-tz',
      );
      const project = await rulesFor(sql, { extra: { 'orion-lint.json': `{ "allow": ["${name}"] }` } });
      expect(project.map((d) => d.rule)).not.toContain('prefer-timestamp-tz');
    }
  });

  test('every rule squawk reports is one the allow lists know (a renamed rule could not be allowed, and synth would refuse for good)', async () => {
    const { diagnostics } = await lintMigrations(
      migrationsDir({
        '000001_m.up.sql': [
          'CREATE TABLE t (a timestamp, b char(3), c int, d varchar(10), e serial);',
          'ALTER TABLE x ADD COLUMN y int DEFAULT random();',
          'ALTER TABLE x ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES y (id);',
          'ALTER TABLE x ADD COLUMN z int NOT NULL;',
          'ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0);',
          'CREATE DOMAIN d2 AS int CHECK (VALUE > 0);',
          'ALTER TABLE x DROP COLUMN q;',
          'ALTER TABLE x ALTER COLUMN q DROP NOT NULL;',
          'DROP TABLE x;',
          'TRUNCATE x CASCADE;',
          'ALTER TABLE x ALTER COLUMN q TYPE bigint;',
          'ALTER TABLE x ADD CONSTRAINT ck CHECK (q > 0);',
          'ALTER TABLE x ADD CONSTRAINT uq UNIQUE (q);',
          'ALTER TABLE x RENAME COLUMN a TO b;',
          'ALTER TABLE x RENAME TO y;',
          'CREATE INDEX i ON x (q);',
          `CREATE TABLE ${'a'.repeat(70)} (id int);`,
        ].join('\n'),
        '000001_m.down.sql': 'SELECT 1;',
      }),
    );
    const reported = [...new Set(diagnostics.map((d) => d.rule))];
    expect(reported.length).toBeGreaterThan(15);
    expect(reported.filter((r) => !ACTIVE_RULES.includes(r))).toEqual([]);
  });

  test('a long name, timestamp or char(n) is reported on a table the same file created (only lock and rewrite rules exempt it)', async () => {
    const long = 'i'.repeat(70);
    const rules = (
      await rulesFor(
        `CREATE TABLE t (id bigint PRIMARY KEY, at timestamp, c char(2));\nCREATE INDEX ${long} ON t (id);`,
      )
    ).map((d) => d.rule);
    expect(rules).toEqual(expect.arrayContaining(['identifier-too-long', 'prefer-timestamp-tz', 'ban-char-field']));
    expect(rules).not.toContain('require-concurrent-index-creation');
  });

  // Without errors, as the gates require (lint exit 0, cdk synth): a later migration may carry a warning
  // (one without a down file is valid) and the suite must stay green as the folder grows.
  test('the shipped migrations lint without errors', async () => {
    const { diagnostics } = await lintMigrations(SHIPPED_MIGRATIONS);
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  });
});

describe('orion-db lint', () => {
  test('a FOREIGN KEY without NOT VALID exits 1 naming rule, file and line; with NOT VALID it passes', async () => {
    const bad = migrationsDir({
      '000003_fk.up.sql': 'ALTER TABLE activities ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES y(id);',
      '000003_fk.down.sql': 'SELECT 1;',
    });
    const run = await runCli(['lint', '--json', '--migrations', bad]);
    expect(run.code).toBe(1);
    const report = run.json();
    expect(report).toMatchObject({ ok: false, command: 'lint', files: ['000003_fk.up.sql'] });
    expect(report.diagnostics).toContainEqual({
      file: '000003_fk.up.sql',
      line: 1,
      column: expect.any(Number),
      rule: 'adding-foreign-key-constraint',
      severity: 'error',
      message: expect.stringMatching(/SHARE ROW EXCLUSIVE/),
      help: expect.stringMatching(/NOT VALID/),
    });
    expect(report.errors).toContainEqual(
      expect.objectContaining({
        file: '000003_fk.up.sql',
        line: 1,
        message: expect.stringMatching(/^adding-foreign-key-constraint: /),
      }),
    );
    const text = await runCli(['lint', '--migrations', bad]);
    expect(text.stderr).toMatch(/000003_fk\.up\.sql:1: error adding-foreign-key-constraint: .*\n {4}help: .*NOT VALID/);

    const good = migrationsDir({
      '000003_fk.up.sql': 'ALTER TABLE activities ADD CONSTRAINT fk FOREIGN KEY (x) REFERENCES y(id) NOT VALID;',
      '000003_fk.down.sql': 'SELECT 1;',
    });
    const ok = await runCli(['lint', '--json', '--migrations', good]);
    expect(ok.code).toBe(0);
    expect(ok.json()).toMatchObject({ ok: true, diagnostics: [], errors: [] });
  });

  test('lints the files given as arguments; unreadable input exits 2', async () => {
    const dir = migrationsDir({ '000001_a.up.sql': 'TRUNCATE activities;' });
    const run = await runCli(['lint', `${dir}/000001_a.up.sql`, '--json']);
    expect(run.code).toBe(1);
    expect(run.json().diagnostics.map((d: any) => d.rule)).toEqual(['ban-truncate', 'missing-down']);
    expect((await runCli(['lint', '/nonexistent/000001_x.up.sql'])).code).toBe(2);
    expect((await runCli(['lint', '--migrations', migrationsDir({ '000001_a.up.sql': 'SELEC 1;' })])).code).toBe(2);
  });

  test('a folder given as an argument lints its migrations (not a raw EISDIR)', async () => {
    const dir = migrationsDir({ '000001_a.up.sql': 'TRUNCATE activities;', '000001_a.down.sql': 'SELECT 1;' });
    const run = await runCli(['lint', dir, '--json']);
    expect(run.code).toBe(1);
    expect(run.json()).toMatchObject({ files: ['000001_a.up.sql'], errors: [{ file: '000001_a.up.sql', line: 1 }] });
    expect(run.json().diagnostics.map((d: any) => d.rule)).toEqual(['ban-truncate']);
    expect(run.stderr).not.toMatch(/EISDIR/);
    const clean = await runCli(['lint', SOP_MIGRATIONS]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/2 file\(s\): 0 error\(s\)/);
  });
});

describe('lint at synth time', () => {
  test('cdk synth refuses a migrations folder with an unallowed destructive statement, and accepts it allowed', () => {
    const dangerous = migrationsDir({
      '000001_drop.up.sql': 'ALTER TABLE activities DROP COLUMN speaker;',
      '000001_drop.down.sql': 'SELECT 1;',
    });
    expect(() => synthStack('dev', {}, { migrationsDir: dangerous })).toThrow(
      /migration lint: 000001_drop\.up\.sql:1: ban-drop-column/,
    );
    const allowed = migrationsDir({
      '000001_drop.up.sql': '-- orion:allow ban-drop-column\nALTER TABLE activities DROP COLUMN speaker;',
      '000001_drop.down.sql': 'SELECT 1;',
    });
    expect(synthStack('dev', {}, { migrationsDir: allowed }).errors).toEqual([]);
  });

  test('a folder lint cannot read fails synth too: a syntax error, a missing folder', () => {
    expect(lintErrorsForSynth(migrationsDir({ '000001_a.up.sql': 'SELEC 1;' }))).toEqual([
      expect.stringMatching(/000001_a\.up\.sql:1: .*syntax error/),
    ]);
    expect(lintErrorsForSynth('/nonexistent/migrations')).toEqual([expect.stringMatching(/nonexistent/)]);
    expect(lintErrorsForSynth(SOP_MIGRATIONS)).toEqual([]);
  });
});

describe.skipIf(!existsSync(HOPPSCOTCH))('a history brought from another tool (hoppscotch, Prisma)', () => {
  /** The history as it is, plus one new migration of ours that builds an index the locking way. */
  const withNewMigration = (config?: object) => {
    const dir = join(mkdtempSync(join(tmpdir(), 'orion-history-')), 'migrations');
    cpSync(HOPPSCOTCH, dir, { recursive: true });
    mkdirSync(join(dir, '20990101000000_new_index'));
    writeFileSync(
      join(dir, '20990101000000_new_index', 'migration.sql'),
      'CREATE INDEX "User_uid_idx" ON "User" ("uid");\n',
    );
    if (config) writeFileSync(join(dir, 'orion-lint.json'), JSON.stringify(config));
    return dir;
  };
  const errors = async (dir: string) =>
    (await lintMigrations(dir)).diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.file} ${d.rule}`);

  test('history_through: what was applied before orion-db is not judged again; what comes after is', async () => {
    const judged = await errors(withNewMigration());
    expect(judged.filter((e) => !e.startsWith('20990101000000')).length).toBeGreaterThan(20); // timestamp, plain CREATE INDEX, …
    const after = await errors(withNewMigration({ history_through: '20260209063744' }));
    expect(after).toEqual(['20990101000000_new_index/migration.sql require-concurrent-index-creation']);
    await expect(lintMigrations(withNewMigration({ history_through: '20260209063745' }))).rejects.toThrow(
      /orion-lint\.json: "history_through" names "20260209063745", which is no migration's version in this folder/,
    );
    await expect(lintMigrations(withNewMigration({ history_thru: '1' }))).rejects.toThrow(
      /orion-lint\.json: unknown setting\(s\) history_thru/,
    );
  });

  test('migrate warns about the new migration only, not the history it applies', async () => {
    const { url } = await createDatabase();
    const dir = withNewMigration({ history_through: '20260209063744' });
    const run = await runCli(['migrate', '--database-url', url, '--migrations', dir]);
    expect(run.code).toBe(0);
    const warnings = run.stderr.split('\n').filter((l) => l.startsWith('warning:'));
    expect(warnings).toEqual([
      expect.stringMatching(/^warning: 20990101000000_new_index\/migration\.sql:1: require-concurrent-index-creation/),
    ]);
  });
});
