/**
 * The session's temporary tables that the unique pre-check and verify group and compare rows in. They
 * need the TEMPORARY privilege on the database, which an application role is often not given (the
 * lockdown revokes it from PUBLIC); without it the server's "permission denied for database" says
 * nothing of why or what to use instead.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../lambda/engine/db';
import { BadInputError } from '../lambda/engine/errors';

/**
 * Runs `CREATE TEMPORARY TABLE …` (inside the caller's transaction); a refusal for want of TEMPORARY
 * says which privilege and which URL. Any other 42501 (e.g. no USAGE on a column's type) is the
 * server's own error: which one it was is asked of the server, not read from its (localized) message.
 */
export async function createTempTable(client: ClientBase, sql: string, purpose: string): Promise<void> {
  await client.query('SAVEPOINT orion_temp_table');
  try {
    await client.query(sql);
  } catch (err: any) {
    if (err?.code !== '42501') throw err;
    // The failed statement aborted the transaction; back to before it, to ask.
    await client.query('ROLLBACK TO SAVEPOINT orion_temp_table');
    const { rows } = await client.query(
      `SELECT current_user AS role, current_database() AS db,
              has_database_privilege(current_user, current_database(), 'TEMPORARY') AS allowed`,
    );
    const { role, db, allowed } = rows[0];
    if (allowed) throw err;
    throw new BadInputError(
      `--to: ${purpose} needs a temporary table, and role ${role} lacks the TEMPORARY privilege on database ` +
        `${db} (${err.message}); use the admin/master URL for --to (RDS's master has it), or ` +
        `GRANT TEMPORARY ON DATABASE ${q(db)} TO ${q(role)}`,
    );
  }
}
