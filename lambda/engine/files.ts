/**
 * Reads a migrations folder into validated `Migration`s, in whichever layout it is written
 * (layouts/). Every problem is found before anything runs; all of them are reported together.
 */
import { BadInputError, BadInputErrors } from './errors';
import { type LayoutName, type MigrationDraft, readFolder } from './layouts';
import { type MigrationScript, prepareScripts } from './scripts';

export { MigrationScript, prepareScripts, readScript, scriptFromText, sha256 } from './scripts';

export interface Migration {
  /** The ordering key (the version, for every layout but Flyway's dotted one: see layouts/flyway.ts). */
  readonly version: bigint;
  /** The version as its tool writes it (`000001`, `1.2.3`, `20190226002946`). */
  readonly label: string;
  readonly name: string;
  /** The tool's own name for it (file stem or folder name): how name-keyed ledgers record it. */
  readonly source: string;
  /** The layout of the folder it was read from. */
  readonly layout: LayoutName;
  /** sha256 of the up file's bytes, hex. */
  readonly checksum: string;
  readonly up: MigrationScript;
  readonly down?: MigrationScript;
}

export { parseFileName } from './layouts/flat';
export { MIGRATION_NAME, MIGRATION_NAME_RULE } from './layouts/types';

export interface LoadOptions {
  /** Parse every script now (default), or later with `prepareScripts` for those that will run. */
  readonly parse?: boolean;
  /** The folder's layout; detected when not given. */
  readonly format?: LayoutName;
}

/**
 * Loads and validates every migration in `dir`, in version order, in whichever layout the folder is
 * written (layouts/). With `parse: false` the SQL is parsed later, by `prepareScripts`, for the
 * migrations that will run.
 */
export async function loadMigrations(dir: string, options: LoadOptions = {}): Promise<Migration[]> {
  return (await readMigrations(dir, options)).migrations;
}

/** `loadMigrations`, and the layout the folder is written in. */
export async function readMigrations(
  dir: string,
  options: LoadOptions = {},
): Promise<{ layout: LayoutName; migrations: Migration[] }> {
  const { layout, drafts, errors } = readFolder(dir, options.format);
  const byVersion = new Map<bigint, MigrationDraft>();
  const migrations: Migration[] = [];
  for (const d of drafts) {
    const other = byVersion.get(d.version);
    if (other) {
      errors.push(
        new BadInputError(`duplicate version ${d.label}: also used by ${other.files.join(', ')}`, { file: d.files[0] }),
      );
      continue;
    }
    byVersion.set(d.version, d);
    migrations.push({ ...d, layout });
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new BadInputErrors(errors as BadInputError[]);
  migrations.sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  if (options.parse ?? true) await prepareScripts(migrations.flatMap((m) => [m.up, m.down]));
  return { layout, migrations };
}
