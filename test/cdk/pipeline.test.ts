import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { App, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, test, vi } from 'vitest';
import { parse } from 'yaml';
import { defineOrionApp } from '../../lib/app';
import { EXAMPLE_PIPELINE_CONFIG, validatePipelineConfig } from '../../lib/pipeline/config';
import { approvalVariables, migrationsNewerThan, prodSchemaVersion } from '../../lib/pipeline/new-to-prod';
import type { PipelineStack } from '../../lib/pipeline/pipeline-stack';
import { migrationsDir, SOP_MIGRATIONS } from '../helpers/db';

// Synthesis is CPU-bound (cdk-nag, the lint gate): minutes when a 2-core machine is busy.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

const CONTEXT = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;
const SETTINGS = 'test/fixtures/pipeline/orion.config.json';

/** The app as `cdk synth` builds it from this context (cdk.json's context included, bundling skipped). */
function synthApp(context: Record<string, string>) {
  const app = new App({ context: { ...CONTEXT, 'aws:cdk:bundling-stacks': [], ...context } });
  defineOrionApp(app);
  return app;
}

function pipelineStack(context: Record<string, string> = { pipeline: 'true' }) {
  const app = synthApp(context);
  const stack = app.node.findChild('Orion-pipeline') as PipelineStack;
  return { app, stack, template: Template.fromStack(stack) };
}

/** The `-c key=value` pairs of a `cdk synth` command line. */
function contextOf(command: string): Record<string, string> {
  return Object.fromEntries([...command.matchAll(/-c (\S+?)=(\S+)/g)].map((m) => [m[1], m[2]]));
}

/** A CodeBuild project's build commands; tokens in them (Fn::Join parts) appear as `<token>`. */
function buildCommands(project: any): string[] {
  const spec = project.Properties.Source.BuildSpec;
  const text =
    typeof spec === 'string'
      ? spec
      : spec['Fn::Join'][1].map((part: unknown) => (typeof part === 'string' ? part : '<token>')).join('');
  return JSON.parse(text).phases.build.commands;
}

function synthCommand(template: Template): string {
  const builds = Object.values(template.findResources('AWS::CodeBuild::Project')).map(buildCommands);
  return builds.flat().find((c) => c.startsWith('npx cdk synth'))!;
}

describe('the delivery pipeline', () => {
  const { stack, template } = pipelineStack();
  const pipeline = Object.values(template.findResources('AWS::CodePipeline::Pipeline'))[0].Properties;
  const stages: { Name: string; Actions: any[] }[] = pipeline.Stages;
  const stage = (name: string) => stages.find((s) => s.Name === name)!;

  test('runs source → build (tests + synth) → self-mutation → staging (+ check) → approval → prod, in that order', () => {
    expect(stages.map((s) => s.Name)).toEqual(['Source', 'Build', 'UpdatePipeline', 'Assets', 'Staging', 'Prod']);
    const prodActions = [...stage('Prod').Actions].sort((a, b) => a.RunOrder - b.RunOrder);
    expect(prodActions.map((a) => a.Name)).toEqual([
      'NewToProd',
      'ApproveProd',
      'Orion-prod.Prepare',
      'Orion-prod.Deploy',
    ]);
    expect(prodActions[1]).toMatchObject({ Name: 'ApproveProd', ActionTypeId: { Category: 'Approval' } });
    expect(prodActions.slice(2).every((a: any) => a.RunOrder > prodActions[1].RunOrder)).toBe(true);
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

  test('without a settings file it is the example, and synth says it is not deployable', () => {
    expect(synthCommand(template)).toBe('npx cdk synth -c pipeline=true');
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('example pipeline'))).toHaveLength(1);
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
      'DATABASE_URL="$(node scripts/database-url-from-secret.mjs "$MASTER_SECRET_ARN" "$DATABASE_NAME")"',
      'export DATABASE_URL',
      'npx orion-db status --json > status.json',
      'node scripts/require-up-to-date.mjs status.json',
    ]);
  });

  test('the staging check stops at the secret when it cannot be read, and hands the URL on when it can', () => {
    const check = Object.values(template.findResources('AWS::CodeBuild::Project')).find((p) =>
      JSON.stringify(p.Properties).includes('require-up-to-date'),
    )!;
    const commands: string[] = JSON.parse(check.Properties.Source.BuildSpec).phases.build.commands;
    // The commands that build the URL, run as CodeBuild runs a phase (one shell, stopping at the first
    // failing command), then a stand-in for `orion-db status` that says what it was given.
    const urlCommands = commands.slice(
      commands.indexOf('npm ci') + 1,
      commands.findIndex((c) => c.includes('status')),
    );
    const step = (secretScript: string) => {
      const dir = mkdtempSync(join(tmpdir(), 'orion-check-step-'));
      mkdirSync(join(dir, 'scripts'));
      writeFileSync(join(dir, 'scripts', 'database-url-from-secret.mjs'), secretScript);
      const script = [...urlCommands, 'echo "reached status with $(printenv DATABASE_URL)"'].join('\n');
      return spawnSync('bash', ['-e', '-c', script], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    };
    const denied = step('console.error("AccessDeniedException"); process.exit(1);');
    expect(denied.status).not.toBe(0);
    expect(denied.stdout).not.toMatch(/reached status/);
    const read = step('process.stdout.write("postgres://u:p@h:5433/orion_staging");');
    expect(read.status).toBe(0);
    expect(read.stdout).toMatch(/reached status with postgres:\/\/u:p@h:5433\/orion_staging/);
  });

  test('the staging database admits the check step’s security group', () => {
    expect(stack.staging.database.config.applicationSecurityGroupIds).toContain(
      EXAMPLE_PIPELINE_CONFIG.checkSecurityGroupId,
    );
    expect(stack.prod.database.config).toMatchObject({ name: 'prod', multiAz: true, instanceClass: 'db.t3.medium' });
  });

  test('the approval shows what the NewToProd step found: prod’s version and the migrations new to it', () => {
    const actions = [...stage('Prod').Actions].sort((a, b) => a.RunOrder - b.RunOrder);
    const [newToProd, approval] = actions;
    expect(newToProd).toMatchObject({ Name: 'NewToProd', ActionTypeId: { Category: 'Build' } });
    expect(approval.Name).toBe('ApproveProd');
    expect(approval.RunOrder).toBeGreaterThan(newToProd.RunOrder);
    const ns = newToProd.Namespace;
    expect(approval.Configuration.CustomData).toMatch(
      new RegExp(
        `Prod is at version #\\{${ns}\\.PROD_SCHEMA_VERSION\\}; new to prod .*: #\\{${ns}\\.NEW_TO_PROD\\}\\.$`,
      ),
    );
    // It reads prod's stack through prod's CDK lookup role, and may assume nothing else.
    const project = Object.values(template.findResources('AWS::CodeBuild::Project')).find((p) =>
      JSON.stringify(p.Properties).includes('new-to-prod.ts'),
    )!;
    const commands = buildCommands(project);
    expect(commands).toContain(
      'AWS_PROFILE=prod-lookup npx tsx scripts/new-to-prod.ts --stack Orion-prod --region eu-west-1 --migrations migrations > new-to-prod.env',
    );
    const assumes = Object.values(template.findResources('AWS::IAM::Policy'))
      .flatMap((p) => p.Properties.PolicyDocument.Statement)
      .filter((st: any) => [st.Action].flat().includes('sts:AssumeRole'))
      .map((st: any) => JSON.stringify(st.Resource));
    expect(assumes.some((r) => r.includes('cdk-hnb659fds-lookup-role-222222222222-eu-west-1'))).toBe(true);
  });

  test('has no unacknowledged cdk-nag finding', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });

  test('config is validated', () => {
    expect(() =>
      validatePipelineConfig({
        ...EXAMPLE_PIPELINE_CONFIG,
        connectionArn: 'x',
        repository: 'no-slash',
        prodAccount: '1',
      }),
    ).toThrow(
      /prodAccount: must be a 12-digit[\s\S]*connectionArn: not a connection ARN[\s\S]*repository: must be owner\/name/,
    );
  });
});

describe('the pipeline from a settings file', () => {
  const { stack, template } = pipelineStack({ pipeline: 'true', config: SETTINGS });

  test('uses the file’s accounts, region, repository and environment settings', () => {
    expect(stack).toMatchObject({ account: '333333333333', region: 'eu-central-1' });
    expect(stack.prod.database.config).toMatchObject({
      account: '444444444444',
      region: 'eu-central-1',
      alarmEmail: 'oncall@example.org',
      availabilityZones: ['eu-central-1a', 'eu-central-1c'],
    });
    expect(stack.staging.database.config).toMatchObject({ account: '333333333333', snapshotRetention: 3 });
    const source = Object.values(template.findResources('AWS::CodePipeline::Pipeline'))[0].Properties.Stages[0];
    expect(source.Actions[0].Configuration).toMatchObject({
      ConnectionArn:
        'arn:aws:codeconnections:eu-central-1:333333333333:connection/11111111-2222-3333-4444-555555555555',
      FullRepositoryId: 'orion-team/orion-db-stack',
      BranchName: 'release',
    });
  });

  test('its synth step reads the same file, so self-mutation rebuilds exactly this pipeline', () => {
    const command = synthCommand(template);
    expect(command).toBe(`npx cdk synth -c pipeline=true -c config=${SETTINGS}`);
    // What the synth step synthesizes is what was deployed: the same template, not the example's.
    const again = pipelineStack(contextOf(command)).template.toJSON();
    expect(again).toEqual(template.toJSON());
    expect(JSON.stringify(again)).not.toContain(EXAMPLE_PIPELINE_CONFIG.connectionArn);
  });

  test('context the synth step would not carry is refused, naming where it belongs', () => {
    for (const key of ['alarmEmail', 'account', 'env'])
      expect(() => synthApp({ pipeline: 'true', config: SETTINGS, [key]: 'x' })).toThrow(
        new RegExp(`-c ${key} cannot be used with -c pipeline=true: .*put them in the file given with -c config=FILE`),
      );
  });

  test('a settings file outside the repository, or with unknown settings, is refused', () => {
    expect(() => synthApp({ pipeline: 'true', config: '/etc/orion.json' })).toThrow(
      /give a relative path inside the repository/,
    );
    const dir = migrationsDir({
      'bad.json': JSON.stringify({ environments: { prod: { alarmEmial: 'x@y.z', region: 'eu-west-1' } } }),
    });
    const relative = require('node:path').relative(process.cwd(), join(dir, 'bad.json'));
    if (!relative.startsWith('..'))
      expect(() => synthApp({ config: relative })).toThrow(
        /environments\.prod\.alarmEmial: unknown setting[\s\S]*environments\.prod\.region: set by the deploy/,
      );
  });
});

describe('the prod approval’s NewToProd step (lib/pipeline/new-to-prod.ts)', () => {
  const cfn = mockClient(CloudFormationClient);
  const client = new CloudFormationClient({ region: 'eu-west-1' });
  const many = migrationsDir(
    Object.fromEntries(
      Array.from({ length: 60 }, (_, i) => [
        `${String(i + 1).padStart(6, '0')}_migration_${i + 1}.up.sql`,
        'SELECT 1;',
      ]),
    ),
  );

  test('reads prod’s version from its stack output; a stack not yet created is at none', async () => {
    cfn.reset();
    cfn.on(DescribeStacksCommand, { StackName: 'Orion-prod' }).resolves({
      Stacks: [
        {
          StackName: 'Orion-prod',
          StackStatus: 'UPDATE_COMPLETE',
          CreationTime: new Date(),
          Outputs: [{ OutputKey: 'SchemaVersion', OutputValue: '1' }],
        },
      ],
    });
    expect(await prodSchemaVersion(client, 'Orion-prod')).toBe('1');
    cfn
      .on(DescribeStacksCommand, { StackName: 'Orion-prod' })
      .rejects(Object.assign(new Error('Stack with id Orion-prod does not exist'), { name: 'ValidationError' }));
    expect(await prodSchemaVersion(client, 'Orion-prod')).toBe('none');
    cfn
      .on(DescribeStacksCommand, { StackName: 'Orion-prod' })
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    await expect(prodSchemaVersion(client, 'Orion-prod')).rejects.toThrow('denied');
  });

  test('lists only the migrations above prod’s version, shortened to fit the approval', () => {
    expect(migrationsNewerThan(SOP_MIGRATIONS, '1')).toEqual(['000002_activities_start_time_speaker_idx']);
    expect(approvalVariables('2', SOP_MIGRATIONS)).toEqual({ PROD_SCHEMA_VERSION: '2', NEW_TO_PROD: 'none' });
    expect(approvalVariables('none', SOP_MIGRATIONS).NEW_TO_PROD).toBe(
      '2: 000001_init_schema, 000002_activities_start_time_speaker_idx',
    );
    const long = approvalVariables('10', many).NEW_TO_PROD;
    expect(long).toMatch(/^50: 000011_migration_11, 000012_migration_12, .*, … \d+ more$/);
    expect(long.length).toBeLessThanOrEqual(850);
    expect(approvalVariables(undefined, SOP_MIGRATIONS).PROD_SCHEMA_VERSION).toMatch(/^unknown/);
  });
});

describe('GitHub OIDC roles', () => {
  const oidc = (context: Record<string, string> = {}) => {
    const app = synthApp({
      env: 'dev',
      github: 'example-org/orion-db-stack',
      account: '111111111111',
      region: 'eu-west-1',
      ...context,
    });
    const stack = app.node.findChild('Orion-github-oidc') as Stack;
    return { stack, t: Template.fromStack(stack) };
  };

  test('each role trusts only this repository in its GitHub environment, and may only assume the CDK bootstrap roles', () => {
    const { t } = oidc();
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

  test('an account that has the GitHub provider already is given its ARN: no second provider is created', () => {
    const arn = 'arn:aws:iam::111111111111:oidc-provider/token.actions.githubusercontent.com';
    const { t } = oidc({ githubOidcProviderArn: arn });
    expect(JSON.stringify(t.toJSON())).not.toMatch(/OpenIdConnectProvider|OIDCProvider/);
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectLike({ Statement: [Match.objectLike({ Principal: { Federated: arn } })] }),
    });
    expect(JSON.stringify(oidc().t.toJSON())).toMatch(/Custom::AWSCDKOpenIdConnectProvider/);
    expect(() => oidc({ githubOidcProviderArn: 'arn:aws:iam::111111111111:role/x' })).toThrow(
      /-c githubOidcProviderArn: expected arn:aws:iam::<account>:oidc-provider\/token\.actions\.githubusercontent\.com/,
    );
  });

  test('both roles in one account are flagged (either could deploy prod); one per account is not', () => {
    const shared = oidc().stack;
    expect(
      Annotations.fromStack(shared).findWarning('*', Match.stringLikeRegexp('Keep prod in its own account')),
    ).toHaveLength(1);
    const { stack, t } = oidc({ githubEnvironments: 'production' });
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    t.resourceCountIs('AWS::IAM::Role', 2); // the prod role, and the CDK's provider-handler role
    expect(() => oidc({ githubEnvironments: 'qa' })).toThrow(/unknown GitHub environment "qa"/);
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

  test('runs on a supported Node.js LTS (22 or later; 20 left support in April 2026)', () => {
    for (const job of Object.values<any>(wf.jobs)) {
      const setup = job.steps.find((st: any) => String(st.uses).startsWith('actions/setup-node@'));
      expect(Number(setup.with['node-version'])).toBeGreaterThanOrEqual(22);
    }
  });

  test('holds no secret in plain text', () => {
    expect(text).not.toMatch(/AKIA[0-9A-Z]{16}|aws_secret_access_key|password\s*[:=]/i);
    expect(text).not.toMatch(/secrets\./);
  });
});

describe('scripts/require-up-to-date.mjs (the staging check)', () => {
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
