/**
 * `orion-db lint [FILES...]`: dangerous-migration checks, no database needed.
 */
import { resolve } from 'node:path';
import { lintMigrations } from '../../lambda/engine/lint';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from './migrations';

export async function lint(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const files = options.positionals.map((f) => resolve(options.cwd, f));
  const result = await lintMigrations(resolve(options.cwd, options.migrationsDir), files);
  const report = emptyReport('lint');
  report.files = result.files;
  report.diagnostics = result.diagnostics;
  report.errors = result.diagnostics
    .filter((d) => d.severity === 'error')
    .map((d) => ({ file: d.file, line: d.line, column: d.column, message: `${d.rule}: ${d.message}` }));
  report.ok = report.errors.length === 0;
  return report;
}
