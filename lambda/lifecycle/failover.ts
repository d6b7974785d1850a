/**
 * After the migration's session ended, tells a server restart or failover from an operator ending the
 * session. On RDS both look the same from the client: a graceful Multi-AZ failover or reboot ends
 * sessions with FATAL 57P01, exactly as `pg_terminate_backend` does, and a hard failover leaves a
 * silent socket. What differs is the server: a restarted or failed-over one has a new start time.
 */
import type { Client } from 'pg';

/** Which server (and which session on it) the deploy was talking to. */
export interface ServerSession {
  /** `pg_postmaster_start_time()`, as the server prints it (microseconds kept). */
  readonly startedAt: string;
  /** `inet_server_addr()`: the address the endpoint resolved to (null over a Unix socket). */
  readonly address: string | null;
  readonly pid: number;
  /** The session's own start, so a later pid of the same number is never taken for it. */
  readonly backendStart: string;
  /** The same two times as epoch seconds (numeric text): compared, unlike the above, whatever the TimeZone. */
  readonly startedEpoch: string;
  readonly backendStartEpoch: string;
}

/**
 * - `restart`: the server started again since (a reboot, a failover): what committed is in the ledger.
 * - `operator`: same server, and it ended the session itself: someone ran pg_terminate_backend.
 * - `network`: same server, and it said nothing (a reset or silent socket): the session may live on.
 */
export type SessionEnd = 'restart' | 'operator' | 'network';

export async function serverSession(client: Client): Promise<ServerSession> {
  const { rows } = await client.query(
    `SELECT pg_postmaster_start_time()::text AS started, host(inet_server_addr()) AS address, pg_backend_pid() AS pid,
            extract(epoch FROM pg_postmaster_start_time())::text AS started_epoch, a.backend_start::text,
            extract(epoch FROM a.backend_start)::text AS backend_start_epoch
       FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()`,
  );
  return {
    startedAt: rows[0].started,
    address: rows[0].address,
    pid: rows[0].pid,
    backendStart: rows[0].backend_start,
    startedEpoch: rows[0].started_epoch,
    backendStartEpoch: rows[0].backend_start_epoch,
  };
}

/**
 * The start time decides; the address is only reported (a host may answer on several). A server that
 * ended the session without restarting was told to by someone with the right to: not retried.
 */
export function sessionEnd(before: ServerSession, after: ServerSession, endedByServer: boolean): SessionEnd {
  // As numbers: the text form follows the session's TimeZone, which a role or database setting may change.
  if (Number(before.startedEpoch) !== Number(after.startedEpoch)) return 'restart';
  return endedByServer ? 'operator' : 'network';
}

/** `$2`: the old session's start, epoch seconds as numeric text (TimeZone-proof, microseconds kept). */
const SAME_START = 'extract(epoch FROM backend_start) = $2::numeric';

/**
 * Ends the deploy's old session if the server still runs it (behind a silent socket it can, holding
 * the migration lock and an open transaction), and waits for it to be gone. Its own role's session:
 * allowed to a non-superuser master. The open transaction rolls back, or had committed with its ledger rows.
 */
export function endOldSession(client: Client, old: ServerSession, waitMs = 30_000): Promise<boolean> {
  return terminateOld(client, old, waitMs);
}

/**
 * Whether the old session is still running `sql` (a statement outside a transaction block whose
 * progress was never recorded), and if so ends it: the statement is cut off, not finished. Gone (a
 * restart), idle or running anything else, it may have finished: `false`, and nothing is ended.
 */
export function endIfStillRunning(client: Client, old: ServerSession, sql: string, waitMs = 30_000): Promise<boolean> {
  return terminateOld(client, old, waitMs, sql);
}

/**
 * Ends the old session (when `running`, only while it is running that statement) and waits up to
 * `waitMs` for it to go; whether it was found. The state is read and the session ended in one query:
 * nothing of it runs between the two.
 */
async function terminateOld(client: Client, old: ServerSession, waitMs: number, running?: string): Promise<boolean> {
  const { rows } = await client.query(
    `SELECT pg_terminate_backend(pid, $3) AS ended FROM pg_stat_activity
      WHERE pid = $1 AND ${SAME_START}${running === undefined ? '' : ` AND state = 'active' AND query = $4`}`,
    [old.pid, old.backendStartEpoch, waitMs, ...(running === undefined ? [] : [running])],
  );
  return rows.length > 0;
}

/** One line for the log and the report. */
export function describeSessionEnd(
  end: SessionEnd,
  before: ServerSession,
  after: ServerSession,
  /** For `network`: whether endOldSession found the old session and ended it. */
  ended?: boolean,
): string {
  const where = (s: ServerSession) => `${s.startedAt}${s.address ? ` at ${s.address}` : ''}`;
  switch (end) {
    case 'restart':
      return `the server restarted (a reboot or failover: started ${where(after)}, was ${where(before)}); resumed once from the ledger`;
    case 'network':
      return ended === false
        ? `the connection was lost but the server did not restart (started ${where(after)}); the old session was already gone (a network fault, or the server's processes restarted after a crash): the deploy resumed once from the ledger`
        : `the connection was lost but the server did not restart (started ${where(after)}): a network fault; the old session was ended and the deploy resumed once from the ledger`;
    case 'operator':
      return `an operator ended the migration's session (pg_terminate_backend: the server did not restart, it has run since ${before.startedAt}); nothing was retried`;
  }
}
