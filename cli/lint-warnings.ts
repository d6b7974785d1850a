/**
 * `migrate` and `up` warn (stderr, never fail) about what `cdk synth` refuses: the lint's errors. A
 * local rehearsal is where the author should first hear that the deploy will not synthesize.
 */
import { OrionError } from '../lambda/engine/errors';
import type { Migration } from '../lambda/engine/files';
import { lintMigrations, lintScripts, lintTargets } from '../lambda/engine/lint';
import type { PendingMigration } from '../lambda/engine/plan';
import { wrap } from './text';

/**
 * Lints the `pending` migrations of `dir` (or the whole folder, as cdk synth does) and prints each
 * error as a warning. squawk runs beside the caller: `migrate` starts this before it applies and
 * awaits it after, so the lint costs the run no time.
 */
export async function warnAboutLint(
  dir: string,
  run: { pending: readonly PendingMigration[]; all: readonly Migration[] } | undefined,
  progress: (line: string) => void,
): Promise<void> {
  if (run && run.pending.length === 0) return;
  try {
    const { diagnostics } = run
      ? await lintScripts(
          dir,
          lintTargets(
            dir,
            run.pending.map((p) => p.migration),
            run.all,
          ),
        )
      : await lintMigrations(dir);
    for (const d of diagnostics.filter((x) => x.severity === 'error')) {
      progress(
        [
          wrap(`warning: ${d.file}:${d.line}: ${d.rule}: ${d.message}`),
          wrap(`  cdk synth refuses this${d.help ? `; instead: ${d.help}` : ''}`),
          `  (or allow it with "-- orion:allow ${d.rule}" in the file)`,
        ].join('\n'),
      );
    }
  } catch (err) {
    // A bad file is the run's to report (it stops before anything runs); squawk missing is a line, not a failure.
    if (err instanceof OrionError && !err.message.includes('squawk')) return;
    progress(`warning: the migrations could not be linted: ${(err as Error)?.message ?? err}`);
  }
}
