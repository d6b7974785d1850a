/**
 * #14 review S5: a server error the lifecycle wraps (bootstrap, snapshot, after-commit, the deploy's
 * top level) becomes a CloudFormation Reason through its message. The server's DETAIL can hold row data
 * (a duplicated token): it stays out of the message, in a field of its own the CLI prints.
 */
import { expect, test } from 'vitest';
import { asServerError, ServerError, toErrorEntries } from '../../lambda/engine/errors';
import { client, createDatabase } from '../helpers/db';

test('a unique violation on a token: DETAIL is in the entry, never in the message', async () => {
  const db = await createDatabase();
  const c = await client(db.url);
  let caught: unknown;
  try {
    await c.query('CREATE TABLE tokens (t text UNIQUE)');
    await c.query(`INSERT INTO tokens VALUES ('tok-s3cr3t'), ('tok-s3cr3t')`);
  } catch (err) {
    caught = err;
  } finally {
    await c.end();
  }
  expect((caught as { detail?: string }).detail).toMatch(/tok-s3cr3t/); // the server did say it
  const error = asServerError('the lockdown', caught);
  expect(error).toBeInstanceOf(ServerError);
  expect((error as ServerError).message).toBe(
    'the lockdown failed: SQLSTATE 23505: duplicate key value violates unique constraint "tokens_t_key"',
  );
  expect((error as ServerError).detail).toBe('Key (t)=(tok-s3cr3t) already exists.');
  expect(toErrorEntries(error)).toEqual([
    {
      sqlstate: '23505',
      message: 'the lockdown failed: duplicate key value violates unique constraint "tokens_t_key"',
      detail: 'Key (t)=(tok-s3cr3t) already exists.',
    },
  ]);
});
