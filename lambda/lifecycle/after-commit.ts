/**
 * A deploy that failed after its migrations committed (or after a restore began): the message says
 * what the database is at, read from the ledger when it could be, and what was or was not restored —
 * never "nothing was changed".
 */
import { OrionError } from '../engine/errors';

export interface AfterCommitState {
  /** The version before this deploy. */
  readonly from: string | null;
  /** The version now, read from the ledger; undefined when it could not be read. */
  readonly to: string | null | undefined;
  /** What happened to the database's contents: nothing restored, a restore under way, or done. */
  readonly restore: 'none' | 'started' | 'done';
  readonly snapshot?: string | null;
  readonly keptAs?: string;
}

export class AfterCommitError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(
    readonly step: string,
    readonly detail: string,
    readonly state: AfterCommitState,
  ) {
    super(`${step} failed after the migrations had committed: ${detail.replace(/\.$/, '')}. ${describeState(state)}`);
    this.name = 'AfterCommitError';
  }
  toEntries() {
    return [{ message: this.message }];
  }
}

/** "Version 2 before this deploy, 3 now (read from the ledger). Nothing was restored." and the like. */
export function describeState(s: AfterCommitState): string {
  const now =
    s.to === undefined ? 'unknown now (the ledger could not be read)' : `${s.to ?? 'none'} now (read from the ledger)`;
  const versions = `Version ${s.from ?? 'none'} before this deploy, ${now}.`;
  switch (s.restore) {
    case 'none':
      return `${versions} Nothing was restored.`;
    case 'started':
      return `${versions} A restore from snapshot ${s.snapshot} was started and is not finished: the next deploy (or the stack rollback) resumes it${s.keptAs ? `; the failed database is kept as ${s.keptAs}` : ''}.`;
    case 'done':
      return `${versions} The database was restored from snapshot ${s.snapshot}${s.keptAs ? `; the failed one is kept as ${s.keptAs}` : ''}.`;
  }
}
