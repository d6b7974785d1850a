import { Match } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test } from 'vitest';
import { RESOURCE_TYPE } from '../../lambda/schema-migrator/properties';
import { ENVIRONMENT_NAMES, ENVIRONMENTS } from '../../lib/config/environments';
import { type SynthesizedStack, synthStack } from '../helpers/cdk';
import { migrationsDir } from '../helpers/db';

const stacks = {} as Record<(typeof ENVIRONMENT_NAMES)[number], SynthesizedStack>;
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
      DeletionProtection: config.deletionProtection,
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
        'RestoreSubnetGroupName',
        'RestoreSecurityGroupIds',
        'RestoreParameterGroupName',
        'RestoreMultiAz',
        'RestoreInstanceClass',
        'RestoreKmsKeyId',
        'RestoreStorageType',
        'RestoreDeletionProtection',
        'RestorePort',
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
      RestoreSubnetGroupName: { Ref: 'SubnetGroup' },
      RestoreMultiAz: String(config.multiAz),
      RestoreInstanceClass: config.instanceClass,
      RestoreStorageType: 'gp3',
      RestoreDeletionProtection: String(config.deletionProtection),
      RestorePort: String(config.port),
    });
  });

  test('runs the migration Lambda on Node 24 inside the VPC, verifying TLS against the RDS CA bundle', () => {
    stacks[name].template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Handler: 'index.onEvent',
      Timeout: 900,
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
      expect(r.Properties.FromPort['Fn::GetAtt'][1]).toBe('Endpoint.Port'); // the database port only
      return r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0];
    });
    // The migration Lambda and the two rotation Lambdas, nothing else.
    expect(sources.map((s: string) => s.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'DatabaseAppRotationSecurityGroup',
      'DatabaseRotationSingleUserSecurityGroup',
      'SchemaMigrationsSecurityGroup',
    ]);
  });

  test('alarms on CPU, storage, memory, connections and migration failures, to an encrypted SNS topic', () => {
    const t = stacks[name].template;
    t.resourceCountIs('AWS::CloudWatch::Alarm', 5);
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
    t.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });

  test('outputs endpoint, port, database, secret ARNs and a DATABASE_URL template without the password', () => {
    const outputs = stacks[name].template.findOutputs('*');
    expect(Object.keys(outputs).sort()).toEqual([
      'AppSecretArn',
      'DatabaseName',
      'DatabaseUrlTemplate',
      'Endpoint',
      'MasterSecretArn',
      'Port',
    ]);
    const url = JSON.stringify(outputs.DatabaseUrlTemplate.Value);
    expect(url).toContain('postgres://orion_app:<password from AppSecretArn>@');
    expect(url).toContain(`/${config.databaseName}?sslmode=require`);
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
