import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  type EnvironmentConfig,
  type ExistingInstance,
  environmentConfig,
  selectEnvironments,
} from '../../lib/config/environments';
import { readSettingsFile } from '../../lib/config/settings';

/** The adopting settings of the fixture (the README's walkthrough), as environment overrides. */
const ADOPTING: Partial<EnvironmentConfig> = JSON.parse(
  readFileSync(join(__dirname, '..', 'fixtures', 'existing-instance', 'orion.config.json'), 'utf8'),
).environments.prod;
const INSTANCE = ADOPTING.existingInstance as ExistingInstance;
const ENV = { account: '123456789012', region: 'eu-west-1' };

describe('environment config', () => {
  test('prod is a Multi-AZ db.t3.medium with deletion protection and a week of backups or more', () => {
    const prod = environmentConfig('prod');
    expect(prod).toMatchObject({
      instanceClass: 'db.t3.medium',
      multiAz: true,
      deletionProtection: true,
      databaseName: 'orion_prod',
      appRole: 'orion_app',
    });
    expect(prod.backupRetentionDays).toBeGreaterThanOrEqual(7);
    expect(prod.engineVersion).toMatch(/^16\./);
  });

  test('a stack rollback keeps the schema ahead in staging and prod (no data loss), reverts in dev; anything else is refused', () => {
    expect(environmentConfig('prod').rollback).toBe('keep');
    expect(environmentConfig('staging').rollback).toBe('keep');
    expect(environmentConfig('dev').rollback).toBe('down-scripts');
    expect(environmentConfig('prod', { rollback: 'restore' }).rollback).toBe('restore');
    expect(() => environmentConfig('prod', { rollback: 'revert' as never })).toThrow(
      'prod.rollback: must be one of keep, down-scripts, restore, got "revert"',
    );
  });

  test('-c env selects one environment; none selects all three; anything else is an error', () => {
    expect(selectEnvironments(undefined)).toEqual(['dev', 'staging', 'prod']);
    expect(selectEnvironments('staging')).toEqual(['staging']);
    expect(() => selectEnvironments('production')).toThrow(
      /unknown environment "production" \(-c env=...\): expected one of dev, staging, prod/,
    );
  });

  test.each<[string, 'dev' | 'prod', Partial<EnvironmentConfig>, RegExp]>([
    ['a malformed account', 'dev', { account: '1234' }, /dev\.account: must be a 12-digit AWS account id, got "1234"/],
    [
      'a malformed region',
      'dev',
      { region: 'europe' },
      /dev\.region: must be an AWS region like eu-west-1, got "europe"/,
    ],
    ['prod without Multi-AZ', 'prod', { multiAz: false }, /prod\.multiAz: prod must be Multi-AZ/],
    [
      'prod without deletion protection',
      'prod',
      { deletionProtection: false },
      /prod\.deletionProtection: prod must have deletion protection/,
    ],
    [
      'prod with 3 days of backups',
      'prod',
      { backupRetentionDays: 3 },
      /prod\.backupRetentionDays: prod needs at least 7 days of backups, got 3/,
    ],
    [
      'an injected database name',
      'dev',
      { databaseName: 'x"; DROP DATABASE y; --' },
      /dev\.databaseName must be a lower-case PostgreSQL identifier/,
    ],
    ['an upper-case role', 'dev', { appRole: 'OrionApp' }, /dev\.appRole must be a lower-case PostgreSQL identifier/],
    ['a reserved role', 'dev', { ownerRole: 'pg_monitor' }, /dev\.ownerRole "pg_monitor" is reserved/],
    [
      'PostgreSQL 14',
      'dev',
      { engineVersion: '14.9' },
      /dev\.engineVersion: must be a PostgreSQL 16\.x or 15\.x version/,
    ],
    [
      'a bad instance class',
      'dev',
      { instanceClass: 't3.medium' },
      /dev\.instanceClass: must look like db\.t3\.medium/,
    ],
    ['a port outside the RDS range', 'dev', { port: 80 }, /dev\.port: must be 1150\.\.65535/],
    ['a bad alarm e-mail', 'dev', { alarmEmail: 'ops' }, /dev\.alarmEmail: is not an e-mail address/],
    [
      'a bad security group',
      'dev',
      { applicationSecurityGroupIds: ['default'] },
      /"default" is not a security group id/,
    ],
    [
      'storage autoscaling below the allocation',
      'dev',
      { allocatedStorageGiB: 100, maxAllocatedStorageGiB: 50 },
      /maxAllocatedStorageGiB: must be at least allocatedStorageGiB \(100\)/,
    ],
    [
      'an existing VPC with one subnet',
      'dev',
      {
        existingVpc: {
          vpcId: 'vpc-0123456789abcdef0',
          cidrBlock: '10.1.0.0/16',
          availabilityZones: ['eu-west-1a'],
          subnetIds: ['subnet-1'],
        },
      },
      /existingVpc\.subnetIds: needs one subnet per availability zone, in at least two zones/,
    ],
    [
      'zones of another region',
      'dev',
      { region: 'eu-west-1', availabilityZones: ['us-east-1a', 'us-east-1b'] },
      /dev\.availabilityZones: "us-east-1a" is not a zone of eu-west-1/,
    ],
    ['a single zone', 'dev', { availabilityZones: ['eu-west-1a'] }, /dev\.availabilityZones: needs at least two zones/],
  ])('rejects %s with an error naming the setting', (_case, name, overrides, message) => {
    expect(() => environmentConfig(name, overrides)).toThrow(message);
  });

  test('reports every invalid setting at once', () => {
    expect(() => environmentConfig('prod', { multiAz: false, deletionProtection: false })).toThrow(
      /multiAz[\s\S]*deletionProtection/,
    );
  });

  describe('existingInstance and baselineVersion', () => {
    test('the fixture adopts a hand-built instance, with its baseline', () => {
      const prod = environmentConfig('prod', ADOPTING, ENV);
      expect(prod.existingInstance).toEqual(INSTANCE);
      expect(prod.baselineVersion).toBe('1');
      // The settings file accepts both as settings of an environment.
      expect(readSettingsFile('test/fixtures/existing-instance/orion.config.json').file.environments?.prod).toEqual(
        ADOPTING,
      );
    });

    test.each<[string, Record<string, unknown>, RegExp]>([
      ['a missing identifier', { identifier: undefined }, /prod\.existingInstance\.identifier: is missing/],
      [
        'an upper-case identifier',
        { identifier: 'Orion-Prod' },
        /prod\.existingInstance\.identifier: "Orion-Prod" is not an RDS instance identifier/,
      ],
      [
        'an identifier too long to restore',
        { identifier: `orion-${'x'.repeat(41)}` },
        /prod\.existingInstance\.identifier: .* at most 46 characters \(restores add "-restore-XXXXXXXX"\)/,
      ],
      [
        'an endpoint that is not an RDS one',
        { endpoint: 'db.example.org' },
        /prod\.existingInstance\.endpoint: "db\.example\.org" is not an RDS endpoint address/,
      ],
      [
        'the endpoint of another instance',
        { endpoint: 'orion-staging.c9akciq32e1x.eu-west-1.rds.amazonaws.com' },
        /prod\.existingInstance\.endpoint: .* is not the endpoint of instance "orion-prod"/,
      ],
      [
        'an endpoint in another region',
        { endpoint: 'orion-prod.c9akciq32e1x.us-east-1.rds.amazonaws.com' },
        /prod\.existingInstance\.endpoint: .* is not in eu-west-1, the environment's region/,
      ],
      [
        'a port as a string',
        { port: '5432' },
        /prod\.existingInstance\.port: must be the instance's port, 1150\.\.65535 .*got "5432"/,
      ],
      ['a port outside the RDS range', { port: 80 }, /prod\.existingInstance\.port: .*got 80/],
      [
        'a security group name',
        { securityGroupId: 'default' },
        /prod\.existingInstance\.securityGroupId: "default" is not a security group id/,
      ],
      [
        'a secret name instead of its ARN',
        { masterSecretArn: 'orion/prod/master' },
        /prod\.existingInstance\.masterSecretArn: "orion\/prod\/master" is not a complete secret ARN/,
      ],
      [
        'a secret ARN without its suffix',
        { masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:orion/prod/master' },
        /prod\.existingInstance\.masterSecretArn: .* is not a complete secret ARN/,
      ],
      [
        'a secret RDS manages',
        { masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234abcd-AbC123' },
        /prod\.existingInstance\.masterSecretArn: is a secret RDS manages itself/,
      ],
      [
        'a secret of another account',
        { masterSecretArn: 'arn:aws:secretsmanager:eu-west-1:999999999999:secret:orion/prod/master-AbC123' },
        /prod\.existingInstance\.masterSecretArn: is in account 999999999999, not the environment's 123456789012/,
      ],
      [
        'a key alias instead of a key ARN',
        { kmsKeyArn: 'alias/aws/rds' },
        /prod\.existingInstance\.kmsKeyArn: "alias\/aws\/rds" is not a KMS key ARN/,
      ],
      [
        'a key of another region',
        { kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab' },
        /prod\.existingInstance\.kmsKeyArn: is in region us-east-1, not the environment's eu-west-1/,
      ],
      [
        'a monitoring role name instead of its ARN',
        { monitoringRoleArn: 'rds-monitoring-role' },
        /prod\.existingInstance\.monitoringRoleArn: "rds-monitoring-role" is not an IAM role ARN/,
      ],
      [
        'a monitoring role of another account',
        { monitoringRoleArn: 'arn:aws:iam::999999999999:role/rds-monitoring-role' },
        /prod\.existingInstance\.monitoringRoleArn: is in account 999999999999, not the environment's 123456789012/,
      ],
      [
        'a misspelt field',
        { securityGroup: 'sg-0a1b2c3d4e5f60733' },
        /prod\.existingInstance\.securityGroup: unknown setting/,
      ],
    ])('rejects %s, naming the setting', (_case, change, message) => {
      const existingInstance = { ...INSTANCE, ...change } as unknown as ExistingInstance;
      expect(() => environmentConfig('prod', { ...ADOPTING, existingInstance }, ENV)).toThrow(message);
    });

    test('an adopted instance needs the VPC it is in', () => {
      expect(() => environmentConfig('prod', { ...ADOPTING, existingVpc: undefined }, ENV)).toThrow(
        /prod\.existingInstance: needs existingVpc: the VPC the instance is in/,
      );
    });

    test('existingInstance must be an object', () => {
      expect(() =>
        environmentConfig('prod', { ...ADOPTING, existingInstance: 'orion-prod' as unknown as ExistingInstance }, ENV),
      ).toThrow(/prod\.existingInstance: must be an object with identifier, endpoint, port/);
    });

    test.each<[string, unknown]>([
      ['zero', '0'],
      ['a number instead of a string', 1],
      ['a dotted version', '1.2'],
      ['a negative one', '-1'],
      ['an empty string', ''],
    ])('rejects a baselineVersion that is %s', (_case, baselineVersion) => {
      expect(() => environmentConfig('dev', { baselineVersion: baselineVersion as string })).toThrow(
        /dev\.baselineVersion: must be a migration version, a positive integer given as a string like "1"/,
      );
    });
  });
});

describe('the CDK app (bin/orion.ts) on a wrong setting', () => {
  test('prints one line naming the setting and exits 1, without a stack trace', () => {
    const run = spawnSync(join('node_modules', '.bin', 'tsx'), ['bin/orion.ts'], {
      encoding: 'utf8',
      env: {
        ...process.env,
        CDK_CONTEXT_JSON: JSON.stringify({ env: 'production' }),
        CDK_OUTDIR: mkdtempSync(join(tmpdir(), 'cdk-')),
      },
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(
      'error: unknown environment "production" (-c env=...): expected one of dev, staging, prod',
    );
  });
});
