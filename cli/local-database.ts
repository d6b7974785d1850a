/**
 * Which database status/plan/migrate/down use when no URL is given: the local server `orion-db up`
 * (npm start) started under `.orion/`, as its admin user — the role that may read the ledger and
 * migrate. The password is read from `.orion/secrets.json` and never printed.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { BadInputError } from '../lambda/engine/errors';
import { DEFAULT_ROLES } from '../lambda/lifecycle/names';
import { FileSecrets } from '../lambda/local/secrets';

export const STATE_DIR = '.orion';

export interface LocalDatabase {
  /** With the password: for connecting only. */
  readonly url: string;
  /** Without the password: for people. */
  readonly shown: string;
}

/** The local admin URL when `.orion/` holds a server `orion-db up` started, else undefined. */
export async function localDatabase(cwd: string): Promise<LocalDatabase | undefined> {
  const stateDir = resolve(cwd, STATE_DIR);
  const serverFile = join(stateDir, 'server.json');
  const secretsFile = join(stateDir, 'secrets.json');
  if (!existsSync(serverFile) || !existsSync(secretsFile)) return undefined;
  let port: unknown;
  try {
    port = JSON.parse(readFileSync(serverFile, 'utf8')).port;
  } catch (err: any) {
    throw new BadInputError(`${serverFile} is not valid JSON (${err.message}): delete it and run "npm start" again`);
  }
  if (!Number.isInteger(port))
    throw new BadInputError(`${serverFile} names no port: delete it and run "npm start" again`);
  const master = await new FileSecrets(secretsFile, DEFAULT_ROLES.app).master();
  const shown = `postgres://${master.username}@127.0.0.1:${port}/${DEFAULT_ROLES.database}`;
  const url = new URL(shown);
  url.password = encodeURIComponent(master.password);
  return { url: url.toString(), shown };
}
