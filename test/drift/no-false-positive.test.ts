/**
 * No drift where there is none: the shipped migrations and the SOP's after a deploy (the lifecycle
 * `orion-db up` runs, as the RDS-like master), and a real Prisma history (hoppscotch, 21 migrations,
 * ../shared/corpora) both deployed with the lockdown and applied plainly by `migrate` as the superuser.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { connect } from '../../lambda/engine/db';
import { checkDrift } from '../../lambda/engine/drift';
import { loadMigrations } from '../../lambda/engine/files';
import { migrate } from '../../lambda/engine/migrate';
import { adminUrl, createDatabase, migrationsDir, SHIPPED_MIGRATIONS, SOP_MIGRATIONS } from '../helpers/db';
import { deployFixture } from '../helpers/deploy';
import { driftChecker } from './helpers';

const HOPPSCOTCH = join(__dirname, '..', '..', '..', 'shared', 'corpora', 'hoppscotch-prisma', 'migrations');

/** The Prisma history in the flat layout (`<timestamp>_<name>.up.sql`). */
function hoppscotch(): string {
  const files: Record<string, string> = {};
  for (const d of readdirSync(HOPPSCOTCH).filter((d) => /^\d{14}_/.test(d)))
    files[`${d}.up.sql`] = readFileSync(join(HOPPSCOTCH, d, 'migration.sql'), 'utf8');
  return migrationsDir(files);
}

describe('no false positive', () => {
  test.each([
    ['the shipped migrations', SHIPPED_MIGRATIONS],
    ["the SOP's migrations", SOP_MIGRATIONS],
  ])('%s after a deploy', async (_, dir) => {
    const fixture = deployFixture();
    try {
      expect((await fixture.deploy(dir)).report.errors).toEqual([]);
      const result = await driftChecker(fixture, dir)();
      expect(result.drift).toEqual([]);
      expect(result.lockedDown).toBe(true);
      expect(result.replayed).toBe((await loadMigrations(dir)).length);
    } finally {
      await fixture.cleanup();
    }
  });

  test('migrations that grant to the live roles by name (the replay reads their stand-ins, not both)', async () => {
    const fixture = deployFixture();
    const { roles } = fixture;
    const dir = migrationsDir({
      '1_billing.up.sql':
        `CREATE SCHEMA billing; CREATE TABLE billing.x (id int); CREATE TABLE t (id int);\n` +
        `GRANT USAGE ON SCHEMA billing TO "${roles.group}"; GRANT SELECT ON billing.x TO "${roles.group}";\n` +
        `GRANT SELECT ON t TO "${roles.app}";`,
    });
    try {
      expect((await fixture.deploy(dir)).report.errors).toEqual([]);
      expect((await driftChecker(fixture, dir)()).drift).toEqual([]);
    } finally {
      await fixture.cleanup();
    }
  });

  test.skipIf(!existsSync(HOPPSCOTCH))(
    'a real Prisma history (hoppscotch; skipped where ../shared/corpora is absent) deployed with the lockdown',
    async () => {
      const dir = hoppscotch();
      const fixture = deployFixture();
      try {
        const outcome = await fixture.deploy(dir);
        expect(outcome.report.applied).toHaveLength(readdirSync(dir).length);
        const result = await driftChecker(fixture, dir)();
        expect(result.drift).toEqual([]);
        expect(result.replayed).toBe(readdirSync(dir).length);
      } finally {
        await fixture.cleanup();
      }
    },
  );

  test.skipIf(!existsSync(HOPPSCOTCH))(
    'the same history applied by migrate as the superuser (no lockdown): compared with a replay without one',
    async () => {
      const dir = hoppscotch();
      const { url } = await createDatabase('drift_fp');
      const migrations = await loadMigrations(dir);
      const c = await connect(url);
      try {
        expect((await migrate(c, migrations)).error).toBeUndefined();
        const result = await checkDrift({
          client: c,
          connectReference: (database) => connect(database ? url.replace(/\/[^/]*$/, `/${database}`) : adminUrl()),
          migrations,
          roles: { owner: 'orion_owner', group: 'orion_app_rw', app: 'orion_app' },
        });
        expect(result.lockedDown).toBe(false);
        expect(result.drift).toEqual([]);
      } finally {
        await c.end();
      }
    },
  );
});
