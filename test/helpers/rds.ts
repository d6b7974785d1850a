/**
 * An RDS-like master user on the test server. On RDS the master is not a superuser: it is
 * `NOSUPERUSER CREATEDB CREATEROLE`, a member of the NOLOGIN group `rds_superuser`, which AWS documents
 * as a member of pg_monitor, pg_signal_backend, rds_replication and rds_password ("Understanding
 * PostgreSQL roles", RDS User Guide: `\du` shows `{pg_monitor,pg_signal_backend,rds_replication,rds_password}`).
 * The superuser only prepares the server; tests of deploy paths then connect as this master.
 *
 * Idempotent and safe when several test files (processes) call it at once: the preparation runs
 * under an advisory lock, and the password is derived from the superuser's, so every caller
 * computes the same one.
 */
import { createHash } from 'node:crypto';
import { Client } from 'pg';
import { withDatabase } from '../../lambda/engine/db';
import { adminUrl } from './db';

export const RDS_SUPERUSER = 'rds_superuser';
export const RDS_MASTER = 'orion_test_master';
/** What RDS grants rds_superuser, and nothing more. The rds_* ones are RDS's own (empty here). */
const RDS_SUPERUSER_MEMBER_OF = ['pg_monitor', 'pg_signal_backend', 'rds_replication', 'rds_password'];
const RDS_OWN_ROLES = ['rds_replication', 'rds_password'];

export interface Master {
  readonly username: string;
  readonly password: string;
  /** The master's URL for `database` (default: the admin URL's database). */
  url(database?: string): string;
}

let prepared: Promise<Master> | undefined;

/** The RDS-like master, created on first use in this process (and by whichever process comes first). */
export function rdsMaster(): Promise<Master> {
  prepared ??= prepareRdsMaster();
  return prepared;
}

/** The superuser as a master, for the few tests where the difference matters. */
export function superuserMaster(serverUrl = adminUrl()): Master {
  const admin = new URL(serverUrl);
  const username = decodeURIComponent(admin.username);
  const password = decodeURIComponent(admin.password);
  return { username, password, url: (database) => (database ? withDatabase(serverUrl, database) : serverUrl) };
}

/**
 * Creates or re-asserts the group and the master; what `rdsMaster` does once per process. `serverUrl`:
 * a superuser URL of another server (a private one a test restarts). @default the test server's
 */
export async function prepareRdsMaster(serverUrl = adminUrl()): Promise<Master> {
  const admin = new URL(serverUrl);
  const password = createHash('sha256')
    .update(`orion-rds-master:${decodeURIComponent(admin.password)}`)
    .digest('base64url');
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`SELECT pg_advisory_lock(hashtext('orion-test-rds-master'))`);
    const exists = async (role: string) =>
      (await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rows.length > 0;
    for (const role of [...RDS_OWN_ROLES, RDS_SUPERUSER]) {
      if (!(await exists(role))) await client.query(`CREATE ROLE ${role} NOLOGIN`);
    }
    await client.query(`GRANT ${RDS_SUPERUSER_MEMBER_OF.join(', ')} TO ${RDS_SUPERUSER}`);
    if (!(await exists(RDS_MASTER))) await client.query(`CREATE ROLE ${RDS_MASTER}`);
    // As RDS creates its master. ADMIN OPTION: RDS lets the master grant rds_superuser to others.
    await client.query(
      `ALTER ROLE ${RDS_MASTER} LOGIN NOSUPERUSER CREATEDB CREATEROLE INHERIT NOREPLICATION NOBYPASSRLS PASSWORD ${client.escapeLiteral(password)}`,
    );
    await client.query(`GRANT ${RDS_SUPERUSER} TO ${RDS_MASTER} WITH ADMIN OPTION`);
  } finally {
    await client.query(`SELECT pg_advisory_unlock(hashtext('orion-test-rds-master'))`).catch(() => {});
    await client.end();
  }
  return {
    username: RDS_MASTER,
    password,
    url(database) {
      const u = new URL(database ? withDatabase(serverUrl, database) : serverUrl);
      u.username = RDS_MASTER;
      u.password = encodeURIComponent(password);
      return u.toString();
    },
  };
}
