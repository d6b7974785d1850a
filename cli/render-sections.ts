/**
 * The text of the drift and inventory sections of a report. Kept apart from the commands that make
 * them: every command renders its report, and importing a command loads its engine.
 */
import type { Drift } from '../lambda/engine/drift';
import type { Inventory, InventoryComparison } from '../lambda/engine/inventory';
import type { Report } from '../lambda/engine/report';

/** Drift grouped by kind, each with what the migrations make, what is there, and the fix. */
export function renderDrift(r: Report): string[] {
  const list = (r.drift as Drift[] | undefined) ?? [];
  const lines: string[] = [];
  const version = r.to_version ?? 'none';
  if (list.length === 0) {
    if (r.errors.length === 0)
      lines.push(`no drift: the database is what its ${r.replayed} applied migration(s) make (version ${version})`);
    return lines;
  }
  lines.push(`DRIFT: ${list.length} difference(s) from the ${r.replayed} applied migration(s) (version ${version})`);
  const indent = (text: string, pad: string) => text.replace(/\n/g, `\n${pad}`);
  for (const kind of [...new Set(list.map((d) => d.kind))]) {
    const group = list.filter((d) => d.kind === kind);
    lines.push(``, `${kind} (${group.length})`);
    for (const d of group) {
      const what = d.expected === null ? 'not made by the migrations' : d.actual === null ? 'missing' : 'differs';
      lines.push(`  ${d.object}: ${what}`);
      if (d.expected !== null) lines.push(`    expected: ${indent(d.expected, '              ')}`);
      if (d.actual !== null) lines.push(`    actual:   ${indent(d.actual, '              ')}`);
      if (d.fix) lines.push(`    fix:      ${indent(d.fix, '              ')}`);
    }
  }
  return lines;
}

export function renderInventory(r: Report): string[] {
  const inv = r.inventory as Inventory | undefined;
  if (!inv) return [];
  const lines = [`inventory of ${inv.database} at version ${inv.version ?? 'none'} (${inv.taken_at})`];
  const width = Math.max(10, ...Object.keys(inv.tables).map((t) => t.length));
  for (const [t, x] of Object.entries(inv.tables))
    lines.push(
      `  ${t.padEnd(width)}  ${x.rows.toLocaleString('en-US').padStart(12)} rows (${x.count})  ${megabytes(x.bytes)}`,
    );
  if (inv.unexpected?.length)
    lines.push(`unexpected tables (not made by the migrations): ${inv.unexpected.join(', ')}`);
  if (inv.missing?.length) lines.push(`missing tables (made by the migrations): ${inv.missing.join(', ')}`);
  if (r.output) lines.push(`written to ${r.output}`);
  const c = r.comparison as (InventoryComparison & { file: string; tolerance_pct: number }) | undefined;
  if (c) {
    lines.push(`compared with ${c.file} (version ${c.version.before ?? 'none'} → ${c.version.after ?? 'none'}):`);
    for (const t of c.vanished) lines.push(`  VANISHED ${t}`);
    for (const d of c.dropped)
      lines.push(
        `  DROPPED  ${d.table}: ${d.before} → ${d.after} rows (−${d.drop_pct} %, tolerance ${c.tolerance_pct} %)`,
      );
    for (const t of c.appeared) lines.push(`  new      ${t}`);
    for (const d of c.changed) lines.push(`  changed  ${d.table}: ${d.before} → ${d.after} rows`);
    lines.push(c.ok ? 'ok: no table vanished, no count dropped beyond the tolerance' : 'FAILED: rows were lost');
  }
  return lines;
}

function megabytes(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} kB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
