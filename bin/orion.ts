#!/usr/bin/env node
/**
 * The CDK app: one database stack per environment (`-c env=dev|staging|prod`, or all three).
 */
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { environmentConfig, selectEnvironments } from '../lib/config/environments';
import { DatabaseStack } from '../lib/database-stack';
import { acknowledgeNagFindings } from '../lib/nag';

const app = new App();
const env = { account: app.node.tryGetContext('account') ?? process.env.CDK_DEFAULT_ACCOUNT, region: app.node.tryGetContext('region') ?? process.env.CDK_DEFAULT_REGION };
for (const name of selectEnvironments(app.node.tryGetContext('env'))) {
  const config = environmentConfig(name, {}, env);
  const stack = new DatabaseStack(app, `Orion-${name}`, {
    config,
    env: config.account && config.region ? { account: config.account, region: config.region } : undefined,
    deployId: app.node.tryGetContext('deployId'),
    migrationsDir: app.node.tryGetContext('migrationsDir'),
    description: `Orion ${name}: PostgreSQL on RDS with schema migrations on every deploy`,
  });
  acknowledgeNagFindings(stack);
}
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
