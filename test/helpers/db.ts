/**
 * Per-test databases on the run's server, and temporary migration folders built from objects.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { inject } from 'vitest';
import { withDatabase } from '../../lambda/engine/db';

export function adminUrl(): string {
  return inject('adminUrl');
}

export function uniqueName(prefix: string): string {
  return `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
}

export async function adminQuery<T = any>(sql: string, params: unknown[] = [], database?: string): Promise<T[]> {
  const client = new Client({ connectionString: database ? withDatabase(adminUrl(), database) : adminUrl() });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** A new empty database; returns its superuser URL. */
export async function createDatabase(prefix = 'orion_t'): Promise<{ name: string; url: string }> {
  const name = uniqueName(prefix);
  await adminQuery(`CREATE DATABASE "${name}"`);
  return { name, url: withDatabase(adminUrl(), name) };
}

/** A connected client on `url`; the caller ends it. */
export async function client(url: string): Promise<Client> {
  const c = new Client({ connectionString: url });
  await c.connect();
  return c;
}

export async function query<T = any>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const c = await client(url);
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

export async function tableNames(url: string): Promise<string[]> {
  const rows = await query<{ t: string }>(url, `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
  return rows.map((r) => r.t);
}

/** Writes `files` (name → content; Buffer for raw bytes) to a new folder. */
export function migrationsDir(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'orion-migrations-'));
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

export const SHIPPED_MIGRATIONS = join(__dirname, '..', '..', 'migrations');
