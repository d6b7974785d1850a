/**
 * `orion-db drift`: is the live database what its applied migrations make? The reference is their
 * replay into a scratch database (on the live server, or `--dev-url`'s), locked down as a deploy
 * locks the live one down when the live database was bootstrapped for the owner role.
 * Exit 0 no drift, 1 drift, 2 bad input (an edited migration, a bad orion-drift.json), 3 the lock.
 */
import { resolve } from 'node:path';
import { connect, withDatabase } from '../../lambda/engine/db';
import { checkDrift, type Drift, inferRoles, loadExceptions } from '../../lambda/engine/drift';
import { BadInputError } from '../../lambda/engine/errors';
import { loadMigrations } from '../../lambda/engine/files';
import { validateIdentifier } from '../../lambda/engine/identifiers';
import { emptyReport, type Report, versionString } from '../../lambda/engine/report';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import type { CommandContext } from '../context';

export async function drift(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const dir = resolve(options.cwd, options.migrationsDir);
  const migrations = await loadMigrations(dir, { parse: false });
  const exceptions = await loadExceptions(dir);
  const url = options.databaseUrl;
  if (!url) throw new BadInputError('no database given: pass --database-url URL or set DATABASE_URL');
  const owner = options.role !== undefined ? validateIdentifier(options.role, '--role') : DEFAULT_ROLES.owner;
  const referenceUrl = options.devUrl ?? url;
  const client = await connect(url, { applicationName: 'orion-db drift' });
  try {
    const roles = await inferRoles(client, owner);
    ctx.progress(
      roles
        ? `replaying the applied migrations as a stand-in for ${owner}, then the lockdown (${roles.group}, ${roles.app})`
        : `replaying the applied migrations as the connecting user (the database was not bootstrapped for ${owner}: no lockdown)`,
    );
    const result = await checkDrift({
      client,
      connectReference: (database) =>
        connect(database ? withDatabase(referenceUrl, database) : referenceUrl, { applicationName: 'orion-db drift' }),
      migrations,
      roles,
      exceptions,
      lockWaitMs: options.lockWaitMs,
      log: ctx.progress,
    });
    const report = emptyReport('drift');
    report.ok = result.drift.length === 0;
    report.from_version = report.to_version = versionString(result.version);
    report.drift = result.drift;
    report.replayed = result.replayed;
    report.locked_down = result.lockedDown;
    report.exceptions = exceptions.length;
    if (result.incomplete.length)
      report.notes = [
        `not replayed, partly applied: ${result.incomplete.join(', ')} (finish them with "orion-db migrate" first)`,
      ];
    report.ms = result.ms;
    return report;
  } finally {
    await client.end().catch(() => {});
  }
}

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
