/**
 * The RDS-like master (test/helpers/rds.ts) is what RDS gives: not a superuser, CREATEDB and
 * CREATEROLE, in rds_superuser with exactly the memberships AWS documents — so tests run as it meet
 * the refusals RDS gives.
 */
import { describe, expect, test } from 'vitest';
import { adminQuery, adminUrl, client } from '../helpers/db';
import { prepareRdsMaster, RDS_MASTER, RDS_SUPERUSER, rdsMaster } from '../helpers/rds';

describe('the RDS-like master', () => {
  test('is NOSUPERUSER CREATEDB CREATEROLE, a member of rds_superuser only, which has what RDS grants it', async () => {
    const master = await rdsMaster();
    expect(master.username).toBe(RDS_MASTER);
    const [attrs] = await adminQuery(
      `SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit
         FROM pg_roles WHERE rolname = $1`,
      [RDS_MASTER],
    );
    expect(attrs).toEqual({
      rolcanlogin: true,
      rolsuper: false,
      rolcreatedb: true,
      rolcreaterole: true,
      rolreplication: false,
      rolbypassrls: false,
      rolinherit: true,
    });
    // Only predefined (pg_*) and RDS (rds_*) groups: other test files share this server, and the roles the
    // master creates there (orion_owner, …) make it a member of them (on 16 automatically, with ADMIN).
    const memberOf = async (role: string) =>
      (
        await adminQuery(
          `SELECT DISTINCT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
            WHERE m.rolname = $1 AND (g.rolname LIKE 'pg\\_%' OR g.rolname LIKE 'rds\\_%') ORDER BY 1`,
          [role],
        )
      ).map((r) => r.rolname);
    expect(await memberOf(RDS_MASTER)).toEqual([RDS_SUPERUSER]);
    expect(await memberOf(RDS_SUPERUSER)).toEqual([
      'pg_monitor',
      'pg_signal_backend',
      'rds_password',
      'rds_replication',
    ]);
    const [group] = await adminQuery(`SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1`, [RDS_SUPERUSER]);
    expect(group).toEqual({ rolcanlogin: false, rolsuper: false });
  });

  test('is refused what RDS refuses its master, and may do what it allows', async () => {
    const master = await rdsMaster();
    const c = await client(master.url());
    try {
      await expect(c.query('ALTER ROLE current_user NOCREATEDB NOSUPERUSER')).rejects.toMatchObject({ code: '42501' });
      await expect(c.query(`SET session_replication_role = replica`)).rejects.toMatchObject({ code: '42501' });
      await expect(c.query(`ALTER SYSTEM SET work_mem = '8MB'`)).rejects.toMatchObject({ code: '42501' });
      // pg_monitor: other users' sessions are visible with their queries; pg_signal_backend may end them.
      const other = await client(adminUrl());
      try {
        await other.query(`SELECT 'seen-by-the-master' AS marker`);
        const { rows } = await c.query(
          `SELECT pid FROM pg_stat_activity WHERE query LIKE '%seen-by-the-master%' AND pid <> pg_backend_pid()`,
        );
        expect(rows).toEqual([{ pid: expect.any(Number) }]);
      } finally {
        await other.end();
      }
      expect((await c.query(`SELECT pg_has_role('pg_signal_backend', 'USAGE') AS s`)).rows).toEqual([{ s: true }]);
    } finally {
      await c.end();
    }
  });

  test('preparing it again, from several places at once, changes nothing and keeps the password', async () => {
    const first = await rdsMaster();
    const again = await Promise.all([1, 2, 3, 4].map(() => prepareRdsMaster()));
    expect(new Set(again.map((m) => m.password))).toEqual(new Set([first.password]));
    const c = await client(first.url());
    expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: RDS_MASTER }]);
    await c.end();
  });
});
