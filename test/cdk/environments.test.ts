import { describe, expect, test } from 'vitest';
import { type EnvironmentConfig, environmentConfig, selectEnvironments } from '../../lib/config/environments';

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
});
