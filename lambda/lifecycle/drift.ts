/**
 * Drift in the deploy: before applying, the live database is compared with the replay of the
 * migrations its ledger records (a hand change stops the deploy under the policy 'fail', before
 * anything changes); after applying and the lockdown, with the replay of all of them. The report's
 * `drift` section has both, with their times.
 */
import type { Client } from 'pg';
import { checkDrift, type Drift, loadExceptions } from '../engine/drift';
import { PostconditionFailedError } from '../engine/errors';
import type { Migration } from '../engine/files';
import type { LockdownRoles } from '../engine/lockdown';
import { addError, type Report } from '../engine/report';

/** 'fail': drift before applying stops the deploy, drift after it fails the report; 'warn': both are reported only. */
export type DriftPolicy = 'fail' | 'warn' | 'off';
export const DRIFT_POLICIES: readonly DriftPolicy[] = ['fail', 'warn', 'off'];

export interface DriftSection {
  policy: DriftPolicy;
  before?: { drift: Drift[]; ms: number } | { skipped: string };
  after?: { drift: Drift[]; ms: number };
}

export interface DeployDriftOptions {
  readonly client: Client;
  /** A master connection to `database` on the server (default: the target database). */
  readonly connect: (database?: string) => Promise<Client>;
  readonly migrations: readonly Migration[];
  readonly migrationsDir: string;
  readonly roles: LockdownRoles;
  readonly policy: DriftPolicy;
  readonly lockWaitMs?: number;
  readonly log: (line: string) => void;
}

function section(report: Report, policy: DriftPolicy): DriftSection {
  report.drift ??= { policy } satisfies DriftSection;
  return report.drift as DriftSection;
}

async function run(o: DeployDriftOptions): Promise<{ drift: Drift[]; ms: number }> {
  const started = Date.now();
  const { owner, group, app } = o.roles;
  const result = await checkDrift({
    client: o.client,
    connectReference: o.connect,
    migrations: o.migrations,
    roles: { owner, group, app },
    exceptions: await loadExceptions(o.migrationsDir),
    lockWaitMs: o.lockWaitMs,
    log: o.log,
  });
  return { drift: result.drift, ms: Date.now() - started };
}

const summary = (drift: readonly Drift[]) =>
  drift
    .slice(0, 5)
    .map((d) => `${d.kind} ${d.object}`)
    .join(', ') + (drift.length > 5 ? `, and ${drift.length - 5} more` : '');

/**
 * Before applying. Returns true when the deploy must stop here (policy 'fail' and drift found); the
 * report then says why. Skipped on a database with no applied migration (nothing to compare yet, and
 * its first lockdown is still to come), and never stops a run that applies nothing (a stack rollback).
 */
export async function driftBeforeApplying(
  report: Report,
  o: DeployDriftOptions & { readonly applied: number; readonly mayStop: boolean },
): Promise<boolean> {
  if (o.policy === 'off') return false;
  const s = section(report, o.policy);
  if (o.applied === 0) {
    s.before = { skipped: 'no migration applied yet' };
    return false;
  }
  let before: { drift: Drift[]; ms: number };
  try {
    before = await run(o);
  } catch (err) {
    // The check itself failed (the replay, the lock): under 'fail' that stops the deploy, else it is said.
    if (o.policy === 'fail' && o.mayStop) throw err;
    note(report, `the drift check before applying could not run: ${(err as Error)?.message ?? err}`);
    return false;
  }
  s.before = before;
  if (before.drift.length === 0) return false;
  const what = `drift before applying: ${before.drift.length} difference(s) from the applied migrations (${summary(before.drift)})`;
  if (o.policy === 'fail' && o.mayStop) {
    addError(
      report,
      new PostconditionFailedError([
        `${what}; nothing was applied. Bring the database back (orion-db drift shows the SQL), or list deliberate ` +
          'differences in orion-drift.json beside the migrations',
      ]),
    );
    return true;
  }
  note(report, what);
  return false;
}

/** After applying and the lockdown: the database must be the replay of all its applied migrations. */
export async function driftAfterApplying(report: Report, o: DeployDriftOptions): Promise<void> {
  if (o.policy === 'off') return;
  let after: { drift: Drift[]; ms: number };
  try {
    after = await run(o);
  } catch (err) {
    // After the migrations committed: reported, never thrown (the deploy's outcome stands).
    const what = `the drift check after applying could not run: ${(err as Error)?.message ?? err}`;
    if (o.policy === 'fail') addError(report, new PostconditionFailedError([what]));
    else note(report, what);
    return;
  }
  section(report, o.policy).after = after;
  if (after.drift.length === 0) return;
  const what = `drift after applying: ${after.drift.length} difference(s) from the replay of the migrations (${summary(after.drift)})`;
  if (o.policy === 'fail') addError(report, new PostconditionFailedError([what]));
  else note(report, what);
}

function note(report: Report, text: string): void {
  report.notes = [...((report.notes as string[] | undefined) ?? []), text];
}
