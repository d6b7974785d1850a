/**
 * What every layout reader produces: one draft per migration, before the folder-wide checks
 * (duplicates, ordering) that `files.ts` makes once for all layouts.
 */
import type { MigrationScript } from '../scripts';

export const LAYOUTS = ['orion', 'dbmate', 'goose', 'prisma', 'diesel', 'flyway'] as const;
/** `orion` is the flat `V_name.up.sql` / `.down.sql` layout (also golang-migrate's and sqlx's). */
export type LayoutName = (typeof LAYOUTS)[number];

export interface MigrationDraft {
  /** The ordering key: versions are compared and stored in the ledger by it. */
  readonly version: bigint;
  /** The version as the tool writes it (`000001`, `1.2.3`, `20190226002946`). */
  readonly label: string;
  readonly name: string;
  /** The tool's own name for the migration (file stem or folder name), as name-keyed ledgers record it. */
  readonly source: string;
  readonly checksum: string;
  readonly up: MigrationScript;
  readonly down?: MigrationScript;
  /** Files of this migration, for duplicate-version errors. */
  readonly files: readonly string[];
}

/** A folder entry: a file or a directory, by its name relative to the migrations folder. */
export interface FolderEntry {
  readonly name: string;
  readonly isDirectory: boolean;
  /** Absolute path. */
  readonly path: string;
}

export interface Layout {
  readonly name: LayoutName;
  /** Whether this entry is one of this layout's migration files or folders (for detection). */
  claims(entry: FolderEntry): boolean;
  /** Reads the entries this layout claims; problems are pushed onto `errors`. */
  read(entries: readonly FolderEntry[], errors: Error[]): MigrationDraft[];
}

/** The one naming rule for a migration's name (DESIGN.md), used by every layout and `orion-db new`. */
export const MIGRATION_NAME = /^[A-Za-z0-9_.-]+$/;
export const MIGRATION_NAME_RULE = 'letters, digits, "_", "." and "-"';
export const NAME = MIGRATION_NAME;
