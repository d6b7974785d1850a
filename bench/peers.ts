/**
 * The peers, installed by the benchmark itself at pinned versions (kept out of the project's
 * dependencies). The folders each of them reads are written by shapes.ts.
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
