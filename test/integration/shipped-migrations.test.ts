/**
 * The product's own migrations folder. These tests assert what must stay true as it grows — it
 * loads, applies, and produces the schema of Orion's SOP, which the running application writes to —
 * never its exact list of files (tests of deploy semantics use test/fixtures/orion-sop).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadMigrations } from '../../lambda/engine/files';
import { runCli } from '../helpers/cli';
import { createDatabase, insertActivities, query, SHIPPED_MIGRATIONS } from '../helpers/db';

/** Orion's SOP (section 1 holds the schema the application uses); absent in a clone outside this workplace. */
const SOP = join(__dirname, '..', '..', '..', 'shared', 'seeds', '000_daf3c96eda03d4a9.txt');

/** The SOP's DDL: the first ```sql block of section 1. */
function sopSchemaSql(): string {
  const text = readFileSync(SOP, 'utf8');
  const m = /```sql\n([\s\S]*?)```/.exec(text);
  if (!m) throw new Error(`no sql block in ${SOP}`);
  return m[1];
}

/** Columns, constraints and indexes of the three tables, in a form two databases can be compared by. */
async function schemaOf(url: string) {
  const tables = ['activities', 'activity_tokens', 'viewer_entries'];
  const columns = await query(
    url,
    `SELECT table_name, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY($1)
      ORDER BY table_name, ordinal_position`,
    [tables],
  );
  const constraints = await query(
    url,
    `SELECT conrelid::regclass::text AS tbl, contype, pg_get_constraintdef(oid) AS def
       FROM pg_constraint WHERE conrelid = ANY(SELECT oid FROM pg_class WHERE relname = ANY($1) AND relnamespace = 'public'::regnamespace)
      ORDER BY 1, 2, 3`,
    [tables],
  );
  const indexes = await query(
    url,
    `SELECT tablename, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY($1) ORDER BY 1, 2`,
    [tables],
  );
  return { columns, constraints, indexes };
}

async function migrated(extra: string[] = []): Promise<string> {
  const { url } = await createDatabase();
  const run = await runCli(['migrate', '--database-url', url, '--migrations', SHIPPED_MIGRATIONS, '--json', ...extra]);
  expect(run.code, run.stderr).toBe(0);
  return url;
}

describe('the shipped migrations', () => {
  test('load, with strictly increasing versions and every file parsed', async () => {
    const migrations = await loadMigrations(SHIPPED_MIGRATIONS);
    expect(migrations.length).toBeGreaterThan(0);
    for (const m of migrations) expect(m.up.statements.length).toBeGreaterThan(0);
  });

  test('produce the SOP tables, with the columns, nullability and keys the application relies on', async () => {
    const url = await migrated();
    const { columns, constraints, indexes } = await schemaOf(url);
    const activities = columns
      .filter((c) => c.table_name === 'activities')
      .map((c) => [c.column_name, c.data_type, c.is_nullable]);
    expect(activities).toEqual(
      expect.arrayContaining([
        ['id', 'uuid', 'NO'],
        ['title', 'text', 'NO'],
        ['description', 'text', 'YES'],
        ['speaker', 'text', 'NO'],
        ['start_time', 'timestamp with time zone', 'NO'],
        ['end_time', 'timestamp with time zone', 'YES'],
        ['input_language', 'text', 'NO'],
        ['target_languages', 'jsonb', 'NO'],
        ['cover_url', 'text', 'YES'],
        ['status', 'text', 'NO'],
        ['viewer_url', 'text', 'YES'],
        ['created_at', 'timestamp with time zone', 'NO'],
        ['updated_at', 'timestamp with time zone', 'NO'],
      ]),
    );
    expect(columns.find((c) => c.table_name === 'activities' && c.column_name === 'description')?.column_default).toBe(
      "''::text",
    );
    expect(constraints).toEqual(
      expect.arrayContaining([
        {
          tbl: 'activity_tokens',
          contype: 'f',
          def: 'FOREIGN KEY (activity_id) REFERENCES activities(id) ON DELETE CASCADE',
        },
        { tbl: 'activity_tokens', contype: 'u', def: 'UNIQUE (activity_id, type, value)' },
        { tbl: 'viewer_entries', contype: 'p', def: 'PRIMARY KEY (activity_id)' },
      ]),
    );
    // No CHECK the application does not know about: it would fail on a status it writes.
    expect(constraints.filter((c) => c.contype === 'c')).toEqual([]);
    expect(indexes.map((i) => i.indexdef)).toEqual(
      expect.arrayContaining([
        'CREATE INDEX idx_activities_status ON public.activities USING btree (status)',
        'CREATE INDEX idx_activity_tokens_activity ON public.activity_tokens USING btree (activity_id)',
      ]),
    );
  });

  test('accept rows written the way the SOP application writes them', async () => {
    const url = await migrated();
    await query(url, insertActivities('Keynote'));
    await query(
      url,
      `INSERT INTO activity_tokens (id, activity_id, type, value, expires_at, max_audience, created_at, status)
         SELECT gen_random_uuid(), id, 'viewer', 'tok-1', now() + interval '1 day', 100, now(), 'active' FROM activities`,
    );
    await query(
      url,
      `INSERT INTO viewer_entries (activity_id, share_url, qr_type, qr_content, status, updated_at)
         SELECT id, 'https://v.example/1', 'url', 'https://v.example/1', 'active', now() FROM activities`,
    );
    expect(await query(url, `SELECT description FROM activities`)).toEqual([{ description: '' }]);
    await expect(
      query(url, `INSERT INTO activities (id, title) VALUES (gen_random_uuid(), 'no speaker')`),
    ).rejects.toThrow(/null value in column/);
  });

  test.skipIf(!existsSync(SOP))(
    '000001 is exactly the schema of the SOP’s DDL, and later ones keep all of it',
    async () => {
      const byHand = await createDatabase();
      await query(byHand.url, sopSchemaSql());
      const expected = await schemaOf(byHand.url);
      const first = await migrated(['--to', '1']);
      const actual = await schemaOf(first);
      expect(actual).toEqual(expected);
      // Later migrations may add columns and indexes; they must not take any of the SOP's away.
      const latest = await schemaOf(await migrated());
      expect(latest.columns).toEqual(expect.arrayContaining(expected.columns));
      expect(latest.constraints).toEqual(expect.arrayContaining(expected.constraints));
      expect(latest.indexes).toEqual(expect.arrayContaining(expected.indexes));
    },
  );

  test.skipIf(!existsSync(SOP))(
    'a database the application already built (its own CREATE TABLE IF NOT EXISTS) is refused without --baseline, adopted at 1 with it',
    async () => {
      const byHand = await createDatabase();
      await query(byHand.url, sopSchemaSql());
      const args = ['migrate', '--database-url', byHand.url, '--migrations', SHIPPED_MIGRATIONS, '--to', '1', '--json'];
      const refused = await runCli(args);
      expect(refused.code, refused.stderr).toBe(2);
      expect(refused.json().errors[0].message).toContain(
        'table activities, table activity_tokens, table viewer_entries',
      );
      const run = await runCli([...args, '--baseline', '1']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.json().adopted).toMatchObject({ from: 'baseline', migrations: [{ version: '000001' }] });
    },
  );
});
