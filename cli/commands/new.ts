/**
 * `orion-db new NAME`: the next-numbered up/down pair.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BadInputError } from '../../lambda/engine/errors';
import { MIGRATION_NAME, MIGRATION_NAME_RULE, parseFileName } from '../../lambda/engine/files';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from '../context';

export function nextVersion(existing: readonly string[], now: Date): string {
  const migrations = existing.filter((f) => parseFileName(f) !== undefined);
  const versions = migrations.map((f) => parseFileName(f)!);
  // The width as written (leading zeros included), which the number itself has lost.
  const widest = migrations.reduce((w, f) => Math.max(w, f.indexOf('_')), 0);
  const max = versions.reduce((m, p) => (p.version > m ? p.version : m), 0n);
  if (widest === 14) {
    // A folder of UTC timestamps (golang-migrate -format 20060102150405) keeps using them.
    const stamp = BigInt(now.toISOString().replace(/\D/g, '').slice(0, 14));
    return (stamp > max ? stamp : max + 1n).toString();
  }
  return (max + 1n).toString().padStart(Math.max(6, widest), '0');
}

export function newMigration(ctx: CommandContext): Report {
  const name = ctx.options.positionals[0];
  // The loader's own rule, so whatever new creates is a name the loader accepts.
  if (!MIGRATION_NAME.test(name))
    throw new BadInputError(`migration name "${name}" may use only ${MIGRATION_NAME_RULE}`);
  const dir = resolve(ctx.options.cwd, ctx.options.migrationsDir);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
  const version = nextVersion(readdirSync(dir), new Date());
  const up = `${version}_${name}.up.sql`;
  const down = `${version}_${name}.down.sql`;
  writeFileSync(
    join(dir, up),
    `-- ${name}: write the change here. Header directives (optional):\n--   -- orion:lock-timeout 5s\n--   -- orion:no-transaction\n`,
    { flag: 'wx' },
  );
  writeFileSync(join(dir, down), `-- revert ${name}: undo exactly what ${up} does.\n`, { flag: 'wx' });
  ctx.progress(
    `created ${join(ctx.options.migrationsDir, up)} and ${down} (orion-db refuses them until they contain SQL)`,
  );
  const report = emptyReport('new');
  report.files = [up, down];
  report.version = version;
  return report;
}
