/**
 * CDK Pipelines: synth (with the tests) → staging, checked from inside its VPC with `orion-db status`
 * → a manual approval that lists the migrations new to prod → prod. Only a commit that passed
 * staging reaches prod; the pipeline updates itself first (self-mutation), from the same settings file.
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
  /**
   * The committed settings file this pipeline was synthesized from, relative to the repository root:
   * the pipeline's own synth step reads it again, so self-mutation reproduces this pipeline.
   * @default - none: the example pipeline
   */
  readonly settingsFile?: string;
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
        commands: ['npm ci', 'npm test', pipelineSynthCommand(props.settingsFile)],
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
      input: source,
      vpc,
      subnetSelection: { subnets: vpc.privateSubnets },
      securityGroups: [ec2.SecurityGroup.fromSecurityGroupId(this, 'CheckSecurityGroup', p.checkSecurityGroupId)],
      envFromCfnOutputs: { MASTER_SECRET_ARN: db.outputs.MasterSecretArn, DATABASE_NAME: db.outputs.DatabaseName },
      commands: [
        'npm ci',
        // The URL holds the password: it lives in this variable only, never in the log. Assigned, then
        // exported: `export X="$(…)"` exits 0 whatever the command did, and a failure must stop the step here.
        'DATABASE_URL="$(node scripts/database-url-from-secret.mjs "$MASTER_SECRET_ARN" "$DATABASE_NAME")"',
        'export DATABASE_URL',
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
    const newToProd = this.newToProdStep(source, props, this.prod.database.stackName);
    const approval = new pipelines.ManualApprovalStep('ApproveProd', {
      comment: approvalComment(
        props.migrationsDir ?? join(__dirname, '..', '..', 'migrations'),
        newToProd.exportedVariable('PROD_SCHEMA_VERSION'),
        newToProd.exportedVariable('NEW_TO_PROD'),
      ),
    });
    approval.addStepDependency(newToProd);
    this.pipeline.addStage(this.prod, { pre: [newToProd, approval] });
  }

  /**
   * Reads prod's schema version from its stack (output SchemaVersion) through the CDK lookup role of
   * the prod account — read-only, and trusted by the pipeline's account since `cdk bootstrap --trust` —
   * and lists this commit's migrations above it (lib/pipeline/new-to-prod.ts says why from there).
   */
  private newToProdStep(source: pipelines.IFileSetProducer, props: PipelineStackProps, prodStackName: string) {
    const { prodAccount, region } = props.pipeline;
    const lookupRole = `arn:${Stack.of(this).partition}:iam::${prodAccount}:role/cdk-hnb659fds-lookup-role-${prodAccount}-${region}`;
    return new pipelines.CodeBuildStep('NewToProd', {
      input: source,
      commands: [
        'npm ci',
        `aws configure set profile.prod-lookup.role_arn ${lookupRole}`,
        'aws configure set profile.prod-lookup.credential_source EcsContainer',
        `AWS_PROFILE=prod-lookup npx tsx scripts/new-to-prod.ts --stack ${prodStackName} --region ${region} --migrations migrations > new-to-prod.env`,
        '. ./new-to-prod.env',
      ],
      rolePolicyStatements: [new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: [lookupRole] })],
    });
  }
}

/** The pipeline's own synth: the settings file it was built from, and nothing else (see lib/app.ts). */
export function pipelineSynthCommand(settingsFile?: string): string {
  return `npx cdk synth -c pipeline=true${settingsFile ? ` -c config=${settingsFile}` : ''}`;
}

/** What the approver reads; the two variables come from the NewToProd step at run time. */
export function approvalComment(migrationsDir: string, prodVersion: string, newToProd: string): string {
  const latest =
    readdirSync(migrationsDir)
      .map((f) => parseFileName(f))
      .filter((p) => p?.direction === 'up')
      .reduce<bigint | undefined>((max, p) => (max === undefined || p!.version > max ? p!.version : max), undefined)
      ?.toString() ?? 'none';
  return (
    `Promote to prod. Staging passed at schema version ${latest}. Prod is at version ${prodVersion}; ` +
    `new to prod (applied in one transaction where possible, behind a snapshot): ${newToProd}.`
  );
}

function envOf(c: EnvironmentConfig) {
  return c.account && c.region ? { account: c.account, region: c.region } : undefined;
}
