/**
 * SCRAM-SHA-256 verifiers (RFC 5802 / 7677), computed here so `ALTER ROLE … PASSWORD` never sends
 * the password itself to the server, where statement logging could record it. Same format as
 * psql's \password and PostgreSQL's own pg_be_scram_build_secret; no maintained npm package exposes it.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

const ITERATIONS = 4096;

export function scramVerifier(password: string, salt: Buffer = randomBytes(16)): string {
  // PostgreSQL applies SASLprep; for the ASCII passwords Secrets Manager generates it is the identity.
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, ITERATIONS, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${ITERATIONS}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
