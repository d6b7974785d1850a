import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFileName } from '../../lambda/engine/files';

/** sha256 over the names and bytes of a migrations folder's `.sql` files, in name order. */
export function hashMigrations(dir: string): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()) {
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(dir, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

/** The newest migration version in the folder, as text (`none` when it has none): a stack rollback's target. */
export function latestVersion(dir: string): string {
  let latest: bigint | undefined;
  for (const file of readdirSync(dir)) {
    const v = parseFileName(file)?.version;
    if (v !== undefined && (latest === undefined || v > latest)) latest = v;
  }
  return latest === undefined ? 'none' : latest.toString();
}
