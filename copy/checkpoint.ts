/**
 * The checkpoint file: which copy this is (source, target, tables) and how far each table got.
 *
 * A batch and the file cannot commit together, so the file is written *before* each batch's COMMIT,
 * naming the batch as pending together with the target key of its last row. After a kill, the next
 * run looks that row up in the target: found, the batch committed; missing, it did not (a batch
 * commits whole or not at all). Either way nothing is lost or copied twice. The file is replaced
 * by rename, so a kill never leaves it half-written.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { BadInputError } from '../lambda/engine/errors';
import type { Position } from './source';

export interface PendingBatch {
  /** Source position after the batch's last row. */
  readonly end: Position | null;
  readonly rows: number;
  /** Target key values (text) of the batch's last row; null when the table is copied in one pass. */
  readonly lastKey: readonly string[] | null;
}

export interface TableProgress {
  status: 'copying' | 'done';
  /** Rows committed so far. */
  rows: number;
  /** Source position after the last committed row (null: from the start). */
  after: Position | null;
  pending: PendingBatch | null;
}

export interface CheckpointState {
  readonly orion_copy_checkpoint: 1;
  readonly source: string;
  readonly target: string;
  readonly tables: readonly string[];
  /** The unique pre-check passed (it runs once, before the first row is written). */
  prechecked: boolean;
  progress: Record<string, TableProgress>;
}

export class Checkpoint {
  private constructor(
    private readonly path: string | undefined,
    readonly state: CheckpointState,
    /** A file of an earlier run was found and matched. */
    readonly resumed: boolean,
  ) {}

  /**
   * The file's state when it describes this same copy; a fresh state when there is no file (or no
   * --checkpoint). A file of another copy is an error: it is never overwritten silently.
   */
  static open(
    path: string | undefined,
    identity: { source: string; target: string; tables: readonly string[] },
    fresh: boolean,
  ): Checkpoint {
    const blank: CheckpointState = { orion_copy_checkpoint: 1, ...identity, prechecked: false, progress: {} };
    if (!path || !existsSync(path)) return new Checkpoint(path, blank, false);
    let state: CheckpointState;
    try {
      state = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new BadInputError(`--checkpoint ${path} is not a checkpoint file: ${(err as Error).message}`);
    }
    if (state?.orion_copy_checkpoint !== 1 || typeof state.progress !== 'object')
      throw new BadInputError(`--checkpoint ${path} is not an orion-db copy checkpoint`);
    const differs = (['source', 'target'] as const).filter((k) => state[k] !== identity[k]);
    if (String(state.tables) !== String(identity.tables)) differs.push('tables' as never);
    if (differs.length && !fresh) {
      throw new BadInputError(
        `--checkpoint ${path} belongs to another copy (its ${differs.join(', ')} ${differs.length === 1 ? 'differs' : 'differ'}: ` +
          differs.map((k) => `${JSON.stringify(state[k])} here ${JSON.stringify(identity[k])}`).join('; ') +
          `); use another file, or --truncate to start this copy over`,
      );
    }
    if (fresh && !differs.length && unfinished(state)) {
      // The same command line with --truncate after a kill would otherwise start over without a word.
      const rows = Object.values(state.progress).reduce((n, p) => n + (p?.rows ?? 0), 0);
      throw new BadInputError(
        `--truncate: --checkpoint ${path} holds an unfinished run of this same copy (${rows} row(s) committed), ` +
          'which --truncate would discard; nothing was changed. To resume it, run the same command without ' +
          `--truncate; to start over, delete ${path} (or give another --checkpoint file) and run with --truncate`,
      );
    }
    if (fresh) return new Checkpoint(path, blank, false);
    return new Checkpoint(path, state, true);
  }

  table(name: string): TableProgress {
    this.state.progress[name] ??= { status: 'copying', rows: 0, after: null, pending: null };
    return this.state.progress[name];
  }

  save(): void {
    if (!this.path) return;
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.state, null, 1)}\n`);
    renameSync(tmp, this.path);
  }
}

/** Some table started (rows committed, or a batch pending) and not every table is done. */
function unfinished(state: CheckpointState): boolean {
  const progress = Object.values(state.progress ?? {});
  const started = progress.some((p) => p && (p.rows > 0 || p.pending));
  const done = (state.tables ?? []).every((t) => state.progress[t]?.status === 'done');
  return started && !done;
}
