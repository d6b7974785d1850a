/**
 * What every command receives, and how a command that returns a report (rather than throwing) says
 * which exit code its failure means.
 */
import type { Report } from '../lambda/engine/report';
import type { CliOptions } from './args';

export interface CommandContext {
  readonly options: CliOptions;
  /** Progress for people, on stderr. */
  readonly progress: (line: string) => void;
}

export type ExitCode = 0 | 1 | 2 | 3;

// Kept beside the report, not in it: the report is the JSON contract, the exit code is not part of it.
const exitCodes = new WeakMap<Report, ExitCode>();

/** A command that reports a problem beside its result (status: an edited file) sets the exit code here. */
export function setExitCode(report: Report, code: ExitCode): void {
  exitCodes.set(report, code);
}

/** The exit code for a returned report: the one a command set, else 0 when ok and 1 when not. */
export function exitCodeOf(report: Report): ExitCode {
  return exitCodes.get(report) ?? (report.ok ? 0 : 1);
}
