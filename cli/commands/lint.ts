/**
 * `orion-db lint [FILES or FOLDERS...]`: dangerous-migration checks, no database needed.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { type LintResult, lintMigrations } from '../../lambda/engine/lint';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from '../context';

export async function lint(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const paths = options.positionals.map((f) => resolve(options.cwd, f));
  // A folder given as an argument means its migrations (with its own orion-lint.json), as --migrations does.
  const folders = paths.filter((p) => statSync(p, { throwIfNoEntry: false })?.isDirectory());
  const files = paths.filter((p) => !folders.includes(p));
  const results: LintResult[] = [];
  for (const folder of folders) results.push(await lintMigrations(folder));
  if (files.length || folders.length === 0)
    results.push(await lintMigrations(resolve(options.cwd, options.migrationsDir), files));
  const report = emptyReport('lint');
  report.files = results.flatMap((r) => r.files);
  report.diagnostics = results.flatMap((r) => r.diagnostics);
  report.errors = results
    .flatMap((r) => r.diagnostics)
    .filter((d) => d.severity === 'error')
    .map((d) => ({ file: d.file, line: d.line, column: d.column, message: `${d.rule}: ${d.message}` }));
  report.ok = report.errors.length === 0;
  return report;
}
