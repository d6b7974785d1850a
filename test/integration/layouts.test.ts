/**
 * Each tool's folder (test/fixtures/layouts/<tool>/) applied from scratch on a real PostgreSQL, and
 * the real Prisma history of ../shared/corpora/hoppscotch-prisma as it is.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { readMigrations } from '../../lambda/engine/files';
import { migrate } from '../../lambda/engine/migrate';
import { runCli } from '../helpers/cli';
import { adminQuery, adminUrl, client, createDatabase, HOPPSCOTCH, query, tableNames } from '../helpers/db';

const FIXTURES = join(__dirname, '..', 'fixtures', 'layouts');

const databases: string[] = [];
afterAll(async () => {
  for (const db of databases) await adminQuery(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
});

async function applyFolder(dir: string) {
  const db = await createDatabase('orion_layout');
  databases.push(db.name);
  const { layout, migrations } = await readMigrations(dir, { parse: false });
  const c = await client(db.url);
  try {
    const result = await migrate(c, migrations);
    return { db, layout, migrations, result };
  } finally {
    await c.end();
  }
}

describe('layouts applied from scratch', () => {
  test.each([
    ['golang-migrate', 'orion', ['activities', 'activity_tokens']],
    ['dbmate', 'dbmate', ['activities', 'activity_tokens']],
    ['goose', 'goose', ['activities', 'activity_tokens']],
    ['prisma', 'prisma', ['activities', 'activity_tokens']],
    ['diesel', 'diesel', ['activities']],
    ['flyway', 'flyway', ['activities', 'activity_tokens']],
  ])('%s', async (tool, expectedLayout, tables) => {
    const { db, layout, migrations, result } = await applyFolder(join(FIXTURES, tool));
    expect(layout).toBe(expectedLayout);
    expect(result.error).toBeUndefined();
    expect(result.applied.map((a) => a.version)).toEqual(migrations.map((m) => m.version));
    expect(await tableNames(db.url)).toEqual([...tables, 'orion_schema_history'].sort());
    // The ledger keeps each tool's own version text beside the ordering key.
    const ledger = await query(
      db.url,
      `SELECT version_label FROM orion_schema_history WHERE status = 'applied' ORDER BY version`,
    );
    expect(ledger.map((r) => r.version_label)).toEqual(migrations.map((m) => m.label));
  });

  test('the markers took effect: the concurrent index builds ran outside a transaction and exist', async () => {
    for (const tool of ['dbmate', 'goose', 'diesel']) {
      const { db, result } = await applyFolder(join(FIXTURES, tool));
      expect(result.error, tool).toBeUndefined();
      const idx = await query(db.url, `SELECT indexname FROM pg_indexes WHERE indexname = 'idx_activities_speaker'`);
      expect(idx, tool).toHaveLength(1);
    }
    const { db } = await applyFolder(join(FIXTURES, 'flyway'));
    expect(await query(db.url, `SELECT 1 FROM pg_indexes WHERE indexname = 'idx_activities_status'`)).toHaveLength(1);
  });

  test('Diesel initial setup (version 00000000000000) is applied and recorded as version 0', async () => {
    const { db } = await applyFolder(join(FIXTURES, 'diesel'));
    const rows = await query(
      db.url,
      `SELECT version::text, version_label FROM orion_schema_history ORDER BY version LIMIT 1`,
    );
    expect(rows).toEqual([{ version: '0', version_label: '00000000000000' }]);
    expect(await query(db.url, `SELECT 1 FROM pg_proc WHERE proname = 'diesel_set_updated_at'`)).toHaveLength(1);
  });
});

describe('the CLI names the layout and keeps each tool version', () => {
  test('orion-db migrate on the Flyway folder: layout flyway, versions 1 … 1.2.1, 1.10, 2 as Flyway writes them', async () => {
    const db = await createDatabase('orion_layout');
    databases.push(db.name);
    const run = await runCli(['migrate', '--json', '--migrations', join(FIXTURES, 'flyway'), '--database-url', db.url]);
    expect(run.code, run.stderr).toBe(0);
    const report = run.json();
    expect(report).toMatchObject({ layout: 'flyway', from_version: null, to_version: '2' });
    expect(report.applied.map((a: { version: string }) => a.version)).toEqual(['1', '1.1', '1.2.1', '1.10', '2']);
    const text = await runCli(['status', '--migrations', join(FIXTURES, 'flyway'), '--database-url', db.url]);
    expect(text.stdout).toContain('layout: flyway');
    expect(text.stdout).toContain('applied  1.2.1 create_activity_tokens');
  });

  test('--format forces a layout: the dbmate folder read as flat files is refused naming the files', async () => {
    const run = await runCli([
      'plan',
      '--json',
      '--format',
      'orion',
      '--migrations',
      join(FIXTURES, 'dbmate'),
      '--database-url',
      adminUrl(),
    ]);
    expect(run.code).toBe(2);
    expect(run.json().errors.map((e: { file: string }) => e.file)).toEqual([
      '20240101120000_create_activities.sql',
      '20240102120000_create_activity_tokens.sql',
      '20240103120000_index_speaker.sql',
    ]);
  });
});

describe.skipIf(!existsSync(HOPPSCOTCH))('the hoppscotch Prisma history (../shared/corpora), as it is', () => {
  test('applies from scratch: its 21 migrations, 23 tables', async () => {
    const { db, layout, migrations, result } = await applyFolder(HOPPSCOTCH);
    expect(layout).toBe('prisma');
    expect(migrations).toHaveLength(21);
    expect(result.error).toBeUndefined();
    expect(result.applied).toHaveLength(21);
    const tables = await tableNames(db.url);
    expect(tables.filter((t) => t !== 'orion_schema_history')).toHaveLength(23);
  });
});
