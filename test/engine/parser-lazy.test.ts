/**
 * Its own file: the parser is loaded once per process (per test file here), so whether it was
 * loaded can only be asserted before any other test parses.
 */
import { expect, test } from 'vitest';
import { loadMigrations, prepareScripts } from '../../lambda/engine/files';
import { parserLoaded } from '../../lambda/engine/sql';
import { SOP_MIGRATIONS } from '../helpers/db';

test('nothing to run loads no parser; something to run does', async () => {
  const migrations = await loadMigrations(SOP_MIGRATIONS, { parse: false });
  await prepareScripts([]);
  expect(parserLoaded()).toBe(false);
  await prepareScripts([migrations[0].up]);
  expect(parserLoaded()).toBe(true);
  expect(migrations[0].up.statements.length).toBeGreaterThan(0);
});
