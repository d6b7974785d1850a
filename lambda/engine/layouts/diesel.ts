/**
 * Diesel: `YYYY-MM-DD-HHMMSS[-NNNN]_name/up.sql` + `down.sql` (and `00000000000000_diesel_initial_setup`,
 * which `diesel setup` writes). The version is the folder name up to the first `_` without its dashes,
 * as diesel_migrations' `version_from_string` takes it; `metadata.toml` with `run_in_transaction = false`
 * runs the migration outside a transaction.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors';
import { sha256 } from '../scripts';
import { fileIn, scriptIn } from './folders';
import type { FolderEntry, Layout, MigrationDraft } from './types';
import { NAME } from './types';

const FOLDER = /^(\d{4}-\d{2}-\d{2}-\d{6}(?:-\d{4})?|\d+)_(.+)$/;

export const diesel: Layout = {
  name: 'diesel',
  claims: (e) => e.isDirectory && FOLDER.test(e.name) && fileIn(e.path, 'up.sql') !== undefined,
  read(entries: readonly FolderEntry[], errors: Error[]): MigrationDraft[] {
    const drafts: MigrationDraft[] = [];
    for (const e of entries) {
      try {
        const m = FOLDER.exec(e.name)!;
        if (!NAME.test(m[2]))
          throw new BadInputError(
            'bad Diesel migration folder name: the name may use letters, digits, "_", "." and "-"',
            {
              file: `${e.name}/up.sql`,
            },
          );
        const noTransaction = runsOutsideTransaction(e);
        const up = scriptIn(e.path, e.name, 'up.sql', { noTransaction })!;
        const down = scriptIn(e.path, e.name, 'down.sql', { noTransaction });
        const label = m[1].replace(/-/g, '');
        drafts.push({
          // Diesel orders versions as text: padded to one width, the number orders the same way
          // (20240101120000 before 202401021200000001, as "2024-01-01-…" sorts before "2024-01-02-…-0001").
          version: BigInt(label.padEnd(18, '0')),
          label,
          name: m[2],
          source: e.name,
          checksum: sha256(up.bytes),
          up: up.script,
          down: down?.script,
          files: [`${e.name}/up.sql`],
        });
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        errors.push(err);
      }
    }
    return drafts;
  },
};

/** `run_in_transaction = false` in the folder's metadata.toml (Diesel 2). */
function runsOutsideTransaction(e: FolderEntry): boolean {
  if (!fileIn(e.path, 'metadata.toml')) return false;
  const text = readFileSync(join(e.path, 'metadata.toml'), 'utf8');
  const m = /^\s*run_in_transaction\s*=\s*(\S+)\s*$/m.exec(text);
  if (!m) return false;
  if (m[1] !== 'true' && m[1] !== 'false')
    throw new BadInputError(`run_in_transaction must be true or false, got ${m[1]}`, {
      file: `${e.name}/metadata.toml`,
    });
  return m[1] === 'false';
}
