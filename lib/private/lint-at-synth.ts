import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const CLI = join(__dirname, '..', '..', 'dist', 'orion-db.cjs');

/**
 * `orion-db lint` on a migrations folder, as a CDK validation: each error becomes a message that
 * fails `cdk synth`. Runs the built CLI in a child process because CDK validations are synchronous
 * and the SQL parser loads asynchronously.
 */
export function lintErrorsForSynth(migrationsDir: string): string[] {
  if (!existsSync(CLI))
    return [`cannot lint ${migrationsDir}: ${CLI} is missing; run "npm run build" (npm ci does it)`];
  const result = spawnSync(process.execPath, [CLI, 'lint', '--json', '--migrations', migrationsDir], {
    encoding: 'utf8',
  });
  let report: { errors?: { file?: string; line?: number; message: string }[] };
  try {
    report = JSON.parse(result.stdout);
  } catch {
    return [`orion-db lint did not run (exit ${result.status}): ${result.stderr.trim().slice(0, 500)}`];
  }
  const errors = (report.errors ?? []).map(
    (e) =>
      `migration lint: ${e.file ? `${e.file}${e.line ? `:${e.line}` : ''}: ` : ''}${e.message} (allow it deliberately with "-- orion:allow <rule>" in the file)`,
  );
  // A gate must fail when what it runs fails, even if the failure came without a listed error.
  if (result.status !== 0 && errors.length === 0)
    return [
      `orion-db lint failed (exit ${result.status}) without naming an error: ${result.stderr.trim().slice(0, 500)}`,
    ];
  return errors;
}
