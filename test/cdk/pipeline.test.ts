import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Aspects } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { environmentConfig } from '../../lib/config/environments';
import { acknowledgePipelineFindings } from '../../lib/nag';
import { EXAMPLE_PIPELINE_CONFIG, validatePipelineConfig } from '../../lib/pipeline/config';
import { GitHubOidcStack } from '../../lib/pipeline/github-oidc-stack';
import { approvalComment, PipelineStack } from '../../lib/pipeline/pipeline-stack';
import { migrationsDir, SOP_MIGRATIONS } from '../helpers/db';

const CONTEXT = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;

function pipelineStack() {
  const app = new App({ context: { ...CONTEXT, 'aws:cdk:bundling-stacks': [] } });
  const p = EXAMPLE_PIPELINE_CONFIG;
  const stack = new PipelineStack(app, 'Orion-pipeline', {
    env: { account: '111111111111', region: 'eu-west-1' },
    pipeline: p,
    staging: environmentConfig(
      'staging',
      { existingVpc: p.stagingVpc, applicationSecurityGroupIds: [p.checkSecurityGroupId] },
      { account: '111111111111', region: 'eu-west-1' },
    ),
    prod: environmentConfig('prod', {}, { account: '222222222222', region: 'eu-west-1' }),
  });
  acknowledgePipelineFindings(stack);
  Aspects.of(app).add(new AwsSolutionsChecks());
  return { app, stack, template: Template.fromStack(stack) };
}

describe('the delivery pipeline', () => {
  const { stack, template } = pipelineStack();
  const pipeline = Object.values(template.findResources('AWS::CodePipeline::Pipeline'))[0].Properties;
  const stages: { Name: string; Actions: any[] }[] = pipeline.Stages;
  const stage = (name: string) => stages.find((s) => s.Name === name)!;

  test('runs source → build (tests + synth) → self-mutation → staging (+ check) → approval → prod, in that order', () => {
    expect(stages.map((s) => s.Name)).toEqual(['Source', 'Build', 'UpdatePipeline', 'Assets', 'Staging', 'Prod']);
    const prodActions = [...stage('Prod').Actions].sort((a, b) => a.RunOrder - b.RunOrder);
    expect(prodActions[0]).toMatchObject({ Name: 'ApproveProd', ActionTypeId: { Category: 'Approval' } });
    expect(prodActions.slice(1).every((a: any) => a.RunOrder > prodActions[0].RunOrder)).toBe(true);
    const stagingActions = [...stage('Staging').Actions].sort((a, b) => a.RunOrder - b.RunOrder);
    expect(stagingActions.at(-1)).toMatchObject({ Name: 'CheckStagingSchema', ActionTypeId: { Category: 'Build' } });
  });

  test('builds with the tests before synth', () => {
    const projects = Object.values(template.findResources('AWS::CodeBuild::Project')).map((p) =>
      JSON.stringify(p.Properties.Source.BuildSpec),
    );
    expect(
      projects.some(
        (b) => b.includes('npm ci') && b.includes('npm test') && b.includes('npx cdk synth -c pipeline=true'),
      ),
    ).toBe(true);
  });

  test('checks staging from inside its VPC with orion-db status, reading the secret without printing it', () => {
    template.hasResourceProperties('AWS::CodeBuild::Project', {
      VpcConfig: {
        VpcId: EXAMPLE_PIPELINE_CONFIG.stagingVpc.vpcId,
        Subnets: [...EXAMPLE_PIPELINE_CONFIG.stagingVpc.subnetIds],
        SecurityGroupIds: [EXAMPLE_PIPELINE_CONFIG.checkSecurityGroupId],
      },
      Source: { BuildSpec: Match.stringLikeRegexp('npx orion-db status --json > status.json') },
    });
    const check = Object.values(template.findResources('AWS::CodeBuild::Project')).find((p) =>
      JSON.stringify(p.Properties).includes('require-up-to-date'),
    )!;
    const commands: string[] = JSON.parse(check.Properties.Source.BuildSpec).phases.build.commands;
    expect(commands).toEqual([
      'npm ci',
      'export DATABASE_URL="$(node scripts/database-url-from-secret.mjs "$MASTER_SECRET_ARN" "$DATABASE_NAME")"',
      'npx orion-db status --json > status.json',
      'node scripts/require-up-to-date.mjs status.json',
    ]);
  });

  test('the staging database admits the check step’s security group', () => {
    expect(stack.staging.database.config.applicationSecurityGroupIds).toContain(
      EXAMPLE_PIPELINE_CONFIG.checkSecurityGroupId,
    );
    expect(stack.prod.database.config).toMatchObject({ name: 'prod', multiAz: true, instanceClass: 'db.t3.medium' });
  });

  test('the approval lists the migrations prod will receive', () => {
    const approval = stage('Prod').Actions.find((a) => a.Name === 'ApproveProd');
    expect(approval.Configuration.CustomData).toBe(approvalComment(join(__dirname, '..', '..', 'migrations')));
    expect(approvalComment(SOP_MIGRATIONS)).toMatch(
      /bring prod to version 2.*000001_init_schema, 000002_activities_start_time_speaker_idx/,
    );
    const many = migrationsDir(
      Object.fromEntries(
        Array.from({ length: 40 }, (_, i) => [`${String(i + 1).padStart(6, '0')}_m${i + 1}.up.sql`, 'SELECT 1;']),
      ),
    );
    expect(approvalComment(many)).toMatch(/version 40.*000001_m1, 000002_m2, … 34 more …, 000037_m37/);
  });

  test('has no unacknowledged cdk-nag finding', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  test('config is validated', () => {
    expect(() =>
      validatePipelineConfig({ ...EXAMPLE_PIPELINE_CONFIG, connectionArn: 'x', repository: 'no-slash' }),
    ).toThrow(/connectionArn: not a connection ARN[\s\S]*repository: must be owner\/name/);
  });
});

describe('GitHub OIDC roles', () => {
  test('each role trusts only this repository in its GitHub environment, and may only assume the CDK bootstrap roles', () => {
    const app = new App();
    const stack = new GitHubOidcStack(app, 'Oidc', {
      env: { account: '111111111111', region: 'eu-west-1' },
      repository: 'example-org/orion-db-stack',
      environments: { staging: 'staging', production: 'prod' },
    });
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::IAM::Role', {
      RoleName: 'orion-github-deploy-prod',
      MaxSessionDuration: 14400,
      AssumeRolePolicyDocument: Match.objectLike({
        Statement: [
          Match.objectLike({
            Condition: {
              StringEquals: {
                'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
                'token.actions.githubusercontent.com:sub': 'repo:example-org/orion-db-stack:environment:production',
              },
            },
          }),
        ],
      }),
    });
    const statements = Object.values(t.findResources('AWS::IAM::Policy')).flatMap(
      (p) => p.Properties.PolicyDocument.Statement,
    );
    expect(statements.map((s: any) => s.Action)).toEqual(['sts:AssumeRole', 'sts:AssumeRole']);
  });
});

describe('.github/workflows/deploy.yml', () => {
  const text = readFileSync(join(__dirname, '..', '..', '.github', 'workflows', 'deploy.yml'), 'utf8');
  const wf = parse(text);

  test('tests, then staging, then prod behind the production environment', () => {
    expect(wf.on.push.branches).toEqual(['main']);
    expect(Object.keys(wf.jobs)).toEqual(['test', 'deploy-staging', 'deploy-prod']);
    expect(wf.jobs['deploy-staging'].needs).toBe('test');
    expect(wf.jobs['deploy-prod'].needs).toBe('deploy-staging');
    expect(wf.jobs['deploy-staging'].environment).toBe('staging');
    expect(wf.jobs['deploy-prod'].environment).toBe('production');
    const testRuns = wf.jobs.test.steps.map((s: any) => s.run).filter(Boolean);
    expect(testRuns).toEqual(['npm ci', 'npm test', 'npx orion-db lint', 'npx cdk synth --quiet']);
  });

  test('deploys with OIDC and short-lived credentials only, long enough for a snapshot plus migrations', () => {
    expect(wf.permissions).toEqual({ contents: 'read' });
    for (const job of ['deploy-staging', 'deploy-prod']) {
      expect(wf.jobs[job].permissions).toEqual({ contents: 'read', 'id-token': 'write' });
      const creds = wf.jobs[job].steps.find((s: any) =>
        String(s.uses).startsWith('aws-actions/configure-aws-credentials@'),
      );
      expect(creds.with['role-to-assume']).toMatch(/^\$\{\{ vars\.(STAGING|PROD)_DEPLOY_ROLE_ARN \}\}$/);
      expect(creds.with['role-duration-seconds']).toBeGreaterThanOrEqual(3600);
      expect(creds.with).not.toHaveProperty('aws-access-key-id');
      expect(wf.jobs[job].steps.at(-1).run).toMatch(
        /^npx cdk deploy Orion-(staging|prod) -c env=(staging|prod) --require-approval never$/,
      );
    }
  });

  test('holds no secret in plain text', () => {
    expect(text).not.toMatch(/AKIA[0-9A-Z]{16}|aws_secret_access_key|password\s*[:=]/i);
    expect(text).not.toMatch(/secrets\./);
  });
});

describe('scripts/require-up-to-date.mjs (the staging check)', () => {
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const script = join(__dirname, '..', '..', 'scripts', 'require-up-to-date.mjs');
  const check = (report: object) => {
    const dir = migrationsDir({ 'status.json': JSON.stringify(report) });
    return spawnSync(process.execPath, [script, join(dir, 'status.json')], { encoding: 'utf8' });
  };
  const base = { ok: true, to_version: '2', pending: [], errors: [], incomplete: [] };

  test('passes a database with nothing pending, fails one with pending, incomplete or failed migrations', () => {
    expect(check(base).status).toBe(0);
    const pending = check({ ...base, pending: [{ version: '3', name: 'speakers' }] });
    expect(pending.status).toBe(1);
    expect(pending.stderr).toMatch(/pending: 3 speakers/);
    expect(check({ ...base, incomplete: [{ version: '2', name: 'idx' }] }).stderr).toMatch(/incomplete: 2 idx/);
    expect(check({ ...base, ok: false, errors: [{ file: '1_a.up.sql', message: 'edited' }] }).status).toBe(1);
  });

  test('fails when the status report is missing or not a report (orion-db status crashed)', () => {
    const dir = migrationsDir({ 'empty.json': '', 'other.json': '{"hello": 1}' });
    expect(spawnSync(process.execPath, [script, join(dir, 'empty.json')]).status).not.toBe(0);
    expect(spawnSync(process.execPath, [script, join(dir, 'other.json')]).status).not.toBe(0);
  });
});
