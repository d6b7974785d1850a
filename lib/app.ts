/**
 * What `cdk synth` builds, from context: one database stack per environment (`-c env=dev|staging|prod`,
 * or all three), or the delivery pipeline (`-c pipeline=true`), and the GitHub OIDC roles
 * (`-c github=owner/repo`). Settings come from environments.ts and the committed file `-c config=FILE`.
 */
import { Annotations, type App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ENVIRONMENTS, type EnvironmentName, environmentConfig, selectEnvironments } from './config/environments';
import { ConfigError } from './config/errors';
import { environmentOverrides, type LoadedSettings, readSettingsFile } from './config/settings';
import { DatabaseStack } from './database-stack';
import { acknowledgeNagFindings, acknowledgePipelineFindings } from './nag';
import { EXAMPLE_PIPELINE_CONFIG, validatePipelineConfig } from './pipeline/config';
import { GitHubOidcStack } from './pipeline/github-oidc-stack';
import { PipelineStack } from './pipeline/pipeline-stack';

/**
 * Context the pipeline's own synth step would not have: it runs `cdk synth` again with only
 * `-c pipeline=true -c config=FILE`, so anything else would be lost at the first self-mutation.
 */
const NOT_FOR_PIPELINE = ['env', 'account', 'region', 'alarmEmail', 'deployId', 'migrationsDir'];

export function defineOrionApp(app: App): void {
  const context = (key: string) => app.node.tryGetContext(key);
  const settings = readSettingsFile(context('config'));
  if (context('pipeline') === 'true' || context('pipeline') === true) {
    const given = NOT_FOR_PIPELINE.filter((key) => context(key) !== undefined);
    if (given.length)
      throw new ConfigError(
        `${given.map((k) => `-c ${k}`).join(', ')} cannot be used with -c pipeline=true: the pipeline synthesizes ` +
          'itself again from the settings file alone; put them in the file given with -c config=FILE',
      );
    definePipeline(app, settings);
  } else {
    for (const name of selectEnvironments(context('env'))) {
      const config = environmentConfig(
        name,
        environmentOverrides(settings, name, { alarmEmail: context('alarmEmail') }),
        {
          account: context('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
          region: context('region') ?? process.env.CDK_DEFAULT_REGION,
        },
      );
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
    const environments = String(context('githubEnvironments') ?? 'staging,production').split(',');
    new GitHubOidcStack(app, 'Orion-github-oidc', {
      env: {
        account: context('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
        region: context('region') ?? process.env.CDK_DEFAULT_REGION,
      },
      repository: context('github'),
      environments: Object.fromEntries(environments.map((e) => [e, GITHUB_ENVIRONMENTS[e] ?? unknownEnvironment(e)])),
      existingProviderArn: context('githubOidcProviderArn'),
    });
  }
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
}

/** GitHub environment → the database environment its role deploys. */
const GITHUB_ENVIRONMENTS: Record<string, EnvironmentName> = { staging: 'staging', production: 'prod' };

function unknownEnvironment(e: string): never {
  throw new ConfigError(`-c githubEnvironments: unknown GitHub environment "${e}" (expected staging, production)`);
}

function definePipeline(app: App, settings: LoadedSettings): void {
  const p = validatePipelineConfig(settings.file.pipeline ?? EXAMPLE_PIPELINE_CONFIG);
  const staging = environmentOverrides(settings, 'staging');
  const stack = new PipelineStack(app, 'Orion-pipeline', {
    env: { account: p.account, region: p.region },
    pipeline: p,
    settingsFile: settings.path,
    staging: environmentConfig(
      'staging',
      {
        ...staging,
        existingVpc: p.stagingVpc,
        applicationSecurityGroupIds: [
          ...(staging.applicationSecurityGroupIds ?? ENVIRONMENTS.staging.applicationSecurityGroupIds),
          p.checkSecurityGroupId,
        ],
      },
      { account: p.stagingAccount, region: p.region },
    ),
    prod: environmentConfig('prod', environmentOverrides(settings, 'prod'), {
      account: p.prodAccount,
      region: p.region,
    }),
  });
  if (!settings.file.pipeline)
    Annotations.of(stack).addWarningV2(
      'orion:example-pipeline',
      'no pipeline section in -c config=FILE: this is the example pipeline (fake connection and accounts), not deployable',
    );
  acknowledgePipelineFindings(stack);
}
