/**
 * The report document every command prints with `--json` (DESIGN.md's CLI contract), and that the
 * deploy lifecycle returns. Versions are strings: they may exceed JavaScript's safe integers.
 */
import type { BatchSplit } from './batches';
import { type ErrorEntry, toErrorEntries } from './errors';
import type { RunResult } from './migrate';

export interface LockdownReport {
  readonly ok: boolean;
  readonly checks: readonly { name: string; ok: boolean; detail?: string }[];
  /** Drift found and corrected on this run. */
  readonly corrected: readonly string[];
}

export interface Report {
  ok: boolean;
  command: string;
  from_version: string | null;
  to_version: string | null;
  applied: { version: string; name: string; ms: number }[];
  pending: { version: string; name: string }[];
  snapshot: string | null;
  restored: boolean;
  lockdown: LockdownReport | null;
  errors: ErrorEntry[];
  dry_run?: boolean;
  [extra: string]: unknown;
}

export function emptyReport(command: string): Report {
  return {
    ok: true,
    command,
    from_version: null,
    to_version: null,
    applied: [],
    pending: [],
    snapshot: null,
    restored: false,
    lockdown: null,
    errors: [],
  };
}

export function versionString(v: bigint | null | undefined): string | null {
  return v === null || v === undefined ? null : v.toString();
}

/** Copies a run's outcome into a report. */
export function applyRunResult(report: Report, result: RunResult): Report {
  report.from_version = versionString(result.fromVersion);
  report.to_version = versionString(result.toVersion);
  report.applied = result.applied.map((a) => ({ version: a.version.toString(), name: a.name, ms: a.ms }));
  report.pending = result.pending.map((p) => ({ version: p.version.toString(), name: p.name }));
  if (result.splits.length) report.batch_splits = result.splits.map(splitReport);
  if (result.skipped.length)
    report.skipped = result.skipped.map((s) => ({ version: s.version.toString(), name: s.name, reason: s.reason }));
  if (result.dryRun) report.dry_run = true;
  if (result.adoption) report.adopted = adoptionReport(result.adoption, result.dryRun);
  if (result.ownershipTaken?.length) report.ownership_taken = result.ownershipTaken;
  if (result.error) {
    report.ok = false;
    report.errors.push(...result.error.toEntries());
  }
  return report;
}

/** What an adoption recorded (or, in a dry run, would record), as the report shows it. */
export function adoptionReport(
  adoption: NonNullable<RunResult['adoption']>,
  dryRun = false,
): { from: string; recorded: boolean; migrations: { version: string; name: string; applied_at: string | null }[] } {
  return {
    from: adoption.from,
    recorded: !dryRun,
    migrations: adoption.migrations.map(({ migration: m, appliedAt }) => ({
      version: m.label,
      name: m.name,
      applied_at: appliedAt?.toISOString() ?? null,
    })),
  };
}

/** A commit boundary inside the pending transactional migrations, as the report shows it. */
export function splitReport(split: BatchSplit): { after: string; before: string; reason: string } {
  return { after: split.after.toString(), before: split.before.toString(), reason: split.reason };
}

export function addError(report: Report, err: unknown): Report {
  report.ok = false;
  report.errors.push(...toErrorEntries(err));
  return report;
}

/**
 * The report's versions as their tool writes them where the ordering key is not the version's number:
 * a Flyway folder with dotted versions orders by a packed key and Diesel's by a padded one
 * (layouts/), shown here as `1.2.3` and `20190226002946`. Other versions are their numbers, as before.
 */
export function labelVersions(report: Report, migrations: readonly { version: bigint; label: string }[]): Report {
  const packed = (m: { version: bigint; label: string }) => !/^\d+$/.test(m.label) || BigInt(m.label) !== m.version;
  const dotted = new Map(migrations.filter(packed).map((m) => [m.version.toString(), m.label]));
  if (dotted.size === 0) return report;
  const label = (v: string | null) => (v === null ? v : (dotted.get(v) ?? v));
  report.from_version = label(report.from_version);
  report.to_version = label(report.to_version);
  report.applied = report.applied.map((a) => ({ ...a, version: label(a.version)! }));
  report.pending = report.pending.map((p) => ({ ...p, version: label(p.version)! }));
  return report;
}
