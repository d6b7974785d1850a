/**
 * `orion-db inventory` (seed 004's baseline) on a deployed database, as the RDS-like master: counts,
 * exact or estimated; sizes; the version; unexpected and missing tables; --output and --compare.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connect } from '../../lambda/engine/db';
import { takeInventory } from '../../lambda/engine/inventory';
import { runCli } from '../helpers/cli';
import { adminQuery, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { EVERY_KIND } from './helpers';

let fixture: DeployFixture;
let dir: string;
let url: string;
const work = mkdtempSync(join(tmpdir(), 'orion-inventory-'));

const asOwner = (sql: string) => adminQuery(`SET ROLE "${fixture.roles.owner}"; ${sql}`, [], fixture.roles.database);

beforeAll(async () => {
  fixture = deployFixture();
  dir = migrationsDir(EVERY_KIND);
  expect((await fixture.deploy(dir)).report.errors).toEqual([]);
  url = (await fixture.master()).url(fixture.roles.database);
  await asOwner(`INSERT INTO items (title) SELECT 'item ' || i FROM generate_series(1, 200) i;
                 INSERT INTO notes (item_id, body) SELECT i, 'note' FROM generate_series(1, 50) i`);
});

afterAll(async () => {
  await fixture?.cleanup();
});

const inventory = (...args: string[]) =>
  runCli(['inventory', '--database-url', url, '--migrations', dir, ...args], { cwd: work });

describe('orion-db inventory', () => {
  test('per table: exact counts below the threshold, sizes, the version; no unexpected or missing table', async () => {
    const run = await inventory('--json', '--output', 'before.json');
    expect(run.code, run.stderr).toBe(0);
    const inv = run.json().inventory;
    expect(inv).toMatchObject({ version: '2', unexpected: [], missing: [] });
    expect(Object.keys(inv.tables)).toEqual(['billing.invoices', 'public.items', 'public.notes']);
    expect(inv.tables['public.items']).toMatchObject({ rows: 200, count: 'exact' });
    expect(inv.tables['public.notes']).toMatchObject({ rows: 50, count: 'exact' });
    expect(inv.tables['public.items'].bytes).toBeGreaterThan(8192);
    expect(JSON.parse(readFileSync(join(work, 'before.json'), 'utf8'))).toEqual(inv);
    const text = await inventory();
    expect(text.stdout).toMatch(/public\.items +200 rows \(exact\)/);
  });

  test('above the size threshold the count is the planner estimate, and says so', async () => {
    await adminQuery('ANALYZE items', [], fixture.roles.database);
    const c = await connect(url);
    try {
      const inv = await takeInventory(c, { exactBelowBytes: 1 });
      expect(inv.tables['public.items']).toMatchObject({ rows: 200, count: 'estimate' });
      expect(inv.unexpected).toBeNull(); // no reference given
    } finally {
      await c.end();
    }
  });

  test('a table made by hand is unexpected; one the migrations make and someone dropped is missing', async () => {
    await asOwner('CREATE TABLE scratch_copy (id int); ALTER TABLE billing.invoices RENAME TO invoices_old');
    try {
      const run = await inventory('--json');
      expect(run.json().inventory).toMatchObject({
        unexpected: ['billing.invoices_old', 'public.scratch_copy'],
        missing: ['billing.invoices'],
      });
      expect((await inventory()).stdout).toContain(
        'unexpected tables (not made by the migrations): billing.invoices_old, public.scratch_copy',
      );
    } finally {
      await asOwner('DROP TABLE scratch_copy; ALTER TABLE billing.invoices_old RENAME TO invoices');
    }
  });

  test('--compare: exit 1 when a count dropped beyond --tolerance or a table vanished; 0 within it', async () => {
    const saved = await inventory('--output', 'baseline.json');
    expect(saved.code, saved.stderr).toBe(0);
    await asOwner('DELETE FROM notes WHERE id > 40'); // 50 → 40: −20 %
    const dropped = await inventory('--compare', 'baseline.json', '--tolerance', '10');
    expect(dropped.code).toBe(1);
    expect(dropped.stderr).toContain('DROPPED  public.notes: 50 → 40 rows (−20 %, tolerance 10 %)');
    const within = await inventory('--compare', 'baseline.json', '--tolerance', '25', '--json');
    expect(within.code, within.stderr).toBe(0);
    expect(within.json().comparison).toMatchObject({
      ok: true,
      dropped: [],
      changed: [{ table: 'public.notes', before: 50, after: 40 }],
    });
    await asOwner('ALTER TABLE billing.invoices RENAME TO invoices_gone');
    try {
      const vanished = await inventory('--compare', 'baseline.json', '--tolerance', '25', '--json');
      expect(vanished.code).toBe(1);
      expect(vanished.json().comparison).toMatchObject({
        ok: false,
        vanished: ['billing.invoices'],
        appeared: ['billing.invoices_gone'],
      });
    } finally {
      await asOwner('ALTER TABLE billing.invoices_gone RENAME TO invoices');
    }
  });

  test('a file that is not an inventory, or a bad --tolerance: exit 2 naming it', async () => {
    writeFileSync(join(work, 'wrong.json'), JSON.stringify({ drift: [] }));
    const run = await inventory('--compare', 'wrong.json', '--json');
    expect(run.code).toBe(2);
    expect(run.json().errors[0]).toMatchObject({
      file: join(work, 'wrong.json'),
      message: expect.stringContaining('is not an inventory'),
    });
    const tolerance = await inventory('--tolerance', 'lots');
    expect(tolerance.code).toBe(2);
    expect(tolerance.stderr).toContain('--tolerance must be a percentage from 0 to 100, got "lots"');
  });
});
