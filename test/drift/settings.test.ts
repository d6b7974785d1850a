/**
 * driftPolicy from the environment settings to the custom resource's property and the handler's
 * settings: defaults per environment, validation naming the setting, older templates without it.
 */
import { describe, expect, test } from 'vitest';
import { parseProperties } from '../../lambda/schema-migrator/properties';
import { environmentConfig } from '../../lib/config/environments';

const BASE = {
  DeployId: 'd',
  DatabaseName: 'orion_prod',
  OwnerRole: 'orion_owner',
  GroupRole: 'orion_app_rw',
  AppRole: 'orion_app',
  MasterSecretArn: 'arn:master',
  AppSecretArn: 'arn:app',
  InstanceIdentifier: 'orion-prod',
  SnapshotPrefix: 'orion-prod',
  SnapshotRetention: '5',
  RestoreSubnetGroupName: 'subnets',
  RestoreSecurityGroupIds: ['sg-12345678'],
  RestoreParameterGroupName: 'params',
  RestoreMultiAz: 'true',
  RestoreInstanceClass: 'db.t3.medium',
  RestoreStorageType: 'gp3',
  RestoreDeletionProtection: 'true',
  RestorePort: '5433',
};

describe('driftPolicy', () => {
  test('fail for staging and prod, warn for dev; a bad value names the setting', () => {
    expect(environmentConfig('prod').driftPolicy).toBe('fail');
    expect(environmentConfig('staging').driftPolicy).toBe('fail');
    expect(environmentConfig('dev').driftPolicy).toBe('warn');
    expect(() => environmentConfig('dev', { driftPolicy: 'loud' as never })).toThrow(
      'dev.driftPolicy: must be one of fail, warn, off, got "loud"',
    );
  });

  test("the property reaches the handler's settings; a template without it (a rollback's older one) means off", () => {
    expect(parseProperties({ ...BASE, DriftPolicy: 'fail' }).driftPolicy).toBe('fail');
    expect(parseProperties(BASE).driftPolicy).toBe('off');
    expect(() => parseProperties({ ...BASE, DriftPolicy: 'sometimes' })).toThrow(
      'property DriftPolicy must be one of fail, warn, off, got "sometimes"',
    );
  });
});
