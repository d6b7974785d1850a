/**
 * Per-test databases on the run's server, and temporary migration folders built from objects.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
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
  const rows = await query<{ t: string }>(
    url,
    `SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  return rows.map((r) => r.t);
}

/** Writes `files` (name → content; Buffer for raw bytes) to a new folder. */
export function migrationsDir(files: Record<string, string | Buffer>): string {
  const dir = mkdtempSync(join(tmpdir(), 'orion-migrations-'));
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

/** The product's migrations folder: only tests of properties that hold as it grows use it. */
export const SHIPPED_MIGRATIONS = join(__dirname, '..', '..', 'migrations');
/** A real Prisma history (../shared/corpora, absent outside this workplace: tests using it skip). */
export const HOPPSCOTCH = join(__dirname, '..', '..', '..', 'shared', 'corpora', 'hoppscotch-prisma', 'migrations');
/** A frozen copy of the SOP's two migrations, for tests of deploy semantics (test/fixtures/README.md). */
export const SOP_MIGRATIONS = join(__dirname, '..', 'fixtures', 'orion-sop');

/**
 * An INSERT of activities the way the SOP's application writes them: every column it sets, its own
 * ids and timestamps, no reliance on defaults the SOP's schema does not have.
 */
export function insertActivities(...rows: (string | { title: string; inputLanguage?: string })[]): string {
  const values = rows.map((row) => {
    const { title, inputLanguage = 'en' } = typeof row === 'string' ? { title: row } : row;
    const lit = (v: string) => `'${v.replace(/'/g, "''")}'`;
    return `(gen_random_uuid(), ${lit(title)}, 'Ada Lovelace', now(), ${lit(inputLanguage)}, '["fr","de"]', 'scheduled', now(), now())`;
  });
  return `INSERT INTO activities (id, title, speaker, start_time, input_language, target_languages, status, created_at, updated_at) VALUES ${values.join(', ')}`;
}
