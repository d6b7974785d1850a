/**
 * The session's temporary tables that the unique pre-check and verify group and compare rows in. They
 * need the TEMPORARY privilege on the database, which an application role is often not given (the
 * lockdown revokes it from PUBLIC); without it the server's "permission denied for database" says
 * nothing of why or what to use instead.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../lambda/engine/db';
import { BadInputError } from '../lambda/engine/errors';

/** Runs `CREATE TEMPORARY TABLE …`; a refusal for want of TEMPORARY says which privilege and which URL. */
export async function createTempTable(client: ClientBase, sql: string, purpose: string): Promise<void> {
  try {
    await client.query(sql);
  } catch (err: any) {
    if (err?.code !== '42501') throw err;
    // Not asked of the server: the failed statement has aborted the transaction it ran in.
    const role = (client as { user?: string }).user ?? 'the connecting role';
    const db = (client as { database?: string }).database ?? 'the target database';
    throw new BadInputError(
      `--to: ${purpose} needs a temporary table, and role ${role} lacks the TEMPORARY privilege on database ` +
        `${db} (${err.message}); use the admin/master URL for --to (RDS's master has it), or ` +
        `GRANT TEMPORARY ON DATABASE ${q(db)} TO ${q(role)}`,
    );
  }
}
