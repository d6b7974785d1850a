/**
 * An environment that adopts a hand-built RDS instance (config `existingInstance`, the fixture of the
 * README's walkthrough): the stack creates no instance, and everything it builds points at that one.
 */
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, test, vi } from 'vitest';
import { parseProperties, RESOURCE_TYPE } from '../../lambda/schema-migrator/properties';
import { defineOrionApp } from '../../lib/app';
import type { DatabaseStack } from '../../lib/database-stack';
import { type SynthesizedStack, synthStack } from '../helpers/cdk';

const CONFIG = 'test/fixtures/existing-instance/orion.config.json';
const ID = 'orion-prod';
const ENDPOINT = 'orion-prod.c9akciq32e1x.eu-west-1.rds.amazonaws.com';
const SG = 'sg-0a1b2c3d4e5f60733';
const MASTER = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orion/prod/master-AbC123';
const KEY = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

// Synthesis is CPU-bound (cdk-nag, the lint gate): minutes when a 2-core machine is busy.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

/** `cdk synth -c env=prod -c config=<fixture>`, through the app's own wiring, cdk-nag included. */
function synthAdopting(context: Record<string, string> = {}): SynthesizedStack {
  const app = new App({
    context: {
      'aws:cdk:bundling-stacks': [],
      account: '123456789012',
      region: 'eu-west-1',
      env: 'prod',
      config: CONFIG,
      deployId: 'deploy-1',
      ...context,
    },
  });
  defineOrionApp(app);
  const stack = app.node.findChild('Orion-prod') as DatabaseStack;
  const template = Template.fromStack(stack);
  const errors = Annotations.fromStack(stack)
    .findError('*', Match.anyValue())
    .map((m) => `${m.id}: ${String(m.entry.data).slice(0, 200)}`);
  return { stack, template, errors };
}

let adopting: SynthesizedStack;
let t: Template;
let resources: Record<string, any>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
/** The master secret as the stack refers to it: through its attachment to the instance (the same ARN). */
const master = () => ({
  Ref: ofType('AWS::SecretsManager::SecretTargetAttachment').find(([, r]) => r.Properties.SecretId === MASTER)![0],
});

beforeAll(() => {
  adopting = synthAdopting();
  t = adopting.template;
  resources = t.toJSON().Resources;
});

describe('an environment with existingInstance', () => {
  test('creates no instance, no instance settings and no master secret, and has no unacknowledged cdk-nag finding', () => {
    expect(adopting.errors).toEqual([]);
    for (const type of [
      'AWS::RDS::DBInstance',
      'AWS::RDS::DBSubnetGroup',
      'AWS::RDS::DBParameterGroup',
      'AWS::EC2::VPC',
      'AWS::EC2::SecurityGroup',
    ])
      expect(
        ofType(type).filter(([id]) => type !== 'AWS::EC2::SecurityGroup' || id.startsWith('DatabaseSecurityGroup')),
      ).toEqual([]);
    // The app secret is the only secret the stack owns.
    t.resourceCountIs('AWS::SecretsManager::Secret', 1);
    t.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'orion/prod/app' });
  });

  test('the master and app secrets are attached to the adopted instance; the app secret names the master secret', () => {
    const attachments = ofType('AWS::SecretsManager::SecretTargetAttachment').map(([, r]) => r.Properties);
    expect(attachments).toEqual([
      { SecretId: MASTER, TargetId: ID, TargetType: 'AWS::RDS::DBInstance' },
      { SecretId: { Ref: expect.stringMatching(/^AppSecret/) }, TargetId: ID, TargetType: 'AWS::RDS::DBInstance' },
    ]);
    const [[, app]] = ofType('AWS::SecretsManager::Secret');
    expect(JSON.stringify(app.Properties.GenerateSecretString.SecretStringTemplate)).toContain(
      `{\\"username\\":\\"orion_app\\",\\"dbname\\":\\"orion_prod\\",\\"masterarn\\":\\"",{"Ref":"${master().Ref}"}`,
    );
  });

  test('rotates the master secret (single user) and the app secret (multi-user, with the master secret), after the migrations', () => {
    const schedules = ofType('AWS::SecretsManager::RotationSchedule');
    expect(schedules).toHaveLength(2);
    const [[migrationsId]] = ofType(RESOURCE_TYPE);
    for (const [, s] of schedules) expect(s.DependsOn).toContain(migrationsId);
    const secrets = schedules.map(([, s]) => s.Properties.SecretId);
    expect(secrets).toContainEqual(master());
    expect(secrets).toContainEqual({ Ref: expect.stringMatching(/^AppSecretAttachment/) });
    const apps = Object.values(t.toJSON().Mappings as Record<string, { aws: { applicationId: string } }>).map((m) =>
      m.aws.applicationId.split('/').pop(),
    );
    expect(apps.sort()).toEqual([
      'SecretsManagerRDSPostgreSQLRotationMultiUser',
      'SecretsManagerRDSPostgreSQLRotationSingleUser',
    ]);
    t.hasResourceProperties('AWS::Serverless::Application', {
      Parameters: Match.objectLike({ masterSecretArn: master() }),
    });
  });

  test('the instance alarms watch the adopted instance', () => {
    for (const metric of ['CPUUtilization', 'FreeStorageSpace', 'FreeableMemory', 'DatabaseConnections'])
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metric,
        Namespace: 'AWS/RDS',
        Dimensions: [{ Name: 'DBInstanceIdentifier', Value: ID }],
      });
    // 10 % of the allocated storage the settings give for it (100 GiB in the fixture).
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'FreeStorageSpace',
      Threshold: 100 * 1024 ** 3 * 0.1,
    });
  });

  test('Custom::SchemaMigrations targets the adopted instance: identifier, master secret, adoption, baseline', () => {
    const [[, cr]] = ofType(RESOURCE_TYPE);
    const p = cr.Properties;
    expect(p).toMatchObject({
      InstanceIdentifier: ID,
      SnapshotPrefix: ID,
      MasterSecretArn: master(),
      AdoptedInstance: 'true',
      BaselineVersion: '1',
      RestoreSecurityGroupIds: [SG],
      RestorePort: '5432',
      RestoreDeletionProtection: 'true',
    });
    // What the stack does not know of a hand-built instance, the restore reads from it.
    for (const key of [
      'RestoreSubnetGroupName',
      'RestoreParameterGroupName',
      'RestoreMultiAz',
      'RestoreInstanceClass',
      'RestoreStorageType',
    ])
      expect(p).not.toHaveProperty(key);
    // The handler reads these properties as the adoption they describe.
    const settings = parseProperties({ ...p, MasterSecretArn: MASTER, AppSecretArn: 'arn:app' });
    expect(settings).toMatchObject({
      instanceIdentifier: ID,
      adoptedInstance: true,
      baselineVersion: '1',
      restore: { fromInstance: true, securityGroupIds: [SG], port: 5432, deletionProtection: true },
    });
  });

  test('the migration Lambda is admitted on the instance’s port into the instance’s security group, before it runs', () => {
    const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(([, r]) => r.Properties.GroupId === SG);
    const sources = ingress.map(([, r]) => {
      expect(r.Properties).toMatchObject({ IpProtocol: 'tcp', FromPort: 5432, ToPort: 5432 });
      expect(r.Properties.CidrIp).toBeUndefined();
      return r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '');
    });
    expect(sources.sort()).toEqual([
      'AppRotationSecurityGroup',
      'BastionSecurityGroup',
      'MasterRotationSecurityGroup',
      'SchemaMigrationsSecurityGroup',
    ]);
    const [[, cr]] = ofType(RESOURCE_TYPE);
    const migrationsRule = ingress.find(([, r]) =>
      r.Properties.SourceSecurityGroupId['Fn::GetAtt'][0].startsWith('SchemaMigrationsSecurityGroup'),
    )!;
    expect(cr.DependsOn).toContain(migrationsRule[0]);
    expect(cr.DependsOn).toEqual(
      expect.arrayContaining(ofType('AWS::SecretsManager::SecretTargetAttachment').map(([id]) => id)),
    );
  });

  test('the migration role reaches the adopted identifier, its -restore-/-failed- names, its snapshots and its key only', () => {
    const [[, policy]] = ofType('AWS::IAM::Policy').filter(([, r]) =>
      JSON.stringify(r.Properties.Roles).includes('SchemaMigrationsRole'),
    );
    const statements: any[] = policy.Properties.PolicyDocument.Statement;
    const text = (v: unknown) =>
      JSON.stringify(v)
        .replace(/\{"Ref":"AWS::Partition"\}/g, 'aws')
        .replace(/","/g, '');
    const bySid = Object.fromEntries(statements.filter((s) => s.Sid).map((s) => [s.Sid, text(s.Resource)]));
    expect(bySid.Modify).toContain(`:db:${ID}"`);
    expect(bySid.Modify).toContain(`:db:${ID}-*`);
    expect(bySid.Modify).not.toMatch(/:db:\*|:db:orion-\*/);
    expect(bySid.Snapshots).toContain(`:snapshot:${ID}-pre-*`);
    expect(bySid.Restore).toContain(`:db:${ID}-*`);
    // The hand-built instance's subnet and parameter groups are read from it, so named by wildcard — here only.
    expect(bySid.Restore).toContain(':subgrp:*');
    expect(bySid.Restore).toContain(':pg:*');
    for (const [sid, resources] of Object.entries(bySid))
      if (sid !== 'Restore' && sid !== 'ReadSnapshots') expect(resources, sid).not.toMatch(/:(subgrp|pg|db):\*/);
    expect(bySid.RestoreEncrypted).toBe(JSON.stringify(KEY));
    const secrets = statements
      .filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'))
      .flatMap((s) => [s.Resource].flat());
    expect(secrets).toContainEqual(master());
    expect(statements.flatMap((s) => [s.Resource].flat())).not.toContain('*');
  });

  test('outputs the adopted endpoint and port', () => {
    const outputs = t.findOutputs('*');
    expect(outputs.Endpoint.Value).toBe(ENDPOINT);
    expect(outputs.Port.Value).toBe('5432');
    expect(outputs.MasterSecretArn.Value).toEqual(master());
    expect(JSON.stringify(outputs.PortForwardCommand.Value)).toContain(`host=${ENDPOINT},portNumber=5432`);
  });
});

describe('settings around adoption', () => {
  test('without kmsKeyArn (the aws/rds key) the role gets no KMS grant; without baselineVersion no property', () => {
    const base = synthAdopting().stack.config;
    const { template, errors } = synthStack('prod', {
      existingVpc: base.existingVpc,
      existingInstance: { ...base.existingInstance!, kmsKeyArn: undefined },
      alarmEmail: 'oncall@example.org',
    });
    expect(errors).toEqual([]);
    template.resourceCountIs('AWS::RDS::DBInstance', 0);
    const role = Object.values(template.findResources('AWS::IAM::Policy')).find((r) =>
      JSON.stringify(r.Properties.Roles).includes('SchemaMigrationsRole'),
    );
    expect(JSON.stringify(role)).not.toContain('kms:CreateGrant');
    expect(JSON.stringify(role)).not.toContain('RestoreEncrypted');
    const [cr] = Object.values(template.findResources(RESOURCE_TYPE));
    expect(cr.Properties).not.toHaveProperty('BaselineVersion');
    expect(cr.Properties.AdoptedInstance).toBe('true');
  });

  test('baselineVersion reaches the custom resource of a stack that creates its instance too', () => {
    const { template } = synthStack('dev', { baselineVersion: '42' });
    const [cr] = Object.values(template.findResources(RESOURCE_TYPE));
    expect(cr.Properties).toMatchObject({ BaselineVersion: '42', AdoptedInstance: 'false' });
  });
});

describe('the property contract for adoption', () => {
  const base = {
    DeployId: 'd1',
    DatabaseName: 'orion_prod',
    OwnerRole: 'orion_owner',
    GroupRole: 'orion_app_rw',
    AppRole: 'orion_app',
    MasterSecretArn: MASTER,
    AppSecretArn: 'arn:app',
    InstanceIdentifier: ID,
    SnapshotPrefix: ID,
    SnapshotRetention: '5',
    RestoreSecurityGroupIds: [SG],
    RestoreDeletionProtection: 'true',
    RestorePort: '5432',
  };

  test('properties written before adoption existed (a rollback delivers them) read as a created instance', () => {
    expect(() => parseProperties(base)).toThrow('property RestoreSubnetGroupName is missing');
    const created = parseProperties({
      ...base,
      RestoreSubnetGroupName: 'g',
      RestoreParameterGroupName: 'p',
      RestoreMultiAz: 'true',
      RestoreInstanceClass: 'db.t3.medium',
      RestoreStorageType: 'gp3',
    });
    expect(created.adoptedInstance).toBe(false);
    expect(created.restore.fromInstance).toBeUndefined();
    expect(created).not.toHaveProperty('baselineVersion');
  });

  test.each(['0', '1.2', 'latest', ''])('a BaselineVersion of "%s" is a clear error naming the property', (v) => {
    expect(() => parseProperties({ ...base, AdoptedInstance: 'true', BaselineVersion: v })).toThrow(
      `Custom::SchemaMigrations property BaselineVersion must be a positive whole number, got "${v}"`,
    );
  });
});
