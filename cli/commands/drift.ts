/**
 * `orion-db drift`: is the live database what its applied migrations make? The reference is their
 * replay into a scratch database (on the live server, or `--dev-url`'s), locked down as a deploy
 * locks the live one down when the live database was bootstrapped for the owner role.
 * Exit 0 no drift, 1 drift, 2 bad input (an edited migration, a bad orion-drift.json), 3 the lock.
 */
import { resolve } from 'node:path';
import { connect, withDatabase } from '../../lambda/engine/db';
import { checkDrift, inferRoles, loadExceptions } from '../../lambda/engine/drift';
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
