/**
 * `orion-db --help` and `orion-db <command> --help`: one entry per command, from which both the
 * overview and the command's own page are made. A new command adds its entry here (args.ts makes a
 * missing one a compile error).
 */
import { wrap } from './text';

export interface CommandHelp {
  /** One line for the overview. */
  readonly summary: string;
  /** The synopsis after `orion-db`, e.g. `status [--database-url URL] …`. */
  readonly usage: string;
  /** Flag (with its value) and what it does. */
  readonly flags: readonly (readonly [string, string])[];
  /** A command line to copy. */
  readonly example: string;
}

const DATABASE = [
  '--database-url URL',
  'the database; default $DATABASE_URL, else the local server "orion-db up" started under .orion/',
] as const;
const MIGRATIONS = [
  '--migrations DIR',
  "the migrations folder (default ./migrations), in orion/golang-migrate/sqlx, dbmate, goose, Prisma, Diesel or Flyway's layout",
] as const;
const FORMAT = [
  '--format LAYOUT',
  'orion, dbmate, goose, prisma, diesel or flyway (default: detected from the folder)',
] as const;
const BASELINE = [
  '--baseline V',
  'a database with tables and no ledger: prove its schema is what migrations up to V make, record them as applied',
] as const;
const JSON_FLAG = ['--json', 'print one JSON report on stdout (progress stays on stderr)'] as const;
const LOCK = ['--lock-timeout 60s', "how long to wait for another run's migration lock (exit 3 after)"] as const;
const ROLE = [
  '--role ROLE | --no-role',
  'run the SQL as ROLE / as the connecting user (default: orion_owner)',
] as const;
const TABLES = ['--tables a,b', 'only these tables (default: every table in both)'] as const;

export const COMMAND_HELP = {
  status: {
    summary: 'applied and pending versions, and the last failed attempt',
    usage: 'status [--database-url URL] [--migrations DIR] [--json]',
    flags: [DATABASE, MIGRATIONS, JSON_FLAG],
    example: 'orion-db status --database-url postgres://postgres@127.0.0.1:5432/orion_prod',
  },
  plan: {
    summary: 'what migrate would do; changes nothing',
    usage: 'plan [--to VERSION] [--allow-out-of-order] [--database-url URL] [--migrations DIR] [--json]',
    flags: [
      ['--to VERSION', 'stop after this version'],
      ['--allow-out-of-order', 'also plan files older than the newest applied version'],
      DATABASE,
      MIGRATIONS,
      JSON_FLAG,
    ],
    example: 'orion-db plan --json',
  },
  migrate: {
    summary: 'apply the pending migrations',
    usage:
      'migrate [--to VERSION] [--dry-run] [--allow-out-of-order] [--lock-timeout 60s] [--role ROLE | --no-role] [...]',
    flags: [
      ['--to VERSION', 'apply up to and including this version'],
      ['--dry-run', 'run the transactional migrations and roll them back; nothing stays'],
      ['--allow-out-of-order', 'apply files older than the newest applied version'],
      BASELINE,
      LOCK,
      ROLE,
      DATABASE,
      MIGRATIONS,
      FORMAT,
      JSON_FLAG,
    ],
    example: 'orion-db migrate --dry-run',
  },
  down: {
    summary: 'revert to a version with the down scripts stored at apply time',
    usage: 'down --to VERSION [--dry-run] [--lock-timeout 60s] [--role ROLE | --no-role] [...]',
    flags: [
      ['--to VERSION', 'required: the version to go back to (0 reverts everything)'],
      ['--dry-run', 'run the down scripts and roll them back; nothing stays'],
      LOCK,
      ROLE,
      DATABASE,
      MIGRATIONS,
      JSON_FLAG,
    ],
    example: 'orion-db down --to 2',
  },
  lint: {
    summary: 'check migrations for dangerous SQL (no database needed)',
    usage: 'lint [FILES or FOLDERS...] [--migrations DIR] [--json]',
    flags: [
      ['FILES...', 'the .up.sql files or folders to check (default: the whole --migrations folder)'],
      MIGRATIONS,
      JSON_FLAG,
    ],
    example: 'orion-db lint migrations/000003_add_index.up.sql',
  },
  verify: {
    summary: 'compare row counts and a sample of rows between two databases',
    usage: 'verify --from SRC --to URL [--tables a,b] [--sample 0.05] [--json]',
    flags: [
      ['--from SRC', 'sqlite:///relative/path.db, sqlite:////absolute/path.db or a postgres:// URL'],
      ['--to URL', 'the PostgreSQL database to compare with'],
      TABLES,
      ['--sample 0.05', 'the fraction of rows compared value for value (counts are always compared whole)'],
      JSON_FLAG,
    ],
    example: 'orion-db verify --from sqlite:///legacy.db --to postgres://postgres@127.0.0.1:5432/orion_prod',
  },
  copy: {
    summary: 'copy rows from SQLite or PostgreSQL into the migrated schema, resumable',
    usage: 'copy --from SRC --to URL [--tables a,b] [--batch-size 1000] [--checkpoint FILE] [--truncate] [--json]',
    flags: [
      ['--from SRC', 'sqlite:///relative/path.db, sqlite:////absolute/path.db or a postgres:// URL'],
      ['--to URL', 'the PostgreSQL database to copy into (its schema already migrated)'],
      TABLES,
      [
        '--batch-size 1000',
        'rows per batch and per transaction (PostgreSQL source, same column types: 50000 unless given)',
      ],
      ['--checkpoint FILE', 'where progress is kept, so a second run resumes'],
      ['--truncate', 'empty the target tables first (otherwise a non-empty target is refused)'],
      JSON_FLAG,
    ],
    example: 'orion-db copy --from sqlite:///legacy.db --to postgres://postgres@127.0.0.1:5432/orion_prod',
  },
  new: {
    summary: 'create the next-numbered up/down pair',
    usage: 'new NAME [--migrations DIR]',
    flags: [['NAME', 'letters, digits, "_", "." and "-" (the rule for every migration file name)'], MIGRATIONS],
    example: 'orion-db new add_users_email',
  },
  up: {
    summary: 'the full deploy lifecycle (embedded PostgreSQL by default)',
    usage:
      'up [--migrations DIR] [--database-url URL] [--set-app-password] [--baseline V] [--lock-timeout 60s] [--json]',
    flags: [
      MIGRATIONS,
      FORMAT,
      BASELINE,
      ['--database-url URL', "a server up did not start; the URL names its master user and the application's database"],
      ['--set-app-password', "with --database-url: set orion_app's password from .orion/secrets.json"],
      LOCK,
      JSON_FLAG,
    ],
    example: 'orion-db up',
  },
  drift: {
    summary: 'the live schema vs a replay of its applied migrations',
    usage: 'drift [--database-url URL] [--migrations DIR] [--dev-url URL] [--role OWNER] [--json]',
    flags: [
      ['--database-url URL', 'the live database (default $DATABASE_URL)'],
      MIGRATIONS,
      ['--dev-url URL', 'replay the migrations on this server instead of the live one'],
      ['--role OWNER', 'the owner role the deploy uses (default orion_owner)'],
      JSON_FLAG,
    ],
    example: 'orion-db drift --database-url postgres://postgres@127.0.0.1:5432/orion_prod',
  },
  inventory: {
    summary: 'row counts, sizes, unexpected and missing tables',
    usage: 'inventory [--database-url URL] [--output FILE] [--compare FILE] [--tolerance PCT] [--json]',
    flags: [
      ['--database-url URL', 'the database (default $DATABASE_URL)'],
      MIGRATIONS,
      ['--output FILE', 'save the inventory to FILE'],
      ['--compare FILE', 'compare with a saved inventory; exit 1 when a table vanished or shrank'],
      ['--tolerance PCT', "with --compare: how far (percent) a table's row count may drop (default 0)"],
      JSON_FLAG,
    ],
    example: 'orion-db inventory --output before.json',
  },
  adopt: {
    summary: "record what another tool's ledger says was applied (also automatic on a first migrate/up)",
    usage: 'adopt [--from TOOL] [--dry-run] [--baseline V] [--database-url URL] [--migrations DIR] [--json]',
    flags: [
      [
        '--from TOOL',
        'golang-migrate, dbmate, goose, flyway, prisma, diesel, sqlx or node-pg-migrate (default: the one found)',
      ],
      ['--dry-run', 'print what it would record; change nothing'],
      BASELINE,
      DATABASE,
      MIGRATIONS,
      FORMAT,
      JSON_FLAG,
    ],
    example: 'orion-db adopt --dry-run --migrations db/migrations',
  },
} satisfies Record<string, CommandHelp>;

type HelpName = keyof typeof COMMAND_HELP;

const FOOTER = `SRC is sqlite:///relative/path.db, sqlite:////absolute/path.db or a postgres:// URL.
--database-url defaults to $DATABASE_URL; without it, status, plan, migrate, down and adopt use the local server
"orion-db up" (npm start) left running under .orion/.
Exit codes: 0 ok, 1 a migration or check failed, 2 bad input or usage (nothing ran),
3 the migration lock was not acquired in time. "orion-db <command> --help" shows a command's flags.`;

/** The overview: every command with its one-line summary. */
export function usage(): string {
  const names = Object.keys(COMMAND_HELP) as HelpName[];
  const width = Math.max(...names.map((n) => n.length));
  const lines = names.map((n) => `  ${n.padEnd(width)}  ${COMMAND_HELP[n].summary}`);
  return `Usage: orion-db <command> [options]\n\nCommands:\n${lines.join('\n')}\n\n${FOOTER}`;
}

/** One command's page: synopsis, flags, an example. */
export function commandHelp(command: HelpName): string {
  const h: CommandHelp = COMMAND_HELP[command];
  const width = Math.max(...h.flags.map(([f]) => f.length));
  // Wrapped at 120 columns, a flag's description continuing under itself.
  const flags = h.flags.map(([f, d]) => wrap(`  ${f.padEnd(width)}  ${d}`, ' '.repeat(width + 4)));
  const synopsis = wrap(`Usage: orion-db ${h.usage}`, '    ');
  return `${synopsis}\n\n${h.summary}\n\nOptions:\n${flags.join('\n')}\n\nExample:\n  ${h.example}`;
}

/**
 * The help text when argv asks for help (`help`, `-h`, `--help`, `help CMD`, `CMD --help`, `CMD -h`),
 * else undefined. Checked before anything else is parsed, so a help request never runs anything.
 */
export function helpRequested(argv: readonly string[]): string | undefined {
  const [first, ...rest] = argv;
  const isCommand = (c: string | undefined): c is HelpName => c !== undefined && Object.hasOwn(COMMAND_HELP, c);
  if (first === 'help') return isCommand(rest[0]) ? commandHelp(rest[0]) : usage();
  if (first === '--help' || first === '-h') return usage();
  const end = rest.indexOf('--');
  const flags = end === -1 ? rest : rest.slice(0, end);
  if (isCommand(first) && flags.some((a) => a === '--help' || a === '-h')) return commandHelp(first);
  return undefined;
}
