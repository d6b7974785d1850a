#!/usr/bin/env node
import { readFileSync } from 'node:fs';
/**
 * The CDK app: one database stack per environment (`-c env=dev|staging|prod`, or all three), and,
 * when asked for, the delivery pipeline (`-c pipeline=true`) and the GitHub OIDC roles (`-c github=owner/repo`).
 */
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { environmentConfig, selectEnvironments } from '../lib/config/environments';
import { DatabaseStack } from '../lib/database-stack';
import { acknowledgeNagFindings, acknowledgePipelineFindings } from '../lib/nag';
import { EXAMPLE_PIPELINE_CONFIG, type PipelineConfig, validatePipelineConfig } from '../lib/pipeline/config';
import { GitHubOidcStack } from '../lib/pipeline/github-oidc-stack';
import { PipelineStack } from '../lib/pipeline/pipeline-stack';

const app = new App();
const context = (key: string) => app.node.tryGetContext(key);
const env = {
  account: context('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
  region: context('region') ?? process.env.CDK_DEFAULT_REGION,
};

if (context('pipeline') === 'true' || context('pipeline') === true) {
  // -c pipelineConfig=pipeline.json for real values; the example otherwise (synth only).
  const file = context('pipelineConfig');
  const pipeline = validatePipelineConfig(
    file ? (JSON.parse(readFileSync(file, 'utf8')) as PipelineConfig) : EXAMPLE_PIPELINE_CONFIG,
  );
  const region = env.region ?? 'eu-west-1';
  const stack = new PipelineStack(app, 'Orion-pipeline', {
    env: { account: env.account ?? '111111111111', region },
    pipeline,
    staging: environmentConfig(
      'staging',
      { existingVpc: pipeline.stagingVpc, applicationSecurityGroupIds: [pipeline.checkSecurityGroupId] },
      { account: context('stagingAccount') ?? env.account ?? '111111111111', region },
    ),
    prod: environmentConfig('prod', {}, { account: context('prodAccount') ?? env.account ?? '222222222222', region }),
  });
  acknowledgePipelineFindings(stack);
} else {
  for (const name of selectEnvironments(context('env'))) {
    const config = environmentConfig(name, {}, env);
    const stack = new DatabaseStack(app, `Orion-${name}`, {
      config,
      env: config.account && config.region ? { account: config.account, region: config.region } : undefined,
      deployId: context('deployId'),
      migrationsDir: context('migrationsDir'),
      description: `Orion ${name}: PostgreSQL on RDS with schema migrations on every deploy`,
    });
    acknowledgeNagFindings(stack);
  }
}
if (context('github')) {
  new GitHubOidcStack(app, 'Orion-github-oidc', {
    env,
    repository: context('github'),
    environments: { staging: 'staging', production: 'prod' },
  });
}
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
