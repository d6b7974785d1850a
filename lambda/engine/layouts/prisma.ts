/**
 * Prisma Migrate: `<timestamp>_<name>/migration.sql` beside `migration_lock.toml`. Prisma has no
 * down scripts and no per-file transaction setting; the folder name is the migration's identity
 * (`_prisma_migrations.migration_name`) and its leading timestamp the version.
 */
import { BadInputError } from '../errors';
import { sha256 } from '../scripts';
import { fileIn, scriptIn } from './folders';
import type { FolderEntry, Layout, MigrationDraft } from './types';
import { NAME } from './types';

const FOLDER = /^(\d+)_(.+)$/;

export const prisma: Layout = {
  name: 'prisma',
  // migration_lock.toml only names the provider: the folders are what is detected.
  claims: (e) => e.isDirectory && fileIn(e.path, 'migration.sql') !== undefined,
  read(entries: readonly FolderEntry[], errors: Error[]): MigrationDraft[] {
    const drafts: MigrationDraft[] = [];
    for (const e of entries) {
      try {
        const m = FOLDER.exec(e.name);
        if (!m || !NAME.test(m[2]))
          throw new BadInputError(
            'bad Prisma migration folder name: expected <timestamp>_<name> (as "prisma migrate dev" creates it), name of letters, digits, "_", "." and "-"',
            { file: `${e.name}/migration.sql` },
          );
        const { script, bytes } = scriptIn(e.path, e.name, 'migration.sql')!;
        drafts.push({
          version: BigInt(m[1]),
          label: m[1],
          name: m[2],
          source: e.name,
          checksum: sha256(bytes), // also what Prisma records in _prisma_migrations.checksum
          up: script,
          files: [`${e.name}/migration.sql`],
        });
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        errors.push(err);
      }
    }
    return drafts;
  },
};
