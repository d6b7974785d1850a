/**
 * The deploy lifecycle's drift checks (driftPolicy), as the RDS-like master: before applying, a hand
 * change stops a 'fail' deploy with nothing applied and is reported by a 'warn' one; after applying,
 * the result is compared with the replay of all migrations; the report's `drift` section has both.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { readLedger } from '../../lambda/engine/ledger';
import { client, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { EVERY_KIND } from './helpers';

const V1 = { '000001_base.up.sql': EVERY_KIND['000001_base.up.sql'] };
const V2 = EVERY_KIND;

let fixture: DeployFixture;
afterEach(async () => {
  await fixture?.cleanup();
});

async function version(f: DeployFixture): Promise<string[]> {
  const c = await client(f.targetUrl);
  try {
    return (await readLedger(c)).filter((r) => r.status === 'applied').map((r) => r.version.toString());
  } finally {
    await c.end();
  }
}

describe('drift in the deploy lifecycle', () => {
  test("'fail': a clean database deploys, with an empty drift section before and after; the first deploy skips 'before'", async () => {
    fixture = deployFixture();
    const first = await fixture.deploy(migrationsDir(V1), { driftPolicy: 'fail' });
    expect(first.report.errors).toEqual([]);
    expect(first.report.drift).toEqual({
      policy: 'fail',
      before: { skipped: 'no migration applied yet' },
      after: { drift: [], ms: expect.any(Number) },
    });
    const second = await fixture.deploy(migrationsDir(V2), { driftPolicy: 'fail' });
    expect(second.report.errors).toEqual([]);
    expect(second.report.drift).toMatchObject({ before: { drift: [] }, after: { drift: [] } });
    expect(await version(fixture)).toEqual(['1', '2']);
  });

  test("'fail': a hand change stops the deploy before anything is applied, naming it", async () => {
    fixture = deployFixture();
    expect((await fixture.deploy(migrationsDir(V1))).report.errors).toEqual([]);
    await fixture.asMaster(`SET ROLE "${fixture.roles.owner}"; CREATE INDEX by_hand ON items (title)`);
    const { report } = await fixture.deploy(migrationsDir(V2), { driftPolicy: 'fail' });
    expect(report.ok).toBe(false);
    expect(report.errors[0].message).toMatch(
      /^drift before applying: 1 difference\(s\) from the applied migrations \(index public\.by_hand\); nothing was applied/,
    );
    expect((report.drift as any).before.drift).toMatchObject([{ kind: 'index', object: 'public.by_hand' }]);
    expect(report.applied).toEqual([]);
    expect(await version(fixture)).toEqual(['1']);
  });

  test("'warn': the same change is reported before and after, and the deploy goes on", async () => {
    fixture = deployFixture();
    expect((await fixture.deploy(migrationsDir(V1))).report.errors).toEqual([]);
    await fixture.asMaster(`SET ROLE "${fixture.roles.owner}"; CREATE INDEX by_hand ON items (title)`);
    const { report } = await fixture.deploy(migrationsDir(V2), { driftPolicy: 'warn' });
    expect(report.errors).toEqual([]);
    expect(report.notes).toEqual([
      expect.stringMatching(/^drift before applying: 1 difference\(s\) .*index public\.by_hand/),
      expect.stringMatching(/^drift after applying: 1 difference\(s\) .*index public\.by_hand/),
    ]);
    expect(await version(fixture)).toEqual(['1', '2']);
  });

  test("a grant the lockdown corrects is drift before, and gone after; 'off' has no drift section", async () => {
    fixture = deployFixture();
    expect((await fixture.deploy(migrationsDir(V1))).report.errors).toEqual([]);
    await fixture.asMaster(`SET ROLE "${fixture.roles.owner}"; GRANT TRUNCATE ON items TO "${fixture.roles.group}"`);
    const { report } = await fixture.deploy(migrationsDir(V2), { driftPolicy: 'warn' });
    expect((report.drift as any).before.drift).toMatchObject([
      { kind: 'grant', object: `table public.items to ${fixture.roles.group}` },
    ]);
    expect((report.drift as any).after.drift).toEqual([]);
    const off = await fixture.deploy(migrationsDir(V2), { driftPolicy: 'off' });
    expect(off.report.drift).toBeUndefined();
  });
});
