/**
 * Another migration tool's ledger, read to continue where that tool left off: what it says was
 * applied, matched to this folder's migrations, or why it cannot be taken over as it is.
 */
import type { ClientBase } from 'pg';
import type { Migration } from '../files';

export const FOREIGN_TOOLS = [
  'golang-migrate',
  'dbmate',
  'goose',
  'flyway',
  'prisma',
  'diesel',
  'sqlx',
  'node-pg-migrate',
] as const;
export type ForeignTool = (typeof FOREIGN_TOOLS)[number];

/** One migration a foreign ledger says was applied. */
export interface AdoptedMigration {
  readonly migration: Migration;
  /** When that tool applied it, where its ledger says. */
  readonly appliedAt: Date | null;
}

export interface ForeignState {
  readonly applied: readonly AdoptedMigration[];
  /** Why the ledger cannot be taken over as it is, each with how to resolve it in that tool. */
  readonly problems: readonly string[];
}

export interface ForeignLedger {
  readonly tool: ForeignTool;
  /** The table, as the tool creates it in the current schema. */
  readonly table: string;
  /** Columns that tell this tool's table from another tool's of the same name. */
  readonly columns: readonly string[];
  /** What the ledger says was applied; reads only. */
  read(client: ClientBase, migrations: readonly Migration[]): Promise<ForeignState>;
}

/** The migration whose ordering key is this all-digits version (golang-migrate, dbmate, goose, Diesel, sqlx). */
export function byNumber(migrations: readonly Migration[], version: string): Migration | undefined {
  if (!/^\d+$/.test(version)) return undefined;
  const key = BigInt(version);
  // The label first ("000001"); else the number (golang-migrate records 1 for 000001_x.up.sql).
  return (
    migrations.find((m) => m.label === version) ?? migrations.find((m) => m.version === key && !m.label.includes('.'))
  );
}

/** The migration the tool knows by this name (file stem or folder name: Prisma, node-pg-migrate). */
export function bySource(migrations: readonly Migration[], name: string): Migration | undefined {
  return migrations.find((m) => m.source === name || `${m.label}_${m.name}` === name);
}

export function missingFile(tool: ForeignTool, version: string, fix: string): string {
  return `${tool}'s ledger lists ${version} as applied, but no migration in the folder has that version: restore its file, or ${fix}`;
}
