/**
 * The migration lock: a session-level advisory lock, so a killed process (closed connection)
 * frees it by itself. Acquired by polling so the wait has a deadline and names the holder.
 */
import type { ClientBase } from 'pg';
import { LockTimeoutError } from './errors';

/** 'orion' in ASCII; advisory locks are scoped to the current database. */
export const MIGRATION_LOCK_KEY = 0x6f72696f6en;
const POLL_MS = 100;

export interface LockHolder {
  readonly pid: number;
  readonly applicationName: string;
}

export async function acquireMigrationLock(
  client: ClientBase,
  timeoutMs: number,
  onWait?: (holder: LockHolder | undefined) => void,
): Promise<void> {
  const started = Date.now();
  let told = false;
  for (;;) {
    const { rows } = await client.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [
      MIGRATION_LOCK_KEY.toString(),
    ]);
    if (rows[0].ok) return;
    const holder = await migrationLockHolder(client);
    if (!told) {
      onWait?.(holder);
      told = true;
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(waited, holder);
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, timeoutMs - waited)));
  }
}

export async function releaseMigrationLock(client: ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY.toString()]);
}

/** Who holds the lock in this database, if anyone. */
export async function migrationLockHolder(client: ClientBase): Promise<LockHolder | undefined> {
  const key = MIGRATION_LOCK_KEY;
  const { rows } = await client.query(
    `SELECT a.pid, a.application_name
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1 AND l.objid = $2 AND l.objsubid = 1
      LIMIT 1`,
    [Number(key >> 32n), Number(key & 0xffffffffn)],
  );
  return rows[0] ? { pid: rows[0].pid, applicationName: rows[0].application_name } : undefined;
}
