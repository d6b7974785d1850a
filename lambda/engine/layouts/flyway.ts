/**
 * Flyway: `V<version>__<description>.sql`, with dotted versions (`V1.2.3__x.sql`; `_` in a version
 * reads as `.`, as Flyway's file-name parser takes it) and `U<version>__<description>.sql` undo
 * files as downs. Repeatable `R__` files are refused: they re-run whenever their checksum changes,
 * which is not a versioned migration. `<file>.sql.conf` with `executeInTransaction=false` runs that
 * file outside a transaction.
 *
 * Versions compare as Flyway's MigrationVersion does: part by part as numbers, a missing part is 0,
 * and trailing zeros do not count (`1.0` is `1`). The ordering key stored in the ledger's bigint is
 * the version itself when every version in the folder has one part; otherwise four parts of up to
 * four digits each below the first (`1.2.3` → 1 0002 0003 0000). The ledger also keeps the label
 * (`1.2.3`), by which applied rows are matched, so adding a first dotted version later is safe.
 */
import { readFileSync, statSync } from 'node:fs';
import { BadInputError } from '../errors';
import { type MigrationScript, readScript, sha256 } from '../scripts';
import type { FolderEntry, Layout, MigrationDraft } from './types';
import { NAME } from './types';

const FILE = /^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$/;
const REPEATABLE = /^R__.+\.sql$/;
const LOOKS_FLYWAY = /^[VUR]\d*(?:[._]\d+)*__.*\.sql$/;

/** Flyway's version parts, trailing zeros dropped. */
export function flywayParts(version: string): bigint[] {
  const parts = version.split(/[._]/).map((p) => BigInt(p));
  while (parts.length > 1 && parts.at(-1) === 0n) parts.pop();
  return parts;
}

/** The canonical text of a Flyway version (`01.2.0` → `1.2`): how labels are compared. */
export function flywayLabel(version: string): string {
  return flywayParts(version).join('.');
}

const PART_LIMIT = 10_000n;
const FIRST_LIMIT = 9_223_371n;

function dottedKey(parts: bigint[], file: string): bigint {
  if (parts.length > 4 || parts.slice(1).some((p) => p >= PART_LIMIT) || parts[0] > FIRST_LIMIT)
    throw new BadInputError(
      'a dotted Flyway version must have at most 4 parts, each after the first below 10000 and the first below 9223372 (orion-db orders dotted versions by a 64-bit key)',
      { file },
    );
  return parts.reduce((key, p, i) => key + p * PART_LIMIT ** BigInt(3 - i), 0n);
}

export const flyway: Layout = {
  name: 'flyway',
  claims: (e) => !e.isDirectory && LOOKS_FLYWAY.test(e.name),
  read(entries: readonly FolderEntry[], errors: Error[]): MigrationDraft[] {
    const versioned: { e: FolderEntry; kind: string; label: string; parts: bigint[]; name: string }[] = [];
    for (const e of entries) {
      const fail = (message: string) => errors.push(new BadInputError(message, { file: e.name }));
      if (REPEATABLE.test(e.name)) {
        fail(
          'Flyway repeatable migrations (R__) are not supported: orion-db applies each version once; make it a versioned V<version>__ file (or keep running it with Flyway)',
        );
        continue;
      }
      const m = FILE.exec(e.name);
      if (!m || !NAME.test(m[3])) {
        fail(
          'bad Flyway file name: expected V<version>__<description>.sql or U<version>__<description>.sql, version of digits and dots, description of letters, digits, "_", "." and "-"',
        );
        continue;
      }
      versioned.push({ e, kind: m[1], label: flywayLabel(m[2]), parts: flywayParts(m[2]), name: m[3] });
    }
    const dotted = versioned.some((v) => v.parts.length > 1);
    const byLabel = new Map<string, { up?: (typeof versioned)[number]; down?: (typeof versioned)[number] }>();
    for (const v of versioned) {
      const slot = byLabel.get(v.label) ?? {};
      const which = v.kind === 'V' ? 'up' : 'down';
      if (slot[which]) {
        errors.push(
          new BadInputError(`duplicate version ${v.label}: also used by ${slot[which]!.e.name}`, { file: v.e.name }),
        );
        continue;
      }
      slot[which] = v;
      byLabel.set(v.label, slot);
    }
    const drafts: MigrationDraft[] = [];
    for (const [label, slot] of byLabel) {
      try {
        if (!slot.up) throw new BadInputError('undo file without its versioned (V) file', { file: slot.down!.e.name });
        const { e, parts, name } = slot.up;
        const bytes = readFileSync(e.path);
        drafts.push({
          version: dotted ? dottedKey(parts, e.name) : parts[0],
          label,
          name,
          source: e.name.replace(/\.sql$/, ''),
          checksum: sha256(bytes),
          up: script(e, bytes),
          down: slot.down && script(slot.down.e, readFileSync(slot.down.e.path)),
          files: [e.name],
        });
      } catch (err) {
        if (!(err instanceof BadInputError)) throw err;
        errors.push(err);
      }
    }
    return drafts;
  },
};

function script(e: FolderEntry, bytes: Buffer): MigrationScript {
  return readScript(e.name, bytes, executeInTransaction(e) ? {} : { noTransaction: true });
}

/** `executeInTransaction=false` in the script's `.conf` file (Flyway's script configuration). */
function executeInTransaction(e: FolderEntry): boolean {
  const conf = `${e.path}.conf`;
  if (!statSync(conf, { throwIfNoEntry: false })?.isFile()) return true;
  const m = /^\s*executeInTransaction\s*=\s*(\S+)\s*$/m.exec(readFileSync(conf, 'utf8'));
  if (!m) return true;
  if (m[1] !== 'true' && m[1] !== 'false')
    throw new BadInputError(`executeInTransaction must be true or false, got ${m[1]}`, { file: `${e.name}.conf` });
  return m[1] === 'true';
}
