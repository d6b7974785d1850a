/**
 * Command-line parsing: flags into typed options. Every mistake is a BadInputError (exit 2).
 */
import { parseArgs } from 'node:util';
import { FOREIGN_TOOLS, type ForeignTool } from '../lambda/engine/adopt/types';
import { parseDuration } from '../lambda/engine/directives';
import { BadInputError } from '../lambda/engine/errors';
import { isLayoutName, LAYOUTS, type LayoutName } from '../lambda/engine/layouts';
import { COMMAND_HELP, usage } from './help';

export const COMMANDS = [
  'status',
  'plan',
  'migrate',
  'down',
  'lint',
  'verify',
  'new',
  'up',
  'copy',
  'drift',
  'inventory',
  'adopt',
] as const;
export type CommandName = (typeof COMMANDS)[number];
/** Every command has its entry in help.ts (a compile error otherwise). */
export const HELP: Record<CommandName, unknown> = COMMAND_HELP;

export interface CliOptions {
  readonly command: CommandName;
  readonly positionals: readonly string[];
  readonly json: boolean;
  readonly migrationsDir: string;
  readonly databaseUrl?: string;
  readonly to?: bigint;
  readonly dryRun: boolean;
  readonly allowOutOfOrder: boolean;
  /** How long to wait for another run's migration lock. */
  readonly lockWaitMs: number;
  readonly from?: string;
  readonly target?: string;
  readonly tables?: readonly string[];
  readonly sample?: number;
  /** copy: rows per batch (and per transaction). */
  readonly batchSize: number;
  /** copy: --batch-size was given, not the default. */
  readonly batchSizeGiven: boolean;
  readonly checkpoint?: string;
  readonly truncate: boolean;
  /** migrate/down: run the migrations' SQL as this role (default: the owner role, when usable). */
  readonly role?: string;
  /** migrate/down: run as the connecting user, not the owner role. */
  readonly noRole: boolean;
  /** up --database-url: set the application's password from .orion/secrets.json. */
  readonly setAppPassword: boolean;
  /** The migrations folder's layout (default: detected). */
  readonly format?: LayoutName;
  /** adopt: the tool whose ledger to read (default: the one found). */
  readonly adoptFrom?: ForeignTool;
  /** migrate/up on a database with tables and no ledger: the version its schema is at. */
  readonly baseline?: string;
  readonly cwd: string;
  /** drift: build the reference on this server instead of the live one. */
  readonly devUrl?: string;
  /** inventory: write the inventory to this file. */
  readonly output?: string;
  /** inventory: compare with the inventory saved in this file. */
  readonly compare?: string;
  /** inventory --compare: the drop in a table's row count (percent) that fails the comparison. */
  readonly tolerancePct: number;
}

/** The overview; each command's entry is in help.ts. */
const USAGE = usage();

export function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): CliOptions {
  const [command, ...rest] = argv;
  if (!command) throw new BadInputError(USAGE); // help itself (exit 0) is answered before parsing: help.ts
  if (!(COMMANDS as readonly string[]).includes(command))
    throw new BadInputError(`unknown command "${command}"\n\n${USAGE}`);
  const parsed = parseOptions(rest);
  const v = parsed.values;
  const isVerify = command === 'verify' || command === 'copy';
  if (v.format !== undefined && !isLayoutName(v.format))
    throw new BadInputError(`--format must be one of ${LAYOUTS.join(', ')}, got "${v.format}"`);
  const adoptFrom = command === 'adopt' ? v.from : undefined;
  if (adoptFrom !== undefined && !(FOREIGN_TOOLS as readonly string[]).includes(adoptFrom))
    throw new BadInputError(`--from must be one of ${FOREIGN_TOOLS.join(', ')}, got "${adoptFrom}"`);
  if (v.baseline !== undefined && !/^\d+(?:[._]\d+)*$/.test(v.baseline))
    throw new BadInputError(`--baseline needs a version (digits, or Flyway's dotted digits), got "${v.baseline}"`);
  const to = !isVerify && v.to !== undefined ? parseVersion(v.to) : undefined;
  if (command === 'down' && to === undefined)
    throw new BadInputError('down needs --to VERSION (use --to 0 to revert everything)');
  if (command === 'new' && parsed.positionals.length !== 1)
    throw new BadInputError('new needs exactly one NAME, e.g. orion-db new add_users_email');
  if (command !== 'new' && command !== 'lint' && parsed.positionals.length) {
    throw new BadInputError(`unexpected argument "${parsed.positionals[0]}" for ${command}`);
  }
  if (isVerify && (!v.from || !v.to)) throw new BadInputError(`${command} needs --from SRC and --to URL`);
  const batchSize = v['batch-size'] !== undefined ? Number(v['batch-size']) : 1000;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1_000_000)
    throw new BadInputError(`--batch-size must be a whole number of rows from 1 to 1000000, got "${v['batch-size']}"`);
  if (v.role !== undefined && v['no-role']) throw new BadInputError('--role and --no-role exclude each other');
  const tolerancePct = v.tolerance !== undefined ? Number(v.tolerance) : 0;
  if (!(tolerancePct >= 0 && tolerancePct <= 100))
    throw new BadInputError(`--tolerance must be a percentage from 0 to 100, got "${v.tolerance}"`);
  const sample = v.sample !== undefined ? Number(v.sample) : undefined;
  if (sample !== undefined && !(sample > 0 && sample <= 1))
    throw new BadInputError(`--sample must be a fraction in (0, 1], got "${v.sample}"`);
  return {
    command: command as CommandName,
    positionals: parsed.positionals,
    json: v.json!,
    migrationsDir: v.migrations ?? 'migrations',
    databaseUrl: v['database-url'] ?? (env.DATABASE_URL || undefined),
    to,
    dryRun: v['dry-run']!,
    allowOutOfOrder: v['allow-out-of-order']!,
    lockWaitMs: v['lock-timeout'] !== undefined ? parseDuration(v['lock-timeout'], 'lock-timeout') : 60_000,
    from: isVerify ? v.from : undefined,
    target: isVerify ? v.to : undefined,
    tables: v.tables
      ?.split(',')
      .map((t) => t.trim())
      .filter(Boolean),
    sample,
    batchSize,
    batchSizeGiven: v['batch-size'] !== undefined,
    checkpoint: v.checkpoint,
    truncate: v.truncate!,
    role: v.role,
    noRole: v['no-role']!,
    setAppPassword: v['set-app-password']!,
    format: v.format as LayoutName | undefined,
    adoptFrom: adoptFrom as ForeignTool | undefined,
    baseline: v.baseline,
    cwd,
    devUrl: v['dev-url'],
    output: v.output,
    compare: v.compare,
    tolerancePct,
  };
}

function parseVersion(value: string): bigint {
  if (!/^\d{1,19}$/.test(value)) throw new BadInputError(`--to needs a version number, got "${value}"`);
  return BigInt(value);
}

function parseOptions(rest: readonly string[]) {
  try {
    return parseArgs({
      args: [...rest],
      allowPositionals: true,
      strict: true,
      options: {
        json: { type: 'boolean', default: false },
        migrations: { type: 'string' },
        'database-url': { type: 'string' },
        to: { type: 'string' },
        from: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        'allow-out-of-order': { type: 'boolean', default: false },
        'lock-timeout': { type: 'string' },
        tables: { type: 'string' },
        sample: { type: 'string' },
        'batch-size': { type: 'string' },
        checkpoint: { type: 'string' },
        truncate: { type: 'boolean', default: false },
        role: { type: 'string' },
        'no-role': { type: 'boolean', default: false },
        'set-app-password': { type: 'boolean', default: false },
        'dev-url': { type: 'string' },
        output: { type: 'string' },
        compare: { type: 'string' },
        tolerance: { type: 'string' },
        format: { type: 'string' },
        baseline: { type: 'string' },
      },
    });
  } catch (err: any) {
    throw new BadInputError(`${err.message}\n\n${USAGE}`);
  }
}
