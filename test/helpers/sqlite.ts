/**
 * SQLite fixtures built by the `sqlite3` command-line shell (SQLite's own program, not the reader
 * under test), from SQL text.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new SQLite file holding what `sql` creates; returns its absolute path. */
export function sqliteFile(sql: string, name = 'source.db'): string {
  const dir = mkdtempSync(join(tmpdir(), 'orion-sqlite-'));
  chmodSync(dir, 0o755);
  const path = join(dir, name);
  execFileSync('sqlite3', [path], { input: sql });
  return path;
}

/** Runs `sql` on an existing file (e.g. to change a row the test then expects verify to find). */
export function sqliteExec(path: string, sql: string): string {
  return execFileSync('sqlite3', [path], { input: sql }).toString();
}
