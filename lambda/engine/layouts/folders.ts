/**
 * Layouts with one folder per migration (Prisma, Diesel): reading a file inside, with its errors
 * naming the file by its path relative to the migrations folder.
 */
import { readFileSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../errors';
import { type MigrationScript, readScript } from '../scripts';

export function fileIn(dir: string, name: string): Stats | undefined {
  return statSync(join(dir, name), { throwIfNoEntry: false });
}

/** The script `folder/name`, or undefined when the file is absent. */
export function scriptIn(
  dirPath: string,
  folder: string,
  name: string,
  overrides: { noTransaction?: boolean } = {},
): { script: MigrationScript; bytes: Buffer } | undefined {
  const stat = fileIn(dirPath, name);
  if (!stat) return undefined;
  const file = `${folder}/${name}`;
  if (!stat.isFile()) throw new BadInputError('not a regular file', { file });
  const bytes = readFileSync(join(dirPath, name));
  return { script: readScript(file, bytes, overrides), bytes };
}
