/**
 * `orion-db up`: the whole deploy lifecycle on the embedded PostgreSQL under `.orion/` (or, with
 * --database-url, on an existing server whose URL names the master user).
 */

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, redactUrl, withDatabase, withUser } from '../../lambda/engine/db';
import { BadInputError } from '../../lambda/engine/errors';
import type { Report } from '../../lambda/engine/report';
import { runDeploy } from '../../lambda/lifecycle/deploy';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import type { SecretsPort } from '../../lambda/lifecycle/ports';
import { ensureLocalServer } from '../../lambda/local/local-server';
import { FileSecrets } from '../../lambda/local/secrets';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import { type CommandContext, progressPrinter } from './migrations';

export async function up(ctx: CommandContext): Promise<Report> {
  const { options, progress } = ctx;
  const stateDir = resolve(options.cwd, '.orion');
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const files = new FileSecrets(join(stateDir, 'secrets.json'), DEFAULT_ROLES.app);
  let serverUrl: string;
  let secrets: SecretsPort = files;
  if (options.databaseUrl) {
    const url = new URL(options.databaseUrl);
    if (!url.username)
      throw new BadInputError(
        '--database-url for "up" must name the master user: postgres://USER:PASSWORD@host:port/postgres',
      );
    const master = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
    secrets = { master: async () => master, app: () => files.app() };
    url.username = url.password = '';
    serverUrl = url.toString();
  } else {
    const server = await ensureLocalServer(stateDir, (await files.master()).password, progress);
    serverUrl = server.serverUrl;
  }
  const master = await secrets.master();
  const admin = await connect(withDatabase(withUser(serverUrl, master.username), 'postgres'), {
    password: master.password,
    applicationName: 'orion-db up',
  });
  try {
    const snapshots = new TemplateDatabaseSnapshots(admin, DEFAULT_ROLES.database);
    const deployId = `local-${new Date().toISOString()}`;
    for (;;) {
      const outcome = await runDeploy(
        { snapshots, secrets },
        {
          serverUrl,
          roles: DEFAULT_ROLES,
          migrationsDir: resolve(options.cwd, options.migrationsDir),
          deployId,
          snapshotPrefix: 'orion-local',
          run: { lockWaitMs: options.lockWaitMs, onEvent: progressPrinter(progress) },
          log: progress,
        },
      );
      if (outcome.status === 'complete') {
        const app = await secrets.app();
        outcome.report.app_url = redactUrl(withDatabase(withUser(serverUrl, app.username), DEFAULT_ROLES.database));
        outcome.report.app_password_from = `${files.path} ("appPassword")`;
        return outcome.report;
      }
      progress(`waiting: ${outcome.reason}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await admin.end();
  }
}
