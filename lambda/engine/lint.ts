/**
 * Migration linting: squawk (the PostgreSQL migration linter, run as its shipped binary) for lock and
 * rewrite hazards, plus our own parser-based rules where squawk has none. Statements on a table
 * created earlier in the same file are exempt (nobody else can hold a lock on it yet).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeUse } from './batches';
import { AddedEnumValues } from './enum-values';
import { BadInputError } from './errors';
import { loadMigrations, type Migration, type MigrationScript, prepareScripts, readScript } from './files';
import type { Statement } from './sql';

export interface Diagnostic {
  readonly file: string;
  readonly line: number;
  readonly column?: number;
  readonly rule: string;
  readonly severity: 'error' | 'warning';
  readonly message: string;
  /** The safe alternative. */
  readonly help?: string;
}

/** squawk rules that do not apply here: the runner sets timeouts itself, and runs files in transactions. */
const SQUAWK_EXCLUDED = [
  'prefer-robust-stmts',
  'require-lock-timeout',
  'require-statement-timeout',
  'require-timeout-settings',
  'prefer-bigint-over-int',
  'prefer-bigint-over-smallint',
  'prefer-identity',
  'prefer-text-field',
  'require-enum-value-ordering',
];

const SQUAWK_RULES = [
  'adding-field-with-default',
  'adding-foreign-key-constraint',
  'adding-not-nullable-field',
  'adding-required-field',
  'adding-serial-primary-key-field',
  'ban-alter-domain-with-add-constraint',
  'ban-char-field',
  'ban-concurrent-index-creation-in-transaction',
  'ban-create-domain-with-constraint',
  'ban-drop-column',
  'ban-drop-database',
  'ban-drop-not-null',
  'ban-drop-table',
  'ban-truncate-cascade',
  'ban-uncommitted-transaction',
  'changing-column-type',
  'constraint-missing-not-valid',
  'disallowed-unique-constraint',
  'prefer-timestamp-tz',
  'renaming-column',
  'renaming-table',
  'require-concurrent-index-creation',
  'require-concurrent-index-deletion',
  'transaction-nesting',
  'identifier-too-long',
  ...SQUAWK_EXCLUDED,
];

export const ORION_RULES = {
  'ban-truncate': 'TRUNCATE deletes every row and takes an ACCESS EXCLUSIVE lock',
  'ban-drop-schema': 'Dropping a schema drops everything in it',
  'enum-value-used-in-same-transaction':
    'An enum value added with ALTER TYPE … ADD VALUE cannot be used until that transaction commits',
  'non-transactional-multiple-statements': 'A non-transactional file with several statements can stop part-way',
  'non-transactional-not-retryable': 'A statement in a non-transactional file must be safe to run again',
  'missing-down': 'The migration has no down script, so `orion-db down` and a stack rollback cannot revert it',
} as const;

export const KNOWN_RULES = new Set<string>([...SQUAWK_RULES, ...Object.keys(ORION_RULES)]);
/** Names this project once printed for a rule, still accepted in allow lists. */
const RULE_ALIASES: Readonly<Record<string, string>> = { 'prefer-timestamptz': 'prefer-timestamp-tz' };
/** A rule's name as squawk reports it, for a name an allow list may hold. */
const canonicalRule = (name: string): string => RULE_ALIASES[name] ?? name;
const isKnownRule = (name: unknown): name is string => typeof name === 'string' && KNOWN_RULES.has(canonicalRule(name));
/**
 * Rules about a table others may be using (locks, rewrites, renames): a table the same file created
 * is exempt. The others — a name over 63 bytes, `timestamp`, `char(n)` — hold for a new table too.
 */
const HOLD_FOR_NEW_TABLES = new Set(['identifier-too-long', 'prefer-timestamp-tz', 'ban-char-field']);
/** The rules a finding can come from (the excluded ones stay known, for old orion:allow lines). */
export const ACTIVE_RULES = [...KNOWN_RULES].filter((r) => !SQUAWK_EXCLUDED.includes(r));

/**
 * The safe alternative of every active rule: what each finding says to do instead. squawk's own help,
 * where it gives one, is more specific and wins; several of its rules (changing-column-type, …) have none.
 */
export const SAFE_ALTERNATIVES: Record<string, string> = {
  'adding-field-with-default':
    'Add the column without a volatile default, backfill it in batches, then set the default',
  'adding-foreign-key-constraint': 'Add it NOT VALID, then VALIDATE CONSTRAINT in a later migration',
  'adding-not-nullable-field':
    'Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL (no scan)',
  'adding-required-field': 'Give the NOT NULL column a constant DEFAULT, or add it nullable and backfill',
  'adding-serial-primary-key-field': 'Build a unique index CONCURRENTLY, then ADD CONSTRAINT … PRIMARY KEY USING INDEX',
  'ban-alter-domain-with-add-constraint':
    "Add the check to the columns' tables (NOT VALID, then VALIDATE), not to the domain",
  'ban-char-field': 'Use text (or varchar) instead of char(n)',
  'ban-concurrent-index-creation-in-transaction':
    'Put CREATE INDEX CONCURRENTLY in its own file marked -- orion:no-transaction',
  'ban-create-domain-with-constraint': "Put the check on the tables' columns, not on the domain",
  'ban-drop-column': 'Stop using the column, deploy, then drop it in a later release',
  'ban-drop-database': 'Drop a database by hand, never from a migration',
  'ban-drop-not-null': 'Keep NOT NULL, or drop it only once every reader handles NULLs',
  'ban-drop-table': 'Stop using the table, deploy, then drop it in a later release',
  'ban-truncate-cascade': 'Name each table to empty, without CASCADE',
  'ban-uncommitted-transaction': 'Remove BEGIN/COMMIT: orion-db runs each file in its own transaction',
  'changing-column-type':
    'Add a column of the new type, backfill it in batches, switch readers and writers, then drop the old one ' +
    '(varchar(n) to text, or a wider varchar, needs no rewrite)',
  'constraint-missing-not-valid': 'Add the constraint NOT VALID, then VALIDATE CONSTRAINT in a later migration',
  'disallowed-unique-constraint': 'CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT … UNIQUE USING INDEX',
  'prefer-timestamp-tz': 'Use timestamptz',
  'renaming-column': 'Add the new column, write both, backfill, switch readers, then drop the old one',
  'renaming-table': 'Create the new table (or a view under the old name) and move readers before dropping the old',
  'require-concurrent-index-creation':
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS, in its own file marked -- orion:no-transaction',
  'require-concurrent-index-deletion':
    'DROP INDEX CONCURRENTLY IF EXISTS, in its own file marked -- orion:no-transaction',
  'transaction-nesting': 'Remove BEGIN/COMMIT: orion-db runs each file in its own transaction',
  'ban-truncate': 'Delete in batches, or stop using the table and drop it in a later release',
  'ban-drop-schema': 'Drop the objects one by one in a later release, once nothing uses them',
  'enum-value-used-in-same-transaction':
    'Add the value in an earlier migration: orion-db commits between migrations where a later one uses it',
  'non-transactional-multiple-statements': 'Put each non-transactional statement in its own migration file',
  'non-transactional-not-retryable': 'Add IF NOT EXISTS / IF EXISTS so a re-run after a partial failure succeeds',
  'missing-down': 'Add the matching .down.sql file',
  'identifier-too-long': 'Choose a name of at most 63 bytes',
};

/** Project-wide opt-outs: `{ "allow": ["rule", …] }` in this file inside the migrations folder. */
export const LINT_CONFIG_FILE = 'orion-lint.json';

export interface LintResult {
  readonly files: readonly string[];
  readonly diagnostics: readonly Diagnostic[];
}

/** A script to lint, with where it lies (squawk reads the file itself) and whether it has a down file. */
export interface LintTarget {
  readonly script: MigrationScript;
  readonly path: string;
  readonly hasDown: boolean;
}

/** Lints every up file of `dir`, or the given files. */
export async function lintMigrations(dir: string, files?: readonly string[]): Promise<LintResult> {
  let targets: LintTarget[];
  if (files && files.length) {
    targets = files.map((path) => {
      let bytes: Buffer;
      try {
        bytes = readFileSync(path);
      } catch (err: any) {
        throw new BadInputError(`cannot read ${path}: ${err.code ?? err.message}`, { file: basename(path) });
      }
      const downPath = path.replace(/\.up\.sql$/, '.down.sql');
      return { script: readScript(basename(path), bytes), hasDown: downPath !== path && existsSync(downPath), path };
    });
    await prepareScripts(targets.map((s) => s.script));
  } else {
    targets = lintTargets(dir, await loadMigrations(dir));
  }
  return lintScripts(dir, targets);
}

/**
 * What the lint judges of `candidates` (of the folder's migrations `all`): every one but the history
 * `orion-lint.json`'s `history_through` names — the migrations a team brings (a Prisma or Flyway folder,
 * a hand-built database's baseline) were applied in production long before this lint, and re-judging
 * them would refuse every `cdk synth`.
 */
export function lintTargets(
  dir: string,
  candidates: readonly Migration[],
  all: readonly Migration[] = candidates,
): LintTarget[] {
  const through = readLintConfig(dir).historyThrough;
  const last = through === undefined ? undefined : all.find((m) => m.label === through || m.source === through);
  if (through !== undefined && !last) {
    throw new BadInputError(
      `"history_through" names ${JSON.stringify(through)}, which is no migration's version in this folder`,
      { file: LINT_CONFIG_FILE },
    );
  }
  return candidates
    .filter((m) => last === undefined || m.version > last.version)
    .map((m) => ({ script: m.up, path: join(dir, m.up.file), hasDown: Boolean(m.down) }));
}

/**
 * Lints scripts already read (and parsed, or parsed here). squawk runs as child processes while this
 * process goes on, so a caller that does not await at once (migrate) gets the lint on the other core.
 */
export async function lintScripts(dir: string, targets: readonly LintTarget[]): Promise<LintResult> {
  const projectAllow = readLintConfig(dir).allow;
  for (const { script } of targets) {
    for (const rule of script.directives.allow) {
      if (!isKnownRule(rule))
        throw new BadInputError(`orion:allow names an unknown lint rule "${rule}"`, { file: script.file });
    }
  }
  const squawking = Promise.all([
    runSquawk(
      targets.filter((s) => !s.script.directives.noTransaction),
      true,
    ),
    runSquawk(
      targets.filter((s) => s.script.directives.noTransaction),
      false,
    ),
  ]);
  squawking.catch(() => {}); // awaited below; a parse error may come first
  await prepareScripts(targets.map((t) => t.script)); // parsed once: the run that applies them reuses the statements
  const squawk = (await squawking).flat();
  const diagnostics: Diagnostic[] = [];
  for (const { script, hasDown } of targets) {
    const fresh = tablesCreatedBefore(script.statements);
    const mine = squawk
      .filter((d) => d.file === script.file)
      .filter((d) => HOLD_FOR_NEW_TABLES.has(d.rule) || !fresh(statementAt(script.statements, d.line)));
    const found = [...mine, ...orionRules(script, hasDown)];
    const allowed = new Set([...script.directives.allow, ...projectAllow].map(canonicalRule));
    diagnostics.push(...found.filter((d) => !allowed.has(d.rule)));
  }
  diagnostics.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.rule.localeCompare(b.rule));
  return { files: targets.map((s) => s.script.file), diagnostics };
}

interface LintConfig {
  readonly allow: readonly string[];
  readonly historyThrough?: string;
}

function readLintConfig(dir: string): LintConfig {
  const path = join(dir, LINT_CONFIG_FILE);
  if (!existsSync(path)) return { allow: [] };
  let config: any;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err: any) {
    throw new BadInputError(`${LINT_CONFIG_FILE} is not valid JSON: ${err.message}`, { file: LINT_CONFIG_FILE });
  }
  const allow = config?.allow ?? [];
  if (!Array.isArray(allow)) {
    throw new BadInputError(`"allow" must be a list of lint rule names, got ${JSON.stringify(allow)}`, {
      file: LINT_CONFIG_FILE,
    });
  }
  const unknown = allow.filter((r: unknown) => !isKnownRule(r));
  if (unknown.length) {
    throw new BadInputError(
      `"allow" names unknown lint rule(s) ${unknown.map((r: unknown) => JSON.stringify(r)).join(', ')}`,
      { file: LINT_CONFIG_FILE },
    );
  }
  const through = config?.history_through;
  if (through !== undefined && (typeof through !== 'string' || through.trim() === '')) {
    throw new BadInputError(
      `"history_through" must be a migration's version as its file names it (e.g. "20240519093155"), got ${JSON.stringify(through)}`,
      { file: LINT_CONFIG_FILE },
    );
  }
  const keys = Object.keys(config ?? {}).filter((k) => k !== 'allow' && k !== 'history_through');
  if (keys.length) {
    throw new BadInputError(`unknown setting(s) ${keys.join(', ')} (known: allow, history_through)`, {
      file: LINT_CONFIG_FILE,
    });
  }
  return { allow, historyThrough: through };
}

/**
 * squawk's own binary package for this platform. The project depends on the linux-x64 one directly
 * (the npm registry these machines reach has no other platform builds of squawk-cli 2.66.0, which
 * makes `npm ci` refuse the wrapper package's lockfile); other platforms install theirs by hand.
 */
function squawkBinary(): string {
  const pkg = `@squawk-cli/${process.platform}-${process.arch}`;
  try {
    return require.resolve(`${pkg}/bin/squawk`);
  } catch {
    throw new BadInputError(`squawk is not installed for this platform: npm install --no-save ${pkg}@2.66.0`);
  }
}

/**
 * squawk lints thousands of files in seconds; a hung one must not hang `migrate`, which awaits the lint
 * after its migrations have committed.
 */
const SQUAWK_TIMEOUT_MS = 60_000;

/** One squawk process for a group of files. */
async function runSquawk(group: readonly LintTarget[], inTransaction: boolean): Promise<Diagnostic[]> {
  if (group.length === 0) return [];
  const args = [
    '--reporter',
    'json',
    '--pg-version',
    '16',
    `--exclude=${SQUAWK_EXCLUDED.join(',')}`,
    ...(inTransaction ? ['--assume-in-transaction'] : []),
    ...group.map((g) => g.path),
  ];
  const binary = squawkBinary();
  const result = await new Promise<{ status: number | null; stdout: string; stderr: string; error?: Error }>(
    (resolve) => {
      // squawk exits 1 when it has findings: that is not a failure, so the exit code is read, not thrown.
      const child = execFile(
        binary,
        args,
        { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: SQUAWK_TIMEOUT_MS, killSignal: 'SIGKILL' },
        (error, stdout, stderr) =>
          resolve({
            status: child.exitCode,
            stdout,
            stderr,
            error: error?.killed
              ? new Error(`squawk did not finish within ${SQUAWK_TIMEOUT_MS / 1000} s and was stopped`)
              : error && typeof (error as { code?: unknown }).code !== 'number'
                ? error
                : undefined,
          }),
      );
    },
  );
  if (result.error) throw new Error(`could not run squawk: ${result.error.message}`);
  if (result.status !== 0 && result.status !== 1)
    throw new Error(`squawk failed (exit ${result.status}): ${result.stderr.trim().slice(0, 500)}`);
  let findings: any[];
  try {
    findings = JSON.parse(result.stdout || '[]');
  } catch {
    throw new Error(`squawk exited ${result.status} without a JSON report: ${result.stderr.trim().slice(0, 500)}`);
  }
  const byPath = new Map(group.map((g) => [g.path, g.script.file]));
  return findings.map((f) => ({
    file: byPath.get(f.file) ?? basename(f.file),
    line: Number(f.line) + 1, // squawk counts from 0
    column: Number(f.column) + 1,
    rule: f.rule_name,
    severity: 'error', // squawk calls every finding a warning; each is a production hazard here
    message: f.message,
    help: f.help || SAFE_ALTERNATIVES[f.rule_name],
  }));
}

/** The statement covering a 1-based line. */
function statementAt(statements: readonly Statement[], line: number): Statement | undefined {
  let found: Statement | undefined;
  for (const s of statements) if (s.line <= line) found = s;
  return found;
}

/** Whether a statement works on a table the same file created before it. */
function tablesCreatedBefore(statements: readonly Statement[]): (s: Statement | undefined) => boolean {
  const createdAt = new Map<string, number>();
  for (const s of statements) {
    if (s.kind === 'CreateStmt' && s.node.relation?.relname && !createdAt.has(s.node.relation.relname))
      createdAt.set(s.node.relation.relname, s.line);
  }
  return (s) => {
    if (!s || s.kind === 'CreateStmt') return false;
    const table = s.node.relation?.relname;
    const at = table ? createdAt.get(table) : undefined;
    return at !== undefined && at < s.line;
  };
}

function orionRules(script: MigrationScript, hasDown: boolean): Diagnostic[] {
  const out: Diagnostic[] = [];
  const add = (
    s: Statement | undefined,
    rule: keyof typeof ORION_RULES,
    help = SAFE_ALTERNATIVES[rule],
    severity: Diagnostic['severity'] = 'error',
    detail?: string,
  ) =>
    out.push({
      file: script.file,
      line: s?.line ?? 1,
      rule,
      severity,
      message: detail ? `${ORION_RULES[rule]}: ${detail}` : ORION_RULES[rule],
      help,
    });
  for (const s of script.statements) {
    if (s.kind === 'TruncateStmt') add(s, 'ban-truncate');
    if (s.kind === 'DropStmt' && s.node.removeType === 'OBJECT_SCHEMA') add(s, 'ban-drop-schema');
  }
  if (script.directives.noTransaction) {
    if (script.statements.length > 1) {
      add(script.statements[1], 'non-transactional-multiple-statements');
    }
    for (const s of script.statements) {
      if (!retryable(s)) add(s, 'non-transactional-not-retryable');
    }
  } else {
    // Across files the runner commits in between; within one file it cannot, so the server would refuse.
    const added = new AddedEnumValues();
    for (const s of script.statements) {
      const use = added.firstUse(script.file, [s]);
      if (use) add(s, 'enum-value-used-in-same-transaction', undefined, 'warning', describeUse(use));
      added.record(script.file, s);
    }
  }
  if (!hasDown) {
    // A layout without down files (Prisma's) can only be rolled back by the policies that need none.
    const help = /\.up\.sql$/.test(script.file)
      ? `Add ${script.file.replace(/\.up\.sql$/, '.down.sql')}`
      : "Add the down script this tool's layout allows, or deploy with the rollback policy keep or restore (this layout may have none)";
    add(undefined, 'missing-down', help, 'warning');
  }
  return out;
}

/** CREATE … IF NOT EXISTS / DROP … IF EXISTS, or a statement that is naturally repeatable. */
function retryable(s: Statement): boolean {
  if (
    s.kind === 'IndexStmt' ||
    s.kind === 'CreateStmt' ||
    s.kind === 'CreateSchemaStmt' ||
    s.kind === 'CreateExtensionStmt'
  )
    return Boolean(s.node.if_not_exists);
  if (s.kind === 'DropStmt') return Boolean(s.node.missing_ok);
  return true; // VACUUM, REINDEX, ALTER SYSTEM … can simply run again
}
