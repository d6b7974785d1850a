/**
 * Which layout a migrations folder is written in, detected from its entries (or forced with
 * `--format`), and reading it with that layout's reader. A folder whose migrations belong to
 * several layouts is an error naming the files of each.
 */
import { type Dirent, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors';
import { dbmate } from './dbmate';
import { diesel } from './diesel';
import { flat } from './flat';
import { flyway } from './flyway';
import { goose } from './goose';
import { prisma } from './prisma';
import { type FolderEntry, LAYOUTS, type Layout, type LayoutName, type MigrationDraft } from './types';

export { LAYOUTS, type LayoutName, type MigrationDraft } from './types';

const READERS: readonly Layout[] = [flat, flyway, dbmate, goose, prisma, diesel];

export function isLayoutName(name: string): name is LayoutName {
  return (LAYOUTS as readonly string[]).includes(name);
}

/** The folder's entries that may be migrations: `.sql` files and folders. */
function listEntries(dir: string, errors: Error[]): FolderEntry[] {
  let dirents: Dirent[];
  try {
    dirents = readdirSync(dir, { withFileTypes: true });
  } catch (err: any) {
    throw new BadInputError(`cannot read migrations folder ${dir}: ${err.code ?? err.message}`);
  }
  const entries: FolderEntry[] = [];
  for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (d.name.startsWith('.')) continue;
    const path = join(dir, d.name);
    // The directory entry's type comes with the listing; only a symbolic link costs a stat.
    const stat = d.isSymbolicLink() ? statSync(path, { throwIfNoEntry: false }) : d;
    const isDirectory = Boolean(stat?.isDirectory());
    if (d.name.endsWith('.sql') && !stat?.isFile()) {
      errors.push(new BadInputError('not a regular file', { file: d.name })); // a folder, or a dangling link
      continue;
    }
    if (!isDirectory && !d.name.endsWith('.sql')) continue; // README.md, migration_lock.toml, *.conf, …
    entries.push({ name: d.name, isDirectory, path });
  }
  return entries;
}

/** Reads `dir` in its layout (detected unless `format` is given). */
export function readFolder(
  dir: string,
  format?: LayoutName,
): { layout: LayoutName; drafts: MigrationDraft[]; errors: Error[] } {
  const errors: Error[] = [];
  const entries = listEntries(dir, errors);
  const claimed = new Map<Layout, FolderEntry[]>();
  const unclaimed: FolderEntry[] = [];
  for (const e of entries) {
    const layout = format ? READERS.find((r) => r.name === format && r.claims(e)) : READERS.find((r) => r.claims(e));
    if (layout) claimed.set(layout, [...(claimed.get(layout) ?? []), e]);
    else if (!e.isDirectory) unclaimed.push(e); // a folder of no layout (docs, fixtures) is not a migration
  }
  if (claimed.size > 1) {
    const list = [...claimed].map(
      ([l, es]) =>
        `${l.name}: ${es
          .slice(0, 3)
          .map((e) => e.name)
          .join(', ')}${es.length > 3 ? ', …' : ''}`,
    );
    throw new BadInputError(
      `the migrations folder ${dir} mixes layouts (${list.join('; ')}): keep one tool's migrations per folder, or pass --format to choose one`,
    );
  }
  const [reader, claimedEntries] = [...claimed][0] ?? [READERS.find((r) => r.name === (format ?? 'orion'))!, []];
  for (const e of unclaimed) {
    errors.push(
      new BadInputError(
        format && format !== 'orion'
          ? `not a ${format} migration file (--format ${format})`
          : reader.name === 'orion'
            ? 'bad migration file name: expected NNNNNN_name.up.sql or NNNNNN_name.down.sql (or a dbmate, goose, Prisma, Diesel or Flyway migration), name of letters, digits, "_", "." and "-"'
            : `not a ${reader.name} migration file, in a folder of ${reader.name} migrations`,
        { file: e.name },
      ),
    );
  }
  return { layout: reader.name, drafts: reader.read(claimedEntries, errors), errors };
}
