/**
 * Human rendering of a report.
 */
import type { Report } from '../lambda/engine/report';
import { renderDrift, renderInventory } from './render-sections';
import { MAX_LINE } from './text';

export function renderReport(r: Report): string {
  const lines: string[] = [];
  const version = (v: string | null) => v ?? 'none';
  if (r.command === 'status') {
    lines.push(`current version: ${version(r.to_version)}`);
    for (const a of r.applied) lines.push(`  applied  ${a.version} ${a.name}`);
    for (const p of r.pending) lines.push(`  pending  ${p.version} ${p.name}`);
    for (const i of (r.incomplete as { version: string; statements_done: number }[] | undefined) ?? []) {
      lines.push(
        `  incomplete ${i.version}: ${i.statements_done} statement(s) ran before it stopped; "orion-db migrate" resumes it`,
      );
    }
    const f = r.last_failure as LastFailure | undefined;
    if (f) {
      const where = `${f.file ?? `${f.version} ${f.name}`}${f.line ? `:${f.line}` : ''}`;
      lines.push(`  last failure: ${where} at ${f.at}: ${f.sqlstate ? `SQLSTATE ${f.sqlstate}: ` : ''}${f.message}`);
    }
  } else if (r.command === 'plan') {
    // A plan that failed (a file that is no migration, an edited one) has no pending list to speak of.
    if (!r.ok) lines.push(`plan FAILED at version ${version(r.from_version)}`);
    else if (r.pending.length === 0) lines.push(`nothing to do: at version ${version(r.from_version)}`);
    else lines.push(`${version(r.from_version)} → ${version(r.to_version)}:`);
    for (const s of (r.steps as { file: string; batch: number; transaction: boolean; statements: number }[]) ?? []) {
      lines.push(
        `  ${s.file} (${s.statements} statement(s), ${s.transaction ? `batch ${s.batch}` : 'no transaction'})`,
      );
    }
    for (const b of (r.batch_splits as { after: string; reason: string }[] | undefined) ?? [])
      lines.push(`  commits after ${b.after}: ${b.reason}`);
  } else if (r.command === 'migrate' || r.command === 'down' || r.command === 'up') {
    const verb =
      r.command === 'down' ? (r.dry_run ? 'would revert' : 'reverted') : r.dry_run ? 'would apply' : 'applied';
    if (r.restored) {
      // What ran before the failure was undone by the restore: nothing is "applied".
      const undone = ((r.undone as Report['applied'] | undefined) ?? []).map((a) => a.version).join(', ');
      lines.push(
        `FAILED: restored to version ${version(r.to_version)} from the snapshot taken before` +
          `${undone ? ` (undoing ${undone})` : ''}, pending ${r.pending.length}`,
      );
      if (r.kept_as) lines.push(`the failed database is kept as ${r.kept_as}, to inspect; drop it when done`);
    } else {
      lines.push(
        `${r.ok ? 'ok' : 'FAILED'}: ${version(r.from_version)} → ${version(r.to_version)}, ${verb} ${r.applied.length}, pending ${r.pending.length}`,
      );
    }
    for (const b of (r.batch_splits as { after: string; before: string; reason: string }[] | undefined) ?? [])
      lines.push(`batch split: committed after ${b.after}, before ${b.before}: ${b.reason}`);
    for (const k of (r.skipped as { version: string; name: string; reason: string }[] | undefined) ?? [])
      lines.push(`skipped ${k.version} ${k.name}: ${k.reason}`);
    if (r.snapshot) lines.push(`snapshot: ${r.snapshot}${r.restored ? ' (restored)' : ''}`);
    if (r.backup) lines.push(`not restored; the backup taken before is ${r.backup}`);
    for (const n of (r.notes as string[] | undefined) ?? []) lines.push(`note: ${n}`);
    if (r.lockdown) lines.push(...lockdownLines(r.lockdown));
    if (r.app_url) lines.push(`application connection: ${r.app_url}\n  password: ${r.app_password_from}`);
    if (r.admin_url)
      lines.push(
        `admin connection (status, plan, migrate, down): ${r.admin_url}\n  password: ${r.admin_password_from}`,
      );
  } else if (r.command === 'lint' && r.diagnostics) {
    const diagnostics =
      (r.diagnostics as {
        file: string;
        line: number;
        rule: string;
        severity: string;
        message: string;
        help?: string;
      }[]) ?? [];
    for (const d of diagnostics)
      lines.push(`${d.file}:${d.line}: ${d.severity} ${d.rule}: ${d.message}${d.help ? `\n    help: ${d.help}` : ''}`);
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    lines.push(
      `${(r.files as string[]).length} file(s): ${errors} error(s), ${diagnostics.length - errors} warning(s)`,
    );
    return lines.join('\n');
  } else if (r.command === 'verify') {
    for (const [t, d] of Object.entries(
      (r.tables as Record<string, { from: { rows: number } | null; to: { rows: number } | null }>) ?? {},
    )) {
      lines.push(`  ${t}: ${d.from?.rows ?? 'missing'} → ${d.to?.rows ?? 'missing'}`);
    }
    // Says what was compared: a sample that matched is not "the databases match".
    const tables = Object.keys(r.tables ?? {}).length;
    const pct = Number(((r.sample as number) * 100).toPrecision(3));
    if (r.ok) {
      lines.push(
        `ok: row counts match in ${tables} table(s); a ${pct} % sample (${r.sampled_rows} rows) matched value for value; ` +
          `no unique-key conflicts in --from (${r.unique_keys_checked} keys checked)`,
      );
    } else if (r.sample !== undefined) {
      lines.push(
        `FAILED: compared row counts in ${tables} table(s) and a ${pct} % sample (${r.sampled_rows} rows) ` +
          `value for value: ${r.errors.length} difference(s)`,
      );
    }
  } else if (r.command === 'drift') {
    lines.push(...renderDrift(r));
  } else if (r.command === 'inventory') {
    lines.push(...renderInventory(r));
  } else if (r.command === 'copy' && r.ok) {
    const tables = (r.tables as { table: string; copied: number; resumed_from: number; ms: number }[]) ?? [];
    for (const t of tables)
      lines.push(
        `  ${t.table}: ${nRows(t.copied)} copied${t.resumed_from ? ` (after ${t.resumed_from} copied before)` : ''}`,
      );
    for (const t of (r.only_in_source as string[]) ?? []) lines.push(`  ${t}: not in the target, not copied`);
    for (const t of (r.only_in_target as string[]) ?? []) lines.push(`  ${t}: not in the source, not copied`);
    lines.push(`ok: ${nRows(tables.reduce((n, t) => n + t.copied, 0))} copied into ${tables.length} table(s)`);
  } else if (r.ok) {
    lines.push('ok');
  }
  lines.push(...adoptionLines(r));
  if (r.errors.length) lines.push(renderErrors(r));
  return lines.join('\n');
}

/** The report's errors alone: what a command that threw (and so has no state to show) prints. */
export function renderErrors(r: Report): string {
  return r.errors
    .map((e) => {
      const where = e.file ? `${e.file}${e.line ? `:${e.line}${e.column ? `:${e.column}` : ''}` : ''}: ` : '';
      const detail = e.detail ? `\n  DETAIL: ${e.detail}` : ''; // psql's layout
      return `error: ${where}${e.sqlstate ? `SQLSTATE ${e.sqlstate}: ` : ''}${e.message}${detail}`;
    })
    .join('\n');
}

interface LastFailure {
  version: string;
  name: string;
  file?: string;
  line?: number;
  at: string;
  sqlstate?: string;
  message: string;
}

function clip(line: string): string {
  return line.length <= MAX_LINE ? line : `${line.slice(0, MAX_LINE - 20)}… (--json lists all)`;
}

/** The lockdown's result, then every correction it made, one per line. */
function lockdownLines(l: Report['lockdown'] & {}): string[] {
  const failed = l.checks.filter((c) => !c.ok);
  return [
    `lockdown: ${l.ok ? 'ok' : 'FAILED'} (${l.checks.length} checks${failed.length ? `, ${failed.length} failed` : ''})` +
      `${l.corrected.length ? `, corrected ${l.corrected.length}:` : ''}`,
    ...l.corrected.map((c) => clip(`  corrected: ${c}`)),
    ...failed.map((c) => clip(`  failed: ${c.name}${c.detail ? `: ${c.detail}` : ''}`)),
  ];
}

/** The folder's layout and what was adopted from another tool's ledger or a baseline. */
function adoptionLines(r: Report): string[] {
  const out: string[] = [];
  if (r.layout && r.layout !== 'orion') out.push(`layout: ${r.layout}`);
  const a = r.adopted as
    | { from: string; recorded: boolean; migrations: { version: string; name: string }[] }
    | undefined;
  if (a) {
    const what = a.from === 'baseline' ? 'the hand-built schema (baseline)' : `${a.from}'s ledger`;
    out.push(
      `${a.recorded ? 'adopted' : 'would adopt'} ${a.migrations.length} migration(s) from ${what}, without running them:`,
    );
    for (const m of a.migrations) out.push(`  adopted  ${m.version} ${m.name}`);
  }
  const owned = (r.ownership_taken as string[] | undefined) ?? [];
  if (owned.length) out.push(`ownership moved to the owner role: ${owned.length} object(s)`);
  return out;
}

/** `1 row`, `2 rows`. */
const nRows = (n: number) => `${n} row${n === 1 ? '' : 's'}`;
