/**
 * Reading other tools' migration folders as they are (test/fixtures/layouts/<tool>/, written the way
 * each tool writes them): detection, versions and their order, up/down, and transaction markers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { BadInputError, BadInputErrors } from '../../lambda/engine/errors';
import { readMigrations } from '../../lambda/engine/files';
import { migrationsDir } from '../helpers/db';

const FIXTURES = join(__dirname, '..', 'fixtures', 'layouts');
const read = (tool: string) => readMigrations(join(FIXTURES, tool));
const summary = (ms: Awaited<ReturnType<typeof read>>['migrations']) =>
  ms.map((m) => ({ label: m.label, name: m.name, down: Boolean(m.down), noTx: m.up.directives.noTransaction }));

describe('layouts: each tool folder read as it is', () => {
  test('golang-migrate (flat up/down files) is the orion layout', async () => {
    const { layout, migrations } = await read('golang-migrate');
    expect(layout).toBe('orion');
    expect(migrations.map((m) => [m.version, m.label, m.source])).toEqual([
      [1n, '000001', '000001_create_activities'],
      [2n, '000002', '000002_create_activity_tokens'],
      [3n, '000003', '000003_add_viewer_url'],
    ]);
  });

  test('dbmate: up and down from one file, transaction:false per direction', async () => {
    const { layout, migrations } = await read('dbmate');
    expect(layout).toBe('dbmate');
    expect(summary(migrations)).toEqual([
      { label: '20240101120000', name: 'create_activities', down: true, noTx: false },
      { label: '20240102120000', name: 'create_activity_tokens', down: true, noTx: false },
      { label: '20240103120000', name: 'index_speaker', down: true, noTx: true },
    ]);
    const index = migrations[2];
    expect(index.down!.directives.noTransaction).toBe(true);
    // Only its own direction, at its own lines: statement 1 of the up part is line 2 of the file.
    expect(index.up.statements.map((s) => [s.line, s.sql.trim()])).toEqual([
      [2, 'CREATE INDEX CONCURRENTLY idx_activities_speaker ON activities (speaker)'],
    ]);
    expect(index.down!.statements.map((s) => s.line)).toEqual([5]);
    expect(migrations[0].up.text).not.toContain('DROP TABLE');
  });

  test('goose: Up/Down, StatementBegin/End dropped, NO TRANSACTION for both directions', async () => {
    const { layout, migrations } = await read('goose');
    expect(layout).toBe('goose');
    expect(summary(migrations)).toEqual([
      { label: '00001', name: 'create_activities', down: true, noTx: false },
      { label: '00002', name: 'tokens_and_trigger_function', down: true, noTx: false },
      { label: '00003', name: 'index_speaker', down: true, noTx: true },
    ]);
    expect(migrations[2].down!.directives.noTransaction).toBe(true);
    // The PL/pgSQL body with its own semicolons stays one statement.
    expect(migrations[1].up.statements.map((s) => s.kind)).toEqual(['CreateFunctionStmt', 'CreateStmt']);
  });

  test('Prisma: <timestamp>_<name>/migration.sql, no downs; the folder name is its identity', async () => {
    const { layout, migrations } = await read('prisma');
    expect(layout).toBe('prisma');
    expect(migrations.map((m) => [m.label, m.name, m.source, Boolean(m.down)])).toEqual([
      ['20240101120000', 'init', '20240101120000_init', false],
      ['20240102120000', 'tokens', '20240102120000_tokens', false],
    ]);
    expect(migrations[0].up.file).toBe('20240101120000_init/migration.sql');
  });

  test('Diesel: dashed timestamps and the initial setup, metadata.toml run_in_transaction = false', async () => {
    const { layout, migrations } = await read('diesel');
    expect(layout).toBe('diesel');
    expect(summary(migrations)).toEqual([
      { label: '00000000000000', name: 'diesel_initial_setup', down: true, noTx: false },
      { label: '20240101120000', name: 'create_activities', down: true, noTx: false },
      { label: '202401021200000001', name: 'index_speaker', down: true, noTx: true },
    ]);
  });

  test('Flyway: dotted versions in numeric order per part, U files as downs, .conf executeInTransaction=false', async () => {
    const { layout, migrations } = await read('flyway');
    expect(layout).toBe('flyway');
    expect(summary(migrations)).toEqual([
      { label: '1', name: 'create_activities', down: false, noTx: false },
      { label: '1.1', name: 'index_speaker', down: true, noTx: false },
      { label: '1.2.1', name: 'create_activity_tokens', down: false, noTx: false },
      { label: '1.10', name: 'add_viewer_url', down: false, noTx: false },
      { label: '2', name: 'index_status', down: false, noTx: true },
    ]);
    // Keys order as the labels do, and leave room: 1.2.1 < 1.10 < 2.
    expect(migrations.map((m) => m.version)).toEqual([
      1_000000000000n,
      1_000100000000n,
      1_000200010000n,
      1_001000000000n,
      2_000000000000n,
    ]);
  });

  test('Flyway with only whole versions keeps them as they are; V1_1 reads as 1.1; trailing zeros do not count', async () => {
    const whole = await readMigrations(
      migrationsDir({ 'V1__a.sql': 'SELECT 1;', 'V20240101120000__b.sql': 'SELECT 2;' }),
    );
    expect(whole.migrations.map((m) => [m.version, m.label])).toEqual([
      [1n, '1'],
      [20240101120000n, '20240101120000'],
    ]);
    const underscores = await readMigrations(migrationsDir({ 'V1__a.sql': 'SELECT 1;', 'V1_1__b.sql': 'SELECT 2;' }));
    expect(underscores.migrations.map((m) => m.label)).toEqual(['1', '1.1']);
    const err = await readMigrations(migrationsDir({ 'V1__a.sql': 'SELECT 1;', 'V1.0__b.sql': 'SELECT 2;' })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(/V1\.0__b\.sql|V1__a\.sql/);
    expect(err.message).toContain('duplicate version 1');
  });

  test('Flyway repeatable (R__) migrations are refused, naming the file', async () => {
    const err = await readMigrations(migrationsDir({ 'V1__a.sql': 'SELECT 1;', 'R__views.sql': 'SELECT 2;' })).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(/^R__views\.sql: Flyway repeatable migrations \(R__\) are not supported/);
  });
});

describe('layouts: detection and mistakes', () => {
  test('a folder mixing layouts is an error naming the files of each', async () => {
    const dir = migrationsDir({
      '000001_a.up.sql': 'SELECT 1;',
      '20240101120000_b.sql': '-- migrate:up\nSELECT 2;\n',
      'V3__c.sql': 'SELECT 3;',
    });
    const err = await readMigrations(dir).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toContain('mixes layouts');
    expect(err.message).toContain('orion: 000001_a.up.sql');
    expect(err.message).toContain('dbmate: 20240101120000_b.sql');
    expect(err.message).toContain('flyway: V3__c.sql');
  });

  test('--format forces one layout: the other files are named as not of it', async () => {
    const dir = migrationsDir({ '000001_a.up.sql': 'SELECT 1;', 'V3__c.sql': 'SELECT 3;' });
    const err = await readMigrations(dir, { format: 'flyway' }).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toBe('000001_a.up.sql: not a flyway migration file (--format flyway)');
  });

  test('a V_name.sql file with neither dbmate nor goose markers is a bad name, not silently skipped', async () => {
    const err = await readMigrations(migrationsDir({ '000001_a.sql': 'SELECT 1;' })).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputError);
    expect(err.message).toMatch(/^000001_a\.sql: bad migration file name/);
  });

  test('dbmate: SQL before the up marker, a second marker and an unknown option are errors with their lines', async () => {
    const dir = migrationsDir({
      '1_a.sql': 'SELECT 0;\n-- migrate:up\nSELECT 1;\n',
      '2_b.sql': '-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;\n',
      '3_c.sql': '-- migrate:up transaction:maybe\nSELECT 1;\n',
    });
    const err = await readMigrations(dir).catch((e) => e);
    expect(err).toBeInstanceOf(BadInputErrors);
    expect((err as BadInputErrors).toEntries().map((e) => [e.file, e.line])).toEqual([
      ['1_a.sql', 1],
      ['2_b.sql', 3],
      ['3_c.sql', 1],
    ]);
  });

  test('goose ENVSUB is refused (orion-db runs files as written)', async () => {
    const err = await readMigrations(
      migrationsDir({ '1_a.sql': '-- +goose Up\n-- +goose ENVSUB ON\nSELECT 1;\n' }),
    ).catch((e) => e);
    expect(err.message).toMatch(/^1_a\.sql:2: goose annotation "ENVSUB ON" is not supported/);
  });

  test('a Prisma folder whose migration.sql is missing is not a migration; other folders are ignored', async () => {
    const dir = migrationsDir({ 'migration_lock.toml': 'provider = "postgresql"\n' });
    mkdirSync(join(dir, '20240101120000_init'));
    writeFileSync(join(dir, '20240101120000_init', 'migration.sql'), 'SELECT 1;');
    mkdirSync(join(dir, 'docs'));
    const { layout, migrations } = await readMigrations(dir);
    expect(layout).toBe('prisma');
    expect(migrations).toHaveLength(1);
  });

  test('an empty folder is the orion layout', async () => {
    expect((await readMigrations(migrationsDir({}))).layout).toBe('orion');
  });
});
