/**
 * Builds a stack the way bin/orion.ts does, with cdk.json's context, bundling skipped and cdk-nag on.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Aspects } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { type EnvironmentConfig, type EnvironmentName, environmentConfig } from '../../lib/config/environments';
import { DatabaseStack } from '../../lib/database-stack';
import { acknowledgeNagFindings } from '../../lib/nag';

const CDK_CONTEXT = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;

export interface SynthesizedStack {
  readonly stack: DatabaseStack;
  readonly template: Template;
  /** cdk-nag and other errors attached to the stack's constructs. */
  readonly errors: string[];
}

export function synthStack(
  name: EnvironmentName,
  overrides: Partial<EnvironmentConfig> = {},
  options: { migrationsDir?: string } = {},
): SynthesizedStack {
  const app = new App({ context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const config = environmentConfig(name, overrides, { account: '123456789012', region: 'eu-west-1' });
  const stack = new DatabaseStack(app, `Orion-${name}`, {
    config,
    env: { account: config.account, region: config.region },
    deployId: 'deploy-1',
    migrationsDir: options.migrationsDir,
  });
  acknowledgeNagFindings(stack);
  Aspects.of(app).add(new AwsSolutionsChecks());
  const template = Template.fromStack(stack);
  const errors = Annotations.fromStack(stack)
    .findError('*', Match.anyValue())
    .map((m) => `${m.id}: ${String(m.entry.data).slice(0, 200)}`);
  return { stack, template, errors };
}
