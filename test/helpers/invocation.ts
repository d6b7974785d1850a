/**
 * One isComplete invocation in its own process, so a test can kill it as Lambda does at its timeout
 * (SIGKILL: no finally, no socket closed politely). Configured by ORION_INVOCATION (JSON); AWS is not
 * reached: deletion protection and the stack status are stubbed, the snapshots are template databases.
 * Prints "started" once it runs; exits 0 when the invocation returns.
 */
import { Client } from 'pg';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import { createHandlers, type ProviderEvent } from '../../lambda/schema-migrator/handler';

interface Invocation {
  readonly adminUrl: string;
  readonly serverUrl: string;
  readonly database: string;
  readonly master: { username: string; password: string };
  readonly app: { username: string; password: string };
  readonly migrationsDir: string;
  readonly event: ProviderEvent;
}

async function main(): Promise<void> {
  const config: Invocation = JSON.parse(process.env.ORION_INVOCATION ?? '{}');
  const admin = new Client({ connectionString: config.adminUrl });
  await admin.connect();
  const quiet = () => {};
  const handlers = createHandlers({
    lastPollAfterMs: 45 * 60_000, // never reached: the invocation is killed long before
    migrationsDir: config.migrationsDir,
    logger: { info: quiet, warn: quiet, error: quiet },
    metrics: { add: quiet, addDuration: quiet, flush: quiet },
    isRollingBack: async () => false,
    deletionProtection: () => ({ apply: async () => {}, releaseForFailedCreate: async () => true }),
    target: async () => ({
      serverUrl: config.serverUrl,
      secrets: { master: async () => config.master, app: async () => config.app },
      snapshots: new TemplateDatabaseSnapshots(admin, config.database),
    }),
  });
  process.stdout.write('started\n');
  await handlers.isComplete(config.event, { getRemainingTimeInMillis: () => 14 * 60_000 });
  await admin.end();
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err?.message ?? err}\n`);
    process.exit(1);
  },
);
