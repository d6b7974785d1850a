/**
 * The flat layout: `V_name.up.sql` with an optional `V_name.down.sql` — orion's own, and
 * golang-migrate's and sqlx's reversible files as they are.
 */
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors';
import { type MigrationScript, readScript, sha256 } from '../scripts';
import { type FolderEntry, type Layout, MIGRATION_NAME, MIGRATION_NAME_RULE, type MigrationDraft } from './types';

// golang-migrate's pattern, narrowed to the characters DESIGN.md allows in a name.
const FILE_NAME = new RegExp(`^(\\d+)_(${MIGRATION_NAME.source.slice(1, -1)})\\.(up|down)\\.sql$`);
/** Claims anything that looks meant as a flat file, so a bad name is reported, not ignored. */
const LOOKS_FLAT = /^\d+_.*\.(up|down)\.sql$/;
const MAX_VERSION = 9223372036854775807n; // the ledger's bigint

/** Parses a migration file name; returns undefined for a name that is not a migration. */
export function parseFileName(file: string): { version: bigint; name: string; direction: 'up' | 'down' } | undefined {
  const m = FILE_NAME.exec(file);
  if (!m) return undefined;
  return { version: BigInt(m[1]), name: m[2], direction: m[3] as 'up' | 'down' };
}

export const flat: Layout = {
  name: 'orion',
  claims: (e) => !e.isDirectory && LOOKS_FLAT.test(e.name),
  read(entries: readonly FolderEntry[], errors: Error[]): MigrationDraft[] {
    const byVersion = new Map<
      bigint,
      { label: string; name: string; up?: MigrationScript; checksum?: string; down?: MigrationScript; files: string[] }
    >();
    for (const entry of entries) {
      const file = entry.name;
      try {
        const parsed = parseFileName(file);
        if (!parsed) {
          throw new BadInputError(
            `bad migration file name: expected NNNNNN_name.up.sql or NNNNNN_name.down.sql, name of ${MIGRATION_NAME_RULE}`,
            { file },
          );
        }
        if (parsed.version === 0n) throw new BadInputError('version 0 is not allowed: versions start at 1', { file });
        if (parsed.version > MAX_VERSION) throw new BadInputError(`version has more than 19 digits`, { file });
        const bytes = readFileSync(entry.path);
        const script = readScript(file, bytes);
        let slot = byVersion.get(parsed.version);
        if (!slot) {
          slot = { label: file.slice(0, file.indexOf('_')), name: parsed.name, files: [] };
          byVersion.set(parsed.version, slot);
        }
        slot.files.push(file);
        const existing = parsed.direction === 'up' ? slot.up : slot.down;
        if (existing || slot.name !== parsed.name) {
          throw new BadInputError(
            `duplicate version ${parsed.version}: also used by ${slot.files.filter((f) => f !== file).join(', ')}`,
            { file },
          );
        }
        if (parsed.direction === 'up') {
          slot.up = script;
          slot.checksum = sha256(bytes); // the bytes themselves are not kept: a seed file can be 50 MB
        } else {
          slot.down = script;
        }
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        errors.push(err);
      }
    }
    const drafts: MigrationDraft[] = [];
    for (const [version, slot] of byVersion) {
      if (!slot.up) {
        if (slot.down) errors.push(new BadInputError('down file without its up file', { file: slot.down.file }));
        continue;
      }
      drafts.push({
        version,
        label: slot.label,
        name: slot.name,
        source: `${slot.label}_${slot.name}`,
        checksum: slot.checksum!,
        up: slot.up,
        down: slot.down,
        files: slot.files,
      });
    }
    return drafts;
  },
};
