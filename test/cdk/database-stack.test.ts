import { App, Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { LAST_POLL_AFTER_ENV, RESOURCE_TYPE } from '../../lambda/schema-migrator/properties';
import { defineOrionApp } from '../../lib/app';
import { ENVIRONMENT_NAMES, ENVIRONMENTS } from '../../lib/config/environments';
import type { DatabaseStack } from '../../lib/database-stack';
import { lastPollAfter, TIME_BUDGET, worstCaseSeconds } from '../../lib/schema-migrations';
import { type SynthesizedStack, synthStack } from '../helpers/cdk';
import { migrationsDir } from '../helpers/db';

/** One environment through the app's own wiring (context and settings file), as `cdk synth -c env=…` builds it. */
function synthApp(context: Record<string, string>): SynthesizedStack {
  const app = new App({
    context: { 'aws:cdk:bundling-stacks': [], account: '123456789012', region: 'eu-west-1', ...context },
  });
  defineOrionApp(app);
  const stack = app.node.findChild(`Orion-${context.env}`) as DatabaseStack;
  return { stack, template: Template.fromStack(stack), errors: [] };
}

const stacks = {} as Record<(typeof ENVIRONMENT_NAMES)[number], SynthesizedStack>;
// Synthesis is CPU-bound (cdk-nag, the lint gate): minutes when a 2-core machine is busy.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

beforeAll(() => {
  for (const name of ENVIRONMENT_NAMES) stacks[name] = synthStack(name);
});

describe.each(ENVIRONMENT_NAMES)('the %s stack', (name) => {
  const config = ENVIRONMENTS[name];

  test('has no unacknowledged cdk-nag finding', () => {
    expect(stacks[name].errors).toEqual([]);
  });

  test('runs PostgreSQL encrypted with its KMS key, with the environment’s availability and protection', () => {
    stacks[name].template.hasResourceProperties('AWS::RDS::DBInstance', {
      DBInstanceIdentifier: `orion-${name}`,
      Engine: 'postgres',
      EngineVersion: config.engineVersion,
      DBInstanceClass: config.instanceClass,
      MultiAZ: config.multiAz,
      StorageEncrypted: true,
      KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] },
      StorageType: 'gp3',
      AllocatedStorage: String(config.allocatedStorageGiB),
      MaxAllocatedStorage: config.maxAllocatedStorageGiB,
      BackupRetentionPeriod: config.backupRetentionDays,
      Port: String(config.port),
      EnablePerformanceInsights: true,
      MonitoringInterval: 60,
      AutoMinorVersionUpgrade: true,
      EnableCloudwatchLogsExports: ['postgresql', 'upgrade'],
      DBSubnetGroupName: { Ref: 'SubnetGroup' },
    });
    stacks[name].template.hasResource('AWS::RDS::DBInstance', {
      DeletionPolicy: 'Snapshot',
      UpdateReplacePolicy: 'Snapshot',
    });
  });

  test('forces TLS and logs slow statements and lock waits', () => {
    stacks[name].template.hasResourceProperties('AWS::RDS::DBParameterGroup', {
      Family: `postgres${config.engineVersion.split('.')[0]}`,
      Parameters: { 'rds.force_ssl': '1', log_min_duration_statement: '1000', log_lock_waits: '1' },
    });
  });

  test('generates the master and app secrets and rotates both (single- and multi-user)', () => {
    const t = stacks[name].template;
    t.hasResourceProperties('AWS::SecretsManager::Secret', {
      Name: `orion/${name}/master`,
      GenerateSecretString: Match.objectLike({ SecretStringTemplate: '{"username":"orion_admin"}' }),
    });
    const app = Object.values(
      t.findResources('AWS::SecretsManager::Secret', { Properties: { Name: `orion/${name}/app` } }),
    );
    expect(app).toHaveLength(1);
    expect(JSON.stringify(app[0].Properties.GenerateSecretString.SecretStringTemplate)).toContain(
      `{\\"username\\":\\"orion_app\\",\\"dbname\\":\\"${config.databaseName}\\",\\"masterarn\\":\\"`,
    );
    t.resourceCountIs('AWS::SecretsManager::RotationSchedule', 2);
    t.resourceCountIs('AWS::SecretsManager::SecretTargetAttachment', 2);
    t.resourceCountIs('AWS::Serverless::Application', 2);
    const apps = Object.values(t.toJSON().Mappings as Record<string, { aws: { applicationId: string } }>).map((m) =>
      m.aws.applicationId.split('/').pop(),
    );
    expect(apps.sort()).toEqual([
      'SecretsManagerRDSPostgreSQLRotationMultiUser',
      'SecretsManagerRDSPostgreSQLRotationSingleUser',
    ]);
  });

  test('declares Custom::SchemaMigrations with every property the handler reads', () => {
    const resources = stacks[name].template.findResources(RESOURCE_TYPE);
    const [props] = Object.values(resources).map((r) => r.Properties);
    expect(Object.keys(props).sort()).toEqual(
      [
        'ServiceToken',
        'ServiceTimeout',
        'DeployId',
        'MigrationsHash',
        'DatabaseName',
        'OwnerRole',
        'GroupRole',
        'AppRole',
        'MasterSecretArn',
        'AppSecretArn',
        'InstanceIdentifier',
        'SnapshotPrefix',
        'SnapshotRetention',
        'AdoptedInstance',
        'RestoreSubnetGroupName',
        'RestoreSecurityGroupIds',
        'RestoreParameterGroupName',
        'RestoreMultiAz',
        'RestoreInstanceClass',
        'RestoreStorageType',
        'RestoreDeletionProtection',
        'RestorePort',
        'Rollback',
        'SchemaVersion',
        'DriftPolicy',
      ].sort(),
    );
    expect(props).toMatchObject({
      DeployId: 'deploy-1',
      MigrationsHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      DatabaseName: config.databaseName,
      OwnerRole: 'orion_owner',
      GroupRole: 'orion_app_rw',
      AppRole: 'orion_app',
      InstanceIdentifier: `orion-${name}`,
      SnapshotPrefix: `orion-${name}`,
      SnapshotRetention: '5',
      AdoptedInstance: 'false',
      RestoreSubnetGroupName: { Ref: 'SubnetGroup' },
      RestoreMultiAz: String(config.multiAz),
      RestoreInstanceClass: config.instanceClass,
      RestoreStorageType: 'gp3',
      RestoreDeletionProtection: String(config.deletionProtection),
      RestorePort: String(config.port),
      Rollback: config.rollback,
      SchemaVersion: expect.stringMatching(/^\d+$/),
      DriftPolicy: name === 'dev' ? 'warn' : 'fail',
    });
  });

  test('runs the migration Lambda on Node 24 inside the VPC, verifying TLS against the RDS CA bundle', () => {
    stacks[name].template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.onEvent',
      Timeout: 120,
      VpcConfig: { SubnetIds: Match.anyValue(), SecurityGroupIds: Match.anyValue() },
      Environment: {
        Variables: Match.objectLike({
          NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
          POWERTOOLS_SERVICE_NAME: 'schema-migrator',
        }),
      },
    });
    stacks[name].template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.isComplete',
    });
  });

  test('scopes the migration role to this instance, its snapshots, its secrets and this stack — no Resource "*" of ours', () => {
    const t = stacks[name].template;
    const policies = t.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: Match.stringLikeRegexp('^SchemaMigrationsRole') }] },
    });
    const statements = Object.values(policies).flatMap((p) => p.Properties.PolicyDocument.Statement);
    const resources = statements.flatMap((s: any) => [s.Resource].flat());
    expect(resources).not.toContain('*');
    const text = JSON.stringify(statements);
    expect(text).toContain(`:snapshot:orion-${name}-pre-*`);
    expect(text).toContain(`:db:orion-${name}"`);
    expect(text).toContain(`:stack/Orion-${name}/*`);
    const actions = statements.flatMap((s: any) => [s.Action].flat());
    expect(actions).toEqual(
      expect.arrayContaining([
        'rds:CreateDBSnapshot',
        'rds:RestoreDBInstanceFromDBSnapshot',
        'rds:ModifyDBInstance',
        'secretsmanager:GetSecretValue',
        'cloudformation:DescribeStacks',
      ]),
    );
    expect(actions).not.toContain('rds:DeleteDBInstance');
  });

  test('admits only the migration Lambda and configured application security groups to the database', () => {
    const t = stacks[name].template;
    const ingress = Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).filter((r) =>
      r.Properties.GroupId?.['Fn::GetAtt']?.[0]?.startsWith('DatabaseSecurityGroup'),
    );
    expect(ingress.length).toBeGreaterThanOrEqual(1);
    const sources = ingress.map((r) => {
      expect(r.Properties.CidrIp).toBeUndefined();
      const port = r.Properties.FromPort;
      expect(port['Fn::GetAtt']?.[1] ?? String(port)).toMatch(/^(Endpoint\.Port|5433)$/); // the database port only
      return r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0];
    });
    // The migration Lambda, the two rotation Lambdas and the on-call bastion, nothing else.
    expect(sources.map((s: string) => s.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'BastionSecurityGroup',
      'DatabaseAppRotationSecurityGroup',
      'DatabaseRotationSingleUserSecurityGroup',
      'SchemaMigrationsSecurityGroup',
    ]);
  });

  test('an on-call bastion reachable only through SSM: no inbound rule, IMDSv2, encrypted disk, isolated subnets', () => {
    const t = stacks[name].template;
    t.hasResourceProperties('AWS::EC2::Instance', {
      InstanceType: 't4g.nano',
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: Match.objectLike({ Encrypted: true }) }],
    });
    const [bastion] = Object.values(t.findResources('AWS::EC2::Instance'));
    expect(bastion.Properties).not.toHaveProperty('AvailabilityZone');
    const sgs = t.findResources('AWS::EC2::SecurityGroup', {
      Properties: { GroupDescription: Match.stringLikeRegexp('bastion') },
    });
    const [sg] = Object.values(sgs);
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    expect(
      Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).filter((r) =>
        JSON.stringify(r.Properties.GroupId).includes(Object.keys(sgs)[0]),
      ),
    ).toEqual([]);
    t.resourceCountIs('AWS::EC2::LaunchTemplate', 1); // IMDSv2
    t.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: { MetadataOptions: { HttpTokens: 'required' } },
    });
    for (const service of ['ssm', 'ssmmessages', 'ec2messages'])
      t.hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: `com.amazonaws.eu-west-1.${service}` });
  });

  test('alarms on CPU, storage, memory, connections, migration failures and drift, to an encrypted SNS topic', () => {
    const t = stacks[name].template;
    t.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    for (const metric of ['CPUUtilization', 'FreeStorageSpace', 'FreeableMemory', 'DatabaseConnections']) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metric,
        Namespace: 'AWS/RDS',
        AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
      });
    }
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'MigrationFailures',
      Namespace: 'Orion/SchemaMigrations',
      Threshold: 1,
      TreatMissingData: 'notBreaching',
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DriftFound',
      Namespace: 'Orion/SchemaMigrations',
      Threshold: 1,
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^Alarms') }],
    });
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  test('rotation waits for the roles: the custom resource depends on the instance resource, both rotation schedules on it', () => {
    const t = stacks[name].template.toJSON();
    const ids = (type: string) => Object.keys(t.Resources).filter((id) => t.Resources[id].Type === type);
    const [cr] = ids(RESOURCE_TYPE);
    const [instance] = ids('AWS::RDS::DBInstance');
    const schedules = ids('AWS::SecretsManager::RotationSchedule');
    expect(schedules).toHaveLength(2);
    const dependsOn: string[] = t.Resources[cr].DependsOn;
    expect(dependsOn).toContain(instance);
    expect(dependsOn).toEqual(expect.arrayContaining(ids('AWS::SecretsManager::SecretTargetAttachment')));
    for (const schedule of schedules) {
      expect(dependsOn).not.toContain(schedule);
      expect(t.Resources[schedule].DependsOn).toContain(cr);
    }
  });

  test('a failed first create can roll back: deletion protection is the custom resource’s, nothing kept by name', () => {
    const t = stacks[name].template;
    const [instance] = Object.values(t.findResources('AWS::RDS::DBInstance'));
    expect(instance.Properties).not.toHaveProperty('DeletionProtection');
    const [cr] = Object.values(t.findResources(RESOURCE_TYPE));
    expect(cr.Properties.RestoreDeletionProtection).toBe(String(config.deletionProtection));
    // Deleted by a rollback of the create (secrets without a recovery window, so the names are free again)…
    t.hasResource('AWS::RDS::DBSubnetGroup', { DeletionPolicy: 'Delete' });
    expect(Object.values(t.findResources('AWS::RDS::DBSubnetGroup'))[0].Properties).not.toHaveProperty(
      'DBSubnetGroupName',
    );
    for (const secret of Object.values(t.findResources('AWS::SecretsManager::Secret')))
      expect(secret.DeletionPolicy).toBe('Delete');
    // …while the key survives a stack deletion (its snapshots need it), but not a failed create.
    t.hasResource('AWS::KMS::Key', { DeletionPolicy: 'RetainExceptOnCreate', UpdateReplacePolicy: 'Retain' });
  });

  test('the custom resource’s hour: explicit service timeout, and a waiter that leaves room for the invocations', () => {
    const t = stacks[name].template;
    const [cr] = Object.values(t.findResources(RESOURCE_TYPE));
    expect(cr.Properties.ServiceTimeout).toBe('3600');
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.onEvent', Timeout: 120 });
    t.hasResourceProperties('AWS::Lambda::Function', { Handler: 'index.isComplete', Timeout: 840 });
    const [machine] = Object.values(t.findResources('AWS::StepFunctions::StateMachine'));
    const definition = JSON.stringify(machine.Properties.DefinitionString);
    expect(definition).toContain('\\"IntervalSeconds\\":60,\\"MaxAttempts\\":25,\\"BackoffRate\\":1');
    // onEvent 2 + migrating 14 + reconnecting 5 + pauses 25 + 25 polls × 20 s ≈ 54 minutes, under the hour.
    expect(worstCaseSeconds()).toBe(120 + 840 + 300 + 1500 + 25 * 20);
    expect(worstCaseSeconds()).toBeLessThan(Number(cr.Properties.ServiceTimeout));
    // The framework's own functions wait for ours: theirs are 15 minutes.
    const framework = Object.values(t.findResources('AWS::Lambda::Function')).filter((f) =>
      String(f.Properties.Handler).startsWith('framework.'),
    );
    expect(framework.map((f) => f.Properties.Timeout)).toEqual([900, 900, 900]);
  });

  test('the last poll start comes from the time budget: both functions carry it, and a poll started then ends inside the hour', () => {
    const t = stacks[name].template;
    const seconds = lastPollAfter().toSeconds();
    for (const handler of ['index.onEvent', 'index.isComplete'])
      t.hasResourceProperties('AWS::Lambda::Function', {
        Handler: handler,
        Environment: { Variables: Match.objectLike({ [LAST_POLL_AFTER_ENV]: String(seconds) }) },
      });
    expect(seconds).toBe(45 * 60);
    // Before onEvent's start time (its cold start), the last poll's whole timeout, the framework's answer.
    const { serviceTimeout, isCompleteTimeout, pollAllowance } = TIME_BUDGET;
    expect(
      pollAllowance.toSeconds() + seconds + isCompleteTimeout.toSeconds() + pollAllowance.toSeconds(),
    ).toBeLessThan(serviceTimeout.toSeconds());
    // A longer invocation moves it earlier, whole minutes rounded down: 60 - 15 - 2 × 20 s is 44 min 20 s.
    expect(lastPollAfter({ ...TIME_BUDGET, isCompleteTimeout: Duration.minutes(15) }).toSeconds()).toBe(44 * 60);
  });

  test('outputs endpoint, port, database, secret ARNs, schema version, the bastion and a DATABASE_URL template without credentials', () => {
    const outputs = stacks[name].template.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual([
      'AppSecretArn',
      'BastionInstanceId',
      'DatabaseName',
      'DatabaseUrlTemplate',
      'Endpoint',
      'MasterSecretArn',
      'Port',
      'PortForwardCommand',
      'SchemaVersion',
    ]);
    // Multi-user rotation alternates orion_app and orion_app_clone: the username comes from the secret too.
    const url = JSON.stringify(outputs.DatabaseUrlTemplate.Value);
    expect(url).toContain('postgres://<username>:<password>@');
    expect(url).not.toContain('orion_app:');
    expect(url).toContain(`/${config.databaseName}?sslmode=verify-full`);
    expect(outputs.DatabaseUrlTemplate.Description).toMatch(/orion_app and orion_app_clone/);
    expect(outputs.SchemaVersion.Value).toEqual({
      'Fn::GetAtt': [expect.stringMatching(/^SchemaMigrations/), 'ToVersion'],
    });
  });

  test('puts the database in isolated subnets with VPC endpoints for Secrets Manager, RDS and CloudFormation, and flow logs', () => {
    const t = stacks[name].template;
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::FlowLog', 1);
    for (const service of ['secretsmanager', 'rds', 'cloudformation']) {
      t.hasResourceProperties('AWS::EC2::VPCEndpoint', {
        ServiceName: `com.amazonaws.eu-west-1.${service}`,
        PrivateDnsEnabled: true,
      });
    }
  });

  test('contains no password or secret value: only generated secrets and dynamic references', () => {
    const text = JSON.stringify(stacks[name].template.toJSON());
    const passwords = [...text.matchAll(/"(?:MasterUserPassword|Password)":(\{[^}]*\}|"[^"]*")/g)].map((m) => m[1]);
    expect(passwords.length).toBeGreaterThan(0);
    for (const p of passwords) expect(p).toContain('{{resolve:secretsmanager:');
    expect(text).not.toMatch(/"SecretString":/);
    expect(text).toMatch(/"GenerateSecretString"/);
  });
});

describe('settings', () => {
  test('zones come from the account at deploy time, or from config — never guessed as <region>a/b', () => {
    const subnetZones = (s: SynthesizedStack) =>
      Object.values(s.template.findResources('AWS::EC2::Subnet')).map((r) => r.Properties.AvailabilityZone);
    expect(subnetZones(stacks.prod)).toEqual([
      { 'Fn::Select': [0, { 'Fn::GetAZs': '' }] },
      { 'Fn::Select': [1, { 'Fn::GetAZs': '' }] },
    ]);
    expect(subnetZones(synthStack('dev', { availabilityZones: ['eu-west-1b', 'eu-west-1c'] }))).toEqual([
      'eu-west-1b',
      'eu-west-1c',
    ]);
  });

  test('prod without an alarm subscriber is a synth warning; an e-mail from context or the settings file subscribes', () => {
    const warnings = (s: SynthesizedStack) =>
      Annotations.fromStack(s.stack).findWarning('*', Match.stringLikeRegexp('prod alarms reach nobody'));
    expect(warnings(stacks.prod)).toHaveLength(1);
    expect(warnings(stacks.staging)).toHaveLength(0);
    const fromContext = synthApp({ env: 'prod', alarmEmail: 'oncall@example.org' });
    fromContext.template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.org',
    });
    expect(warnings(fromContext)).toHaveLength(0);
    const fromFile = synthApp({
      env: 'prod',
      region: 'eu-central-1',
      config: 'test/fixtures/pipeline/orion.config.json',
    });
    fromFile.template.hasResourceProperties('AWS::SNS::Subscription', { Endpoint: 'oncall@example.org' });
    expect(() => synthApp({ env: 'prod', alarmEmail: 'oncall' })).toThrow(/prod\.alarmEmail: is not an e-mail address/);
  });

  test('no bastion when the environment turns it off', () => {
    const { template } = synthStack('dev', { bastion: false });
    template.resourceCountIs('AWS::EC2::Instance', 0);
    expect(Object.keys(template.findOutputs('*'))).not.toContain('BastionInstanceId');
  });
});

describe('schema migrations wiring', () => {
  test('the migrations hash follows the folder contents', () => {
    const a = synthStack('dev', {}, { migrationsDir: migrationsDir({ '1_a.up.sql': 'SELECT 1;' }) });
    const b = synthStack('dev', {}, { migrationsDir: migrationsDir({ '1_a.up.sql': 'SELECT 2;' }) });
    const hash = (s: SynthesizedStack) =>
      Object.values(s.template.findResources(RESOURCE_TYPE))[0].Properties.MigrationsHash;
    expect(hash(a)).not.toBe(hash(b));
  });

  test('configured application security groups are admitted on the database port', () => {
    const { template } = synthStack('dev', { applicationSecurityGroupIds: ['sg-0123456789abcdef0'] });
    template.hasResourceProperties('AWS::EC2::SecurityGroup', {
      SecurityGroupIngress: Match.arrayWith([
        Match.objectLike({ SourceSecurityGroupId: 'sg-0123456789abcdef0', FromPort: 5433 }),
      ]),
    });
  });

  test('an existing VPC is used as given, without lookups', () => {
    const { template, errors } = synthStack('staging', {
      existingVpc: {
        vpcId: 'vpc-0123456789abcdef0',
        cidrBlock: '10.9.0.0/16',
        availabilityZones: ['eu-west-1a', 'eu-west-1b'],
        subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
      },
    });
    template.resourceCountIs('AWS::EC2::VPC', 0);
    template.hasResourceProperties('AWS::RDS::DBSubnetGroup', {
      SubnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0aaaaaaaaaaaaaaa2'],
    });
    expect(errors.filter((e) => !e.includes('VPC7'))).toEqual([]);
  });
});
