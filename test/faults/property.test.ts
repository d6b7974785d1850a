/**
 * Property: whatever mix of good, failing and connection-killing migrations runs, the schema is
 * what the ledger says — and once the faults are cleared, every migration is applied exactly once.
 */
import fc from 'fast-check';
import { Client } from 'pg';
import { describe, expect, test } from 'vitest';
import { loadMigrations } from '../../lambda/engine/files';
import { CREATE_LEDGER } from '../../lambda/engine/ledger';
import { migrate } from '../../lambda/engine/migrate';
import { createDatabase, migrationsDir, query } from '../helpers/db';

type Fault = 'none' | 'error' | 'kill';
interface Spec {
  readonly transactional: boolean;
  readonly fault: Fault;
  readonly faultFirst: boolean;
}

// Faults depend on data, so clearing them needs no edit of a file (applied files are checksummed).
const ARMED = `(SELECT count(*) FROM fault_switch) = 0`;
const FAULT_SQL: Record<Fault, string> = {
  none: '',
  error: `SELECT 1 / CASE WHEN ${ARMED} THEN 0 ELSE 1 END`,
  kill: `SELECT CASE WHEN ${ARMED} THEN pg_terminate_backend(pg_backend_pid()) END`,
};

function files(specs: readonly Spec[]): Record<string, string> {
  const out: Record<string, string> = {};
  specs.forEach((s, i) => {
    const v = i + 1;
    const work = s.transactional
      ? `CREATE TABLE t_${v} (id int)`
      : `CREATE INDEX CONCURRENTLY IF NOT EXISTS i_${v} ON base (id)`;
    const fault = FAULT_SQL[s.fault];
    const statements = fault ? (s.faultFirst ? [fault, work] : [work, fault]) : [work];
    out[`${v}_m${v}.up.sql`] =
      (s.transactional ? '' : '-- orion:no-transaction\n') + statements.map((x) => `${x};`).join('\n');
  });
  return out;
}

/** The invariant: each migration's object exists exactly when the ledger says its statement ran. */
async function checkInvariant(url: string, specs: readonly Spec[]): Promise<void> {
  const ledger = await query(
    url,
    `SELECT version::int AS v, status, statements_done FROM orion_schema_history WHERE status IN ('applied', 'incomplete')`,
  );
  const tables = new Set(
    (await query(url, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)).map((r) => r.tablename),
  );
  const indexes = new Set(
    (await query(url, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`)).map((r) => r.indexname),
  );
  specs.forEach((s, i) => {
    const v = i + 1;
    const row = ledger.find((r) => r.v === v);
    if (s.transactional) {
      expect(tables.has(`t_${v}`), `t_${v} vs ledger ${JSON.stringify(row)}`).toBe(row?.status === 'applied');
    } else {
      const workIndex = s.fault !== 'none' && s.faultFirst ? 2 : 1;
      const ran = row?.status === 'applied' || (row?.statements_done ?? 0) >= workIndex;
      // The index statement may have finished just before a kill, ahead of its progress record: IF NOT EXISTS covers the re-run.
      if (ran) expect(indexes.has(`i_${v}`), `i_${v} vs ledger ${JSON.stringify(row)}`).toBe(true);
    }
  });
}

async function run(url: string, dir: string) {
  const c = new Client({ connectionString: url });
  c.on('error', () => {});
  await c.connect();
  try {
    return await migrate(c, await loadMigrations(dir), { lockWaitMs: 10_000 });
  } finally {
    await c.end().catch(() => {});
  }
}

describe('property: schema == ledger under random faults', () => {
  test('random sequences of good, failing and killing migrations', async () => {
    const spec = fc.record({
      transactional: fc.boolean(),
      fault: fc.constantFrom<Fault>('none', 'none', 'error', 'kill'),
      faultFirst: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 6 }), async (specs) => {
        const { url } = await createDatabase('orion_prop');
        // The ledger first: objects in a database without one are a hand-built schema (refused without --baseline).
        await query(url, `${CREATE_LEDGER}; CREATE TABLE base (id int); CREATE TABLE fault_switch (on_ int)`);
        const dir = migrationsDir(files(specs));
        for (let attempt = 0; attempt < 3; attempt++) {
          await run(url, dir);
          await checkInvariant(url, specs);
        }
        await query(url, 'INSERT INTO fault_switch VALUES (1)'); // the on-call fix
        const final = await run(url, dir);
        expect(final.error).toBeUndefined();
        await checkInvariant(url, specs);
        const applied = await query(
          url,
          `SELECT version::int AS v FROM orion_schema_history WHERE status = 'applied' ORDER BY v`,
        );
        expect(applied.map((r) => r.v)).toEqual(specs.map((_, i) => i + 1));
      }),
      { numRuns: 12 },
    );
  });
});
