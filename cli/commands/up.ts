/**
 * `orion-db up`: the whole deploy lifecycle on the embedded PostgreSQL under `.orion/`, or, with
 * --database-url, on a server it did not start (a shared staging server), whose URL names the master
 * user and the database.
 *
 * On a server it did not start it behaves as a guest: it never ends other sessions (no template
 * copy: its backup is pg_dump, and only when a pending migration runs outside a transaction), never
 * restores by itself, and never changes a password unless told to (--set-app-password).
 */

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect, databaseOf, redactUrl, withDatabase, withUser } from '../../lambda/engine/db';
import { BadInputError } from '../../lambda/engine/errors';
import { loadMigrations } from '../../lambda/engine/files';
import { labelVersions, type Report } from '../../lambda/engine/report';
import { type DeployConfig, runDeploy } from '../../lambda/lifecycle/deploy';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import type { Credentials, SnapshotPort } from '../../lambda/lifecycle/ports';
import { DumpSnapshots } from '../../lambda/local/dump-snapshots';
import { ensureLocalServer } from '../../lambda/local/local-server';
import { FileSecrets } from '../../lambda/local/secrets';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import type { CommandContext } from '../context';
import { warnAboutLint } from '../lint-warnings';
import { progressPrinter } from './migrations';

interface Target {
  readonly serverUrl: string;
  readonly master: Credentials;
  readonly database: string;
  /** True when this project's embedded server: ours to copy databases on and set passwords in. */
  readonly ours: boolean;
}

export async function up(ctx: CommandContext): Promise<Report> {
  const { options, progress } = ctx;
  const stateDir = resolve(options.cwd, '.orion');
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  const files = new FileSecrets(join(stateDir, 'secrets.json'), DEFAULT_ROLES.app);
  const target = options.databaseUrl
    ? givenServer(options.databaseUrl)
    : {
        serverUrl: (await ensureLocalServer(stateDir, (await files.master()).password, progress)).serverUrl,
        master: await files.master(),
        database: DEFAULT_ROLES.database,
        ours: true,
      };
  const { serverUrl, master, database, ours } = target;
  const roles = { ...DEFAULT_ROLES, database };
  const secrets = { master: async () => master, app: () => files.app() };
  const setAppPassword = ours || options.setAppPassword;
  const admin = await connect(withDatabase(withUser(serverUrl, master.username), 'postgres'), {
    password: master.password,
    applicationName: 'orion-db up',
  });
  try {
    let snapshots: SnapshotPort;
    if (ours) snapshots = new TemplateDatabaseSnapshots(admin, database);
    else {
      const num = (await admin.query(`SELECT current_setting('server_version_num')::int AS n`)).rows[0].n;
      snapshots = new DumpSnapshots({
        serverUrl,
        database,
        master,
        serverMajor: Math.floor(num / 10000),
        dir: join(stateDir, 'backups'),
      });
    }
    await warnAboutLint(resolve(options.cwd, options.migrationsDir), undefined, progress);
    const config: DeployConfig = {
      serverUrl,
      roles,
      migrationsDir: resolve(options.cwd, options.migrationsDir),
      deployId: `local-${new Date().toISOString()}`,
      snapshotPrefix: 'orion-local',
      snapshotWhen: ours ? 'pending' : 'non-transactional',
      setAppPassword,
      baseline: options.baseline,
      format: options.format,
      run: { lockWaitMs: options.lockWaitMs, onEvent: progressPrinter(progress) },
      log: progress,
    };
    for (;;) {
      const outcome = await runDeploy({ snapshots, secrets }, config);
      if (outcome.status === 'complete') {
        const app = await secrets.app();
        outcome.report.app_url = redactUrl(withDatabase(withUser(serverUrl, app.username), database));
        outcome.report.app_password_from = setAppPassword
          ? `${files.path} ("appPassword")`
          : 'unchanged: not set on a server orion-db up did not start (--set-app-password sets it from .orion/secrets.json)';
        if (ours) {
          // The URL for status/plan/migrate/down (which use it by themselves when given no URL): the
          // application's may not read the ledger.
          outcome.report.admin_url = redactUrl(withDatabase(withUser(serverUrl, master.username), database));
          outcome.report.admin_password_from = `${files.path} ("masterPassword")`;
        }
        return labelVersions(
          outcome.report,
          await loadMigrations(config.migrationsDir, { parse: false, format: config.format }),
        );
      }
      progress(`waiting: ${outcome.reason}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    await admin.end();
  }
}

/** The server and database of --database-url, which names the master user. */
function givenServer(databaseUrl: string): Target {
  const url = new URL(databaseUrl);
  if (!url.username)
    throw new BadInputError(
      '--database-url for "up" must name the master user: postgres://USER:PASSWORD@host:port/DATABASE',
    );
  const database = databaseOf(databaseUrl) ?? DEFAULT_ROLES.database;
  if (database === 'postgres' || database === 'template0' || database === 'template1')
    throw new BadInputError(
      `--database-url names "${database}", a database PostgreSQL keeps for itself: name the application's database ` +
        `(e.g. postgres://USER:PASSWORD@host:port/${DEFAULT_ROLES.database}); up creates it if it is missing`,
    );
  const master = { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
  url.username = url.password = '';
  url.pathname = '/';
  return { serverUrl: url.toString(), master, database, ours: false };
}
