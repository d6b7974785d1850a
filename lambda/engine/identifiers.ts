/**
 * Identifiers that come from configuration (database and role names) are validated here, then
 * always quoted. A name like `x"; DROP ...` is a clear error, never SQL.
 */
import { BadInputError } from './errors';

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

/** Lower-case PostgreSQL identifier of at most 63 bytes; `setting` names the config key in errors. */
export function validateIdentifier(value: unknown, setting: string): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    throw new BadInputError(
      `${setting} must be a lower-case PostgreSQL identifier (letters, digits, "_", not starting with a digit), got ${JSON.stringify(value)}`,
    );
  }
  if (Buffer.byteLength(value) > 63)
    throw new BadInputError(`${setting} is longer than PostgreSQL's 63-byte limit: "${value}"`);
  if (value.startsWith('pg_') || value === 'public' || value === 'postgres' || value.startsWith('rds_')) {
    throw new BadInputError(`${setting} "${value}" is reserved by PostgreSQL or RDS`);
  }
  return value;
}
