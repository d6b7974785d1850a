/**
 * The Lambda entry points: real AWS clients, Powertools logs and metrics, the migrations shipped
 * in the bundle. Everything else is in handler.ts.
 */

import { resolve } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';
import { awsClients } from '../aws/clients';
import { RdsDeletionProtection } from '../aws/deletion-protection';
import { SecretsManagerSecrets } from '../aws/secrets';
import { RdsSnapshots } from '../aws/snapshots';
import { isStackRollingBack } from '../aws/stack-status';
import { createHandlers, type InvocationContext, type ProviderEvent } from './handler';
import { LAST_POLL_AFTER_ENV } from './properties';

const logger = new Logger();
const metrics = new PowertoolsMetrics();
const { rds, secretsManager, cloudFormation } = awsClients();

/**
 * Set by the stack from its time budget. Absent only when the bundle runs outside the stack (a test):
 * then 40 minutes, earlier than any budget that leaves a 14-minute poll inside the hour.
 */
const lastPollAfterSeconds = Number(process.env[LAST_POLL_AFTER_ENV]);

const handlers = createHandlers({
  migrationsDir: resolve(__dirname, process.env.MIGRATIONS_DIR ?? './migrations'),
  lastPollAfterMs: (lastPollAfterSeconds > 0 ? lastPollAfterSeconds : 40 * 60) * 1000,
  logger: {
    info: (message, extra = {}) => logger.info(message, extra),
    warn: (message, extra = {}) => logger.warn(message, extra),
    error: (message, extra = {}) => logger.error(message, extra),
  },
  metrics: {
    add: (name, value) => metrics.addMetric(name, MetricUnit.Count, value),
    addDuration: (name, ms) => metrics.addMetric(name, MetricUnit.Milliseconds, ms),
    flush: () => metrics.publishStoredMetrics(),
  },
  isRollingBack: (stackId) => isStackRollingBack(cloudFormation, stackId),
  deletionProtection: (settings) =>
    new RdsDeletionProtection(rds, cloudFormation, settings.instanceIdentifier, settings.adoptedInstance),
  async target(settings, stackId) {
    const secrets = new SecretsManagerSecrets(secretsManager, settings.masterSecretArn, settings.appSecretArn);
    const master = await secrets.master();
    if (!master.host || !master.port)
      throw new Error(
        `the master secret ${settings.masterSecretArn} has no host/port: is it attached to the instance?`,
      );
    return {
      // TLS verified against the RDS CA bundle (NODE_EXTRA_CA_CERTS); rds.force_ssl refuses anything else.
      serverUrl: `postgres://${master.host}:${master.port}/postgres?sslmode=verify-full`,
      secrets,
      snapshots: new RdsSnapshots(rds, {
        instanceIdentifier: settings.instanceIdentifier,
        restore: settings.restore,
        tags: { 'orion:stack': stackId.split('/')[1] ?? stackId },
      }),
    };
  },
});

export const onEvent = (event: ProviderEvent) => handlers.onEvent(event);
export const isComplete = (event: ProviderEvent, context: InvocationContext) => handlers.isComplete(event, context);
