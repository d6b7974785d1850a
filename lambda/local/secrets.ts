/**
 * The secrets port for `orion-db up`: passwords generated once and kept in a 0600 file under
 * `.orion/`, never printed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BadInputError } from '../engine/errors';
import type { Credentials, SecretsPort } from '../lifecycle/ports';

interface Stored {
  masterPassword: string;
  appPassword: string;
}

export class FileSecrets implements SecretsPort {
  private readonly stored: Stored;
  constructor(
    readonly path: string,
    private readonly appRole: string,
  ) {
    if (existsSync(path)) {
      this.stored = readStored(path);
    } else {
      this.stored = { masterPassword: generatePassword(), appPassword: generatePassword() };
      writeFileSync(path, JSON.stringify(this.stored, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    }
    chmodSync(path, 0o600);
  }

  async master(): Promise<Credentials> {
    return { username: 'postgres', password: this.stored.masterPassword };
  }

  async app(): Promise<Credentials> {
    return { username: this.appRole, password: this.stored.appPassword };
  }
}

/** The file as written by the constructor; anything else is named, with what to do, not a stack trace. */
function readStored(path: string): Stored {
  let stored: Partial<Stored> | undefined;
  try {
    stored = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err: any) {
    throw new BadInputError(
      `${path} is not valid JSON (${err.message}): restore it, or delete .orion/ to start afresh`,
    );
  }
  for (const key of ['masterPassword', 'appPassword'] as const) {
    if (typeof stored?.[key] !== 'string' || !stored[key])
      throw new BadInputError(`${path} has no "${key}": restore it, or delete .orion/ to start afresh`);
  }
  return stored as Stored;
}

/** 32 URL-safe characters: no quoting issues in URLs, shells or SQL. */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}
