/**
 * CDK Pipelines: synth (with the tests) → staging, checked from inside its VPC with `orion-db status`
 * → a manual approval that lists the migrations prod will receive → prod. Only a commit that passed
 * staging reaches prod; the pipeline updates itself first (self-mutation).
 */

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ArnFormat, Stack, type StackProps, Stage, type StageProps } from 'aws-cdk-lib';
import * as codepipeline from 'aws-cdk-lib/aws-codepipeline';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as pipelines from 'aws-cdk-lib/pipelines';
import type { Construct } from 'constructs';
import { parseFileName } from '../../lambda/engine/files';
import type { EnvironmentConfig } from '../config/environments';
import { DatabaseStack } from '../database-stack';
import { acknowledgeNagFindings } from '../nag';
import type { PipelineConfig } from './config';

export interface OrionStageProps extends StageProps {
  readonly config: EnvironmentConfig;
}

/** One environment's database, as a pipeline deploys it. */
export class OrionStage extends Stage {
  readonly database: DatabaseStack;
  constructor(scope: Construct, id: string, props: OrionStageProps) {
    super(scope, id, props);
    this.database = new DatabaseStack(this, 'Database', {
      config: props.config,
      stackName: `Orion-${props.config.name}`,
      description: `Orion ${props.config.name}: PostgreSQL on RDS with schema migrations on every deploy`,
    });
    acknowledgeNagFindings(this.database);
  }
}

export interface PipelineStackProps extends StackProps {
  readonly pipeline: PipelineConfig;
  readonly staging: EnvironmentConfig;
  readonly prod: EnvironmentConfig;
  /** @default - the project's migrations/ folder */
  readonly migrationsDir?: string;
}

export class PipelineStack extends Stack {
  readonly pipeline: pipelines.CodePipeline;
  readonly staging: OrionStage;
  readonly prod: OrionStage;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    const p = props.pipeline;
    const source = pipelines.CodePipelineSource.connection(p.repository, p.branch, { connectionArn: p.connectionArn });
    this.pipeline = new pipelines.CodePipeline(this, 'Pipeline', {
      pipelineName: 'orion-db',
      selfMutation: true,
      crossAccountKeys: true,
      pipelineType: codepipeline.PipelineType.V2,
      synth: new pipelines.ShellStep('Synth', {
        input: source,
        commands: ['npm ci', 'npm test', 'npx cdk synth -c pipeline=true'],
      }),
    });

    this.staging = new OrionStage(this, 'Staging', { config: props.staging, env: envOf(props.staging) });
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'StagingVpc', {
      vpcId: p.stagingVpc.vpcId,
      vpcCidrBlock: p.stagingVpc.cidrBlock,
      availabilityZones: [...p.stagingVpc.availabilityZones],
      privateSubnetIds: [...p.stagingVpc.subnetIds],
    });
    const db = this.staging.database;
    const check = new pipelines.CodeBuildStep('CheckStagingSchema', {
      vpc,
      subnetSelection: { subnets: vpc.privateSubnets },
      securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(this, 'CheckSecurityGroup', p.checkSecurityGroupId)],
      envFromCfnOutputs: { MASTER_SECRET_ARN: db.outputs.MasterSecretArn, DATABASE_NAME: db.outputs.DatabaseName },
      commands: [
        'npm ci',
        // The URL holds the password: it lives in this variable only, never in the log.
        'export DATABASE_URL="$(node scripts/database-url-from-secret.mjs "$MASTER_SECRET_ARN" "$DATABASE_NAME")"',
        'npx orion-db status --json > status.json',
        'node scripts/require-up-to-date.mjs status.json',
      ],
      rolePolicyStatements: [
        new iam.PolicyStatement({
          actions: ['secretsmanager:GetSecretValue'],
          resources: [
            Stack.of(this).formatArn({
              service: 'secretsmanager',
              resource: 'secret',
              resourceName: `orion/${props.staging.name}/master-*`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
              account: props.staging.account,
              region: props.staging.region,
            }),
          ],
        }),
      ],
    });
    this.pipeline.addStage(this.staging, { post: [check] });

    this.prod = new OrionStage(this, 'Prod', { config: props.prod, env: envOf(props.prod) });
    const approval = new pipelines.ManualApprovalStep('ApproveProd', {
      comment: approvalComment(props.migrationsDir ?? join(__dirname, '..', '..', 'migrations')),
    });
    this.pipeline.addStage(this.prod, { pre: [approval] });
  }
}

/** What the approver reads: the migrations of this commit, which prod applies where it has not yet. */
export function approvalComment(migrationsDir: string): string {
  const ups = readdirSync(migrationsDir)
    .map((f) => ({ f, parsed: parseFileName(f) }))
    .filter((x) => x.parsed?.direction === 'up')
    .sort((a, b) => (a.parsed!.version < b.parsed!.version ? -1 : 1));
  const latest = ups.at(-1)?.parsed?.version ?? 'none';
  const names = ups.map((x) => x.f.replace(/\.up\.sql$/, ''));
  const shown = names.length > 12 ? [...names.slice(0, 2), `… ${names.length - 6} more …`, ...names.slice(-4)] : names;
  return `Promote to prod. Staging passed at schema version ${latest}. orion-db will bring prod to version ${latest}, applying those of these it has not applied yet, in one transaction where possible and behind a snapshot: ${shown.join(', ')}.`.slice(
    0,
    1000,
  );
}

function envOf(c: EnvironmentConfig) {
  return c.account && c.region ? { account: c.account, region: c.region } : undefined;
}
