/**
 * The peers, installed by the benchmark itself at pinned versions (kept out of the project's
 * dependencies), and the migration folder each of them reads.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PEER_VERSIONS = {
  dbmate: '2.36.0',
  'node-pg-migrate': '9.0.0',
  'postgres-migrations': '5.3.0',
  pg: '8.23.1',
} as const;

export function installPeers(dir: string): void {
  const marker = join(dir, `installed-${Object.values(PEER_VERSIONS).join('-')}`);
  if (existsSync(marker)) return;
  mkdirSync(dir, { recursive: true });
  const specs = Object.entries(PEER_VERSIONS).map(([name, version]) => `${name}@${version}`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', dir, ...specs], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  writeFileSync(marker, '');
}

/** One migration's SQL: a table and a row, as in the measurement. */
export function migrationSql(n: number): string {
  return `CREATE TABLE t_${n} (id bigint PRIMARY KEY, note text);\nINSERT INTO t_${n} VALUES (1, 'row ${n}');\n`;
}

export type Format = 'orion' | 'dbmate' | 'node-pg-migrate' | 'postgres-migrations' | 'floor';

/** Writes `count` migrations in a tool's layout; returns the folder (or, for the floor, the file). */
export function writeMigrations(root: string, format: Format, count: number): string {
  const dir = join(root, `${format}-${count}`);
  if (existsSync(dir)) return format === 'floor' ? join(dir, 'all.sql') : dir;
  mkdirSync(dir, { recursive: true });
  const pad = (n: number) => String(n).padStart(6, '0');
  if (format === 'floor') {
    let all = '';
    for (let n = 1; n <= count; n++) all += migrationSql(n);
    writeFileSync(join(dir, 'all.sql'), all);
    return join(dir, 'all.sql');
  }
  for (let n = 1; n <= count; n++) {
    const sql = migrationSql(n);
    const down = `DROP TABLE t_${n};\n`;
    if (format === 'orion') {
      writeFileSync(join(dir, `${pad(n)}_t${n}.up.sql`), sql);
      writeFileSync(join(dir, `${pad(n)}_t${n}.down.sql`), down);
    } else if (format === 'dbmate') {
      writeFileSync(join(dir, `${pad(n)}_t${n}.sql`), `-- migrate:up\n${sql}\n-- migrate:down\n${down}`);
    } else if (format === 'node-pg-migrate') {
      writeFileSync(join(dir, `${pad(n)}_t${n}.sql`), `-- Up Migration\n${sql}\n-- Down Migration\n${down}`);
    } else {
      writeFileSync(join(dir, `${n}_t${n}.sql`), sql); // postgres-migrations: ids 1, 2, 3…
    }
  }
  return dir;
}
