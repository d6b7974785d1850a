/**
 * The AWS adapters against the SDK v3 clients, mocked at the SDK boundary (aws-sdk-client-mock).
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  type DBInstance,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  type Tag,
} from '@aws-sdk/client-rds';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, test } from 'vitest';
import { RdsDeletionProtection } from '../../lambda/aws/deletion-protection';
import { SecretsManagerSecrets } from '../../lambda/aws/secrets';
import {
  RdsSnapshots,
  TAG_FAILED_DEPLOY,
  TAG_MONITORING_COPIED,
  TAG_PRE_MIGRATION,
  TAG_RESTORE_REASON,
  TAG_RESTORED_FROM,
  TAG_SETTINGS_COPIED,
} from '../../lambda/aws/snapshots';
import { isStackRollingBack } from '../../lambda/aws/stack-status';

const rds = mockClient(RDSClient);
const sm = mockClient(SecretsManagerClient);
const cfn = mockClient(CloudFormationClient);

const fault = (name: string) => Object.assign(new Error(name), { name, $metadata: {} });
const RESTORE = {
  subnetGroupName: 'orion-prod-db',
  securityGroupIds: ['sg-0aaa', 'sg-0bbb'],
  parameterGroupName: 'orion-prod-params',
  multiAz: true,
  instanceClass: 'db.t3.medium',
  storageType: 'gp3',
  deletionProtection: true,
  port: 5433,
};
const SNAP = 'orion-prod-pre-d2-abcdef12';

function snapshots() {
  return new RdsSnapshots(new RDSClient({ region: 'eu-west-1' }), {
    instanceIdentifier: 'orion-prod',
    restore: RESTORE,
    tags: { 'orion:stack': 'Orion-prod' },
  });
}

/** The instances RDS knows, by identifier; absent ones answer DBInstanceNotFoundFault. */
function instances(state: Record<string, Partial<DBInstance> | undefined>) {
  rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier }) => {
    const found = state[DBInstanceIdentifier];
    if (!found) throw fault('DBInstanceNotFoundFault');
    return {
      DBInstances: [
        {
          DBInstanceIdentifier,
          DBInstanceArn: `arn:aws:rds:eu-west-1:123456789012:db:${DBInstanceIdentifier}`,
          ...found,
        },
      ],
    };
  });
}

function snapshotExists(tags: { Key: string; Value: string }[] = []) {
  rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: SNAP }).resolves({
    DBSnapshots: [
      {
        DBSnapshotIdentifier: SNAP,
        Status: 'available',
        DBSnapshotArn: `arn:aws:rds:eu-west-1:123456789012:snapshot:${SNAP}`,
        TagList: tags,
      },
    ],
  });
}

beforeEach(() => {
  rds.reset();
  sm.reset();
  cfn.reset();
});

describe('RdsSnapshots', () => {
  test('ensure starts a tagged snapshot when there is none, then reports its status', async () => {
    rds.on(DescribeDBSnapshotsCommand).rejectsOnce(fault('DBSnapshotNotFoundFault'));
    rds.on(CreateDBSnapshotCommand).resolves({});
    expect(
      await snapshots().ensure(SNAP, { 'orion:deploy-id': 'd2', 'orion:from-version': '2', 'orion:to-version': '3' }),
    ).toBe('creating');
    expect(rds.commandCalls(CreateDBSnapshotCommand)[0].args[0].input).toEqual({
      DBInstanceIdentifier: 'orion-prod',
      DBSnapshotIdentifier: SNAP,
      Tags: [
        { Key: 'orion:stack', Value: 'Orion-prod' },
        { Key: 'orion:deploy-id', Value: 'd2' },
        { Key: 'orion:from-version', Value: '2' },
        { Key: 'orion:to-version', Value: '3' },
        { Key: TAG_PRE_MIGRATION, Value: 'orion-prod' },
      ],
    });
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAP, Status: 'creating' }] });
    expect(await snapshots().ensure(SNAP, {})).toBe('creating');
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAP, Status: 'available' }] });
    expect(await snapshots().ensure(SNAP, {})).toBe('available');
    expect(rds.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1); // re-running the deploy finds it
    rds.on(DescribeDBSnapshotsCommand).resolves({ DBSnapshots: [{ DBSnapshotIdentifier: SNAP, Status: 'failed' }] });
    await expect(snapshots().ensure(SNAP, {})).rejects.toThrow(
      `snapshot ${SNAP} is failed: it cannot protect this deploy`,
    );
  });

  test('ensure waits (instead of failing) while the instance is busy', async () => {
    rds.on(DescribeDBSnapshotsCommand).rejects(fault('DBSnapshotNotFoundFault'));
    rds.on(CreateDBSnapshotCommand).rejects(fault('InvalidDBInstanceStateFault'));
    expect(await snapshots().ensure(SNAP, {})).toBe('creating');
  });

  test('throttling is left to the SDK: our code sends each command once and the error surfaces', async () => {
    rds.on(DescribeDBSnapshotsCommand).rejects(fault('DBSnapshotNotFoundFault'));
    rds.on(CreateDBSnapshotCommand).rejects(fault('ThrottlingException'));
    await expect(snapshots().ensure(SNAP, {})).rejects.toThrow('ThrottlingException');
    expect(rds.commandCalls(CreateDBSnapshotCommand)).toHaveLength(1);
  });

  test('list follows pagination; delete ignores a snapshot already gone', async () => {
    const ours = [{ Key: TAG_PRE_MIGRATION, Value: 'orion-prod' }];
    rds
      .on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: 'orion-prod', SnapshotType: 'manual', Marker: undefined })
      .resolves({
        DBSnapshots: [{ DBSnapshotIdentifier: 'a', SnapshotCreateTime: new Date('2026-01-01'), TagList: ours }],
        Marker: 'm1',
      })
      .on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: 'orion-prod', SnapshotType: 'manual', Marker: 'm1' })
      .resolves({
        DBSnapshots: [{ DBSnapshotIdentifier: 'b', SnapshotCreateTime: new Date('2026-01-02'), TagList: ours }],
      });
    expect((await snapshots().list()).map((s) => s.id)).toEqual(['a', 'b']);
    // One being taken has no creation time yet: said, so the prune never takes it for the oldest.
    rds
      .on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: 'orion-prod', SnapshotType: 'manual', Marker: 'm1' })
      .resolves({ DBSnapshots: [{ DBSnapshotIdentifier: 'c', Status: 'creating', TagList: ours }] });
    expect((await snapshots().list()).find((s) => s.id === 'c')).toMatchObject({ creating: true });
    expect((await snapshots().list()).find((s) => s.id === 'a')?.creating).toBeUndefined();
    rds.on(DeleteDBSnapshotCommand).rejects(fault('DBSnapshotNotFoundFault'));
    await expect(snapshots().delete('a')).resolves.toBeUndefined();
  });

  test('list (and so the prune) sees only snapshots carrying our tag: a hand-made one named like ours is kept', async () => {
    rds.on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: 'orion-prod', SnapshotType: 'manual' }).resolves({
      DBSnapshots: [
        {
          DBSnapshotIdentifier: 'orion-prod-pre-release-0000aaaa',
          SnapshotCreateTime: new Date('2026-01-01'),
          TagList: [{ Key: TAG_PRE_MIGRATION, Value: 'orion-prod' }],
        },
        // Taken before the dedicated tag existed: the lifecycle's deploy id marks it as ours.
        {
          DBSnapshotIdentifier: 'orion-prod-pre-d1-0000bbbb',
          SnapshotCreateTime: new Date('2026-01-02'),
          TagList: [{ Key: 'orion:deploy-id', Value: 'd1' }],
        },
        // An adopted instance's own, named like ours by its previous owners, with and without tags.
        { DBSnapshotIdentifier: 'orion-prod-pre-upgrade-by-hand', SnapshotCreateTime: new Date('2025-06-01') },
        {
          DBSnapshotIdentifier: 'orion-prod-pre-2025-migration',
          SnapshotCreateTime: new Date('2025-07-01'),
          TagList: [{ Key: 'owner', Value: 'dba' }],
        },
      ],
    });
    expect((await snapshots().list()).map((s) => s.id)).toEqual([
      'orion-prod-pre-release-0000aaaa',
      'orion-prod-pre-d1-0000bbbb',
    ]);
  });

  test('restore walks restore → rename away → rename in, one resumable step per call, carrying the instance settings', async () => {
    const s = snapshots();
    const temporary = s.keptAs(SNAP).replace('-failed-', '-restore-');
    const failed = s.keptAs(SNAP);
    expect(failed).toMatch(/^orion-prod-failed-[0-9a-f]{8}$/);
    snapshotExists();
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});

    // 1. Nothing restored yet: start the restore to the temporary identifier.
    instances({ 'orion-prod': { DBInstanceStatus: 'available' } });
    expect(await s.restore(SNAP, '000004_x.up.sql:2 SQLSTATE 23505: duplicate')).toBe('in-progress');
    expect(rds.commandCalls(AddTagsToResourceCommand)[0].args[0].input).toEqual({
      ResourceName: `arn:aws:rds:eu-west-1:123456789012:snapshot:${SNAP}`,
      Tags: [{ Key: TAG_RESTORE_REASON, Value: '000004_x.up.sql:2 SQLSTATE 23505: duplicate' }],
    });
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input).toEqual({
      DBInstanceIdentifier: temporary,
      DBSnapshotIdentifier: SNAP,
      DBSubnetGroupName: 'orion-prod-db',
      VpcSecurityGroupIds: ['sg-0aaa', 'sg-0bbb'],
      DBParameterGroupName: 'orion-prod-params',
      MultiAZ: true,
      DBInstanceClass: 'db.t3.medium',
      StorageType: 'gp3',
      Port: 5433,
      PubliclyAccessible: false,
      CopyTagsToSnapshot: true,
      DeletionProtection: false,
      EnableCloudwatchLogsExports: ['postgresql', 'upgrade'],
      Tags: [
        { Key: 'orion:stack', Value: 'Orion-prod' },
        { Key: TAG_RESTORED_FROM, Value: SNAP },
      ],
    });

    // 2. Still creating: nothing to do, nothing called.
    rds.resetHistory();
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    instances({ 'orion-prod': { DBInstanceStatus: 'available' }, [temporary]: { DBInstanceStatus: 'creating' } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(await s.restoreStatus(SNAP)).toEqual({ state: 'in-progress', reason: 'x' });
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(AddTagsToResourceCommand)).toHaveLength(0);

    // 3. Restored copy available: tag the failed instance and rename it away.
    instances({ 'orion-prod': { DBInstanceStatus: 'available' }, [temporary]: { DBInstanceStatus: 'available' } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(AddTagsToResourceCommand)[0].args[0].input).toEqual({
      ResourceName: 'arn:aws:rds:eu-west-1:123456789012:db:orion-prod',
      Tags: [{ Key: TAG_FAILED_DEPLOY, Value: SNAP }],
    });
    expect(rds.commandCalls(ModifyDBInstanceCommand)[0].args[0].input).toEqual({
      DBInstanceIdentifier: 'orion-prod',
      NewDBInstanceIdentifier: failed,
      ApplyImmediately: true,
    });

    // A rename is not atomic: for a while the instance still answers to its old name, 'renaming', and
    // its new name is not there yet. Nothing is done then.
    rds.resetHistory();
    instances({ 'orion-prod': { DBInstanceStatus: 'renaming' }, [temporary]: { DBInstanceStatus: 'available' } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    instances({
      'orion-prod': { DBInstanceStatus: 'renaming' },
      [failed]: { DBInstanceStatus: 'renaming' },
      [temporary]: { DBInstanceStatus: 'available' },
    });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);

    // 4. The failed one is renamed: give the copy the original name (the endpoint stays the same).
    rds.resetHistory();
    instances({ [failed]: { DBInstanceStatus: 'available' }, [temporary]: { DBInstanceStatus: 'available' } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: temporary,
        NewDBInstanceIdentifier: 'orion-prod',
        DeletionProtection: true,
        ApplyImmediately: true,
      },
    ]);

    // The copy's rename under way: both names may answer, 'renaming'. Nothing is done.
    rds.resetHistory();
    const restoredTags = [{ Key: TAG_RESTORED_FROM, Value: SNAP }];
    instances({
      [failed]: { DBInstanceStatus: 'available' },
      [temporary]: { DBInstanceStatus: 'renaming' },
      'orion-prod': { DBInstanceStatus: 'renaming', TagList: restoredTags },
    });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);

    // 5. Renamed and available: what a restore request cannot carry is copied from the failed instance.
    const failedSettings: Partial<DBInstance> = {
      DBInstanceStatus: 'available',
      PerformanceInsightsEnabled: true,
      PerformanceInsightsKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/pi',
      PerformanceInsightsRetentionPeriod: 7,
      MonitoringInterval: 60,
      MonitoringRoleArn: 'arn:aws:iam::123456789012:role/rds-monitoring',
      BackupRetentionPeriod: 14,
      MaxAllocatedStorage: 500,
    };
    /** The failed instance beside the restored copy, which has the original's name and these tags. */
    const renamed = (TagList: Tag[]) =>
      instances({
        [failed]: failedSettings,
        'orion-prod': {
          DBInstanceStatus: 'available',
          TagList,
          DBInstanceArn: 'arn:aws:rds:eu-west-1:123456789012:db:orion-prod',
        },
      });
    renamed(restoredTags);
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: 'orion-prod',
        EnablePerformanceInsights: true,
        PerformanceInsightsKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/pi',
        PerformanceInsightsRetentionPeriod: 7,
        BackupRetentionPeriod: 14,
        MaxAllocatedStorage: 500,
        ApplyImmediately: true,
      },
    ]);
    expect(rds.commandCalls(AddTagsToResourceCommand).at(-1)!.args[0].input).toEqual({
      ResourceName: 'arn:aws:rds:eu-west-1:123456789012:db:orion-prod',
      Tags: [{ Key: TAG_SETTINGS_COPIED, Value: SNAP }],
    });

    // 5b. Enhanced monitoring in a call of its own (iam:PassRole on its role), at the next poll.
    rds.resetHistory();
    const copiedTags = [...restoredTags, { Key: TAG_SETTINGS_COPIED, Value: SNAP }];
    renamed(copiedTags);
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: 'orion-prod',
        MonitoringInterval: 60,
        MonitoringRoleArn: 'arn:aws:iam::123456789012:role/rds-monitoring',
        ApplyImmediately: true,
      },
    ]);
    expect(rds.commandCalls(AddTagsToResourceCommand).at(-1)!.args[0].input).toEqual({
      ResourceName: 'arn:aws:rds:eu-west-1:123456789012:db:orion-prod',
      Tags: [{ Key: TAG_MONITORING_COPIED, Value: SNAP }],
    });

    // 6. Done, and a later call (a retry, the next deploy) changes nothing.
    rds.resetHistory();
    renamed([...copiedTags, { Key: TAG_MONITORING_COPIED, Value: SNAP }]);
    expect(await s.restore(SNAP, 'x')).toBe('done');
    expect(await s.restoreStatus(SNAP)).toEqual({ state: 'done', reason: 'x' });
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
  });

  test('the restore request carries what the instance has and a restore accepts: storage, throughput, CA, backups, tags', async () => {
    const s = snapshots();
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    instances({
      'orion-prod': {
        DBInstanceStatus: 'available',
        StorageType: 'gp3',
        AllocatedStorage: 500,
        Iops: 12000,
        StorageThroughput: 500,
        CACertificateIdentifier: 'rds-ca-rsa4096-g1',
        BackupRetentionPeriod: 14,
        PreferredBackupWindow: '03:00-03:30',
        AutoMinorVersionUpgrade: false,
        IAMDatabaseAuthenticationEnabled: true,
        CopyTagsToSnapshot: true,
        EnabledCloudwatchLogsExports: ['postgresql'],
        KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/db', // the snapshot's: never in the request
        TagList: [
          { Key: 'cost-centre', Value: 'events' },
          { Key: 'aws:cloudformation:stack-name', Value: 'Orion-prod' }, // reserved: RDS refuses it
          { Key: TAG_RESTORED_FROM, Value: 'orion-prod-pre-older' }, // an earlier restore's marker
          { Key: 'orion:stack', Value: 'stale' },
        ],
      },
    });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input).toEqual({
      DBInstanceIdentifier: s.keptAs(SNAP).replace('-failed-', '-restore-'),
      DBSnapshotIdentifier: SNAP,
      DBSubnetGroupName: 'orion-prod-db',
      VpcSecurityGroupIds: ['sg-0aaa', 'sg-0bbb'],
      DBParameterGroupName: 'orion-prod-params',
      MultiAZ: true,
      DBInstanceClass: 'db.t3.medium',
      StorageType: 'gp3',
      AllocatedStorage: 500,
      Iops: 12000,
      StorageThroughput: 500,
      CACertificateIdentifier: 'rds-ca-rsa4096-g1',
      BackupRetentionPeriod: 14,
      PreferredBackupWindow: '03:00-03:30',
      AutoMinorVersionUpgrade: false,
      EnableIAMDatabaseAuthentication: true,
      Port: 5433,
      PubliclyAccessible: false,
      CopyTagsToSnapshot: true,
      DeletionProtection: false,
      EnableCloudwatchLogsExports: ['postgresql'],
      Tags: [
        { Key: 'cost-centre', Value: 'events' },
        { Key: 'orion:stack', Value: 'Orion-prod' },
        { Key: TAG_RESTORED_FROM, Value: SNAP },
      ],
    });
  });

  test('the restored copy gets all of our tags and as many of the instance’s own as fit in RDS’s 50', async () => {
    const s = snapshots();
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    const own = Array.from({ length: 50 }, (_, i) => ({ Key: `team-${String(i).padStart(2, '0')}`, Value: 'x' }));
    instances({ 'orion-prod': { DBInstanceStatus: 'available', StorageType: 'gp3', TagList: own } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    const tags = rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input.Tags!;
    expect(tags).toHaveLength(50);
    expect(tags.slice(-2)).toEqual([
      { Key: 'orion:stack', Value: 'Orion-prod' },
      { Key: TAG_RESTORED_FROM, Value: SNAP },
    ]);
    expect(tags.slice(0, 48)).toEqual(own.slice(0, 48));
  });

  test.each([
    ['gp3 below 400 GiB: RDS refuses IOPS and throughput for its fixed baseline', 'gp3', 100, {}],
    ['io2: its provisioned IOPS, and no throughput (gp3 only)', 'io2', 400, { Iops: 3000 }],
    ['gp2: neither', 'gp2', 400, {}],
  ])('storage performance in the restore request, %s', async (_, StorageType, AllocatedStorage, expected) => {
    const s = snapshots();
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    instances({
      'orion-prod': {
        DBInstanceStatus: 'available',
        StorageType,
        AllocatedStorage,
        Iops: 3000,
        StorageThroughput: 125,
      },
    });
    await s.restore(SNAP, 'x');
    const input = rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input;
    expect({ Iops: input.Iops, StorageThroughput: input.StorageThroughput }).toEqual({
      Iops: undefined,
      StorageThroughput: undefined,
      ...expected,
    });
    expect(input.AllocatedStorage).toBe(AllocatedStorage);
  });

  test('after the rename, an instance without Performance Insights or enhanced monitoring gets them off, with no key or role', async () => {
    const s = snapshots();
    const failed = s.keptAs(SNAP);
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});
    instances({
      [failed]: { DBInstanceStatus: 'available', PerformanceInsightsEnabled: false, MonitoringInterval: 0 },
      'orion-prod': { DBInstanceStatus: 'available', TagList: [{ Key: TAG_RESTORED_FROM, Value: SNAP }] },
    });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: 'orion-prod',
        EnablePerformanceInsights: false,
        ApplyImmediately: true,
      },
    ]);
  });

  test('a PassRole denial loses only enhanced monitoring: the other settings went in a call of their own before it', async () => {
    const s = snapshots();
    const failed = s.keptAs(SNAP);
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).callsFake((input) => {
      if (input.MonitoringRoleArn)
        throw Object.assign(new Error('not authorized to perform: iam:PassRole'), { name: 'AccessDenied' });
      return {};
    });
    const failedSettings: Partial<DBInstance> = {
      DBInstanceStatus: 'available',
      PerformanceInsightsEnabled: true,
      PerformanceInsightsKMSKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/pi',
      PerformanceInsightsRetentionPeriod: 7,
      MonitoringInterval: 60,
      MonitoringRoleArn: 'arn:aws:iam::123456789012:role/rds-monitoring',
      BackupRetentionPeriod: 14,
      MaxAllocatedStorage: 500,
    };
    const restored = [{ Key: TAG_RESTORED_FROM, Value: SNAP }];
    instances({ [failed]: failedSettings, 'orion-prod': { DBInstanceStatus: 'available', TagList: restored } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand)[0].args[0].input).toMatchObject({
      EnablePerformanceInsights: true,
      BackupRetentionPeriod: 14,
      MaxAllocatedStorage: 500,
    });
    expect(rds.commandCalls(AddTagsToResourceCommand).at(-1)!.args[0].input.Tags).toEqual([
      { Key: TAG_SETTINGS_COPIED, Value: SNAP },
    ]);
    const copied = [...restored, { Key: TAG_SETTINGS_COPIED, Value: SNAP }];
    instances({ [failed]: failedSettings, 'orion-prod': { DBInstanceStatus: 'available', TagList: copied } });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(AddTagsToResourceCommand).at(-1)!.args[0].input.Tags).toEqual([
      { Key: TAG_MONITORING_COPIED, Value: 'not copied: AccessDenied: not authorized to perform: iam:PassRole' },
    ]);
    const tags = [...copied, { Key: TAG_MONITORING_COPIED, Value: 'not copied' }];
    instances({ [failed]: failedSettings, 'orion-prod': { DBInstanceStatus: 'available', TagList: tags } });
    expect(await s.restore(SNAP, 'x')).toBe('done');
  });

  test('an adopted instance without a configured monitoring role: no role is sent, the tag says monitoring is by hand', async () => {
    const adopted = (monitoringRoleArn?: string) =>
      new RdsSnapshots(new RDSClient({ region: 'eu-west-1' }), {
        instanceIdentifier: 'orion-prod',
        restore: {
          fromInstance: true,
          securityGroupIds: ['sg-0ccc'],
          deletionProtection: false,
          port: 5432,
          monitoringRoleArn,
        },
      });
    const failed = adopted().keptAs(SNAP);
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});
    const role = 'arn:aws:iam::123456789012:role/rds-monitoring';
    instances({
      [failed]: { DBInstanceStatus: 'available', MonitoringInterval: 60, MonitoringRoleArn: role },
      'orion-prod': {
        DBInstanceStatus: 'available',
        TagList: [
          { Key: TAG_RESTORED_FROM, Value: SNAP },
          { Key: TAG_SETTINGS_COPIED, Value: SNAP },
        ],
      },
    });
    expect(await adopted().restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
    expect(rds.commandCalls(AddTagsToResourceCommand).at(-1)!.args[0].input.Tags).toEqual([
      {
        Key: TAG_MONITORING_COPIED,
        Value:
          'not copied: no monitoringRoleArn configured for the adopted instance  turn enhanced monitoring on by hand',
      },
    ]);
    // Configured: the role is passed.
    rds.resetHistory();
    expect(await adopted(role).restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'orion-prod', MonitoringInterval: 60, MonitoringRoleArn: role, ApplyImmediately: true },
    ]);
  });

  test('an adopted instance is restored with its own settings, read from RDS, and keeps its deletion protection', async () => {
    const s = new RdsSnapshots(new RDSClient({ region: 'eu-west-1' }), {
      instanceIdentifier: 'orion-prod',
      restore: { fromInstance: true, securityGroupIds: ['sg-0ccc'], deletionProtection: false, port: 5432 },
      tags: { 'orion:stack': 'Orion-prod' },
    });
    const temporary = s.keptAs(SNAP).replace('-failed-', '-restore-');
    const failed = s.keptAs(SNAP);
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});
    // The console-built instance: default groups, gp2, one log export, two security groups, protected.
    const handBuilt: Partial<DBInstance> = {
      DBInstanceStatus: 'available',
      DBSubnetGroup: { DBSubnetGroupName: 'default-vpc-0a1b2c3d' },
      DBParameterGroups: [{ DBParameterGroupName: 'default.postgres16' }],
      VpcSecurityGroups: [{ VpcSecurityGroupId: 'sg-0ccc' }, { VpcSecurityGroupId: 'sg-0ddd' }],
      DBInstanceClass: 'db.t3.medium',
      MultiAZ: true,
      StorageType: 'gp2',
      Endpoint: { Port: 5432 },
      EnabledCloudwatchLogsExports: ['postgresql'],
      DeletionProtection: true,
    };
    instances({ 'orion-prod': handBuilt });
    expect(await s.restore(SNAP, 'x')).toBe('in-progress');
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)[0].args[0].input).toMatchObject({
      DBInstanceIdentifier: temporary,
      DBSubnetGroupName: 'default-vpc-0a1b2c3d',
      DBParameterGroupName: 'default.postgres16',
      VpcSecurityGroupIds: ['sg-0ccc', 'sg-0ddd'],
      MultiAZ: true,
      DBInstanceClass: 'db.t3.medium',
      StorageType: 'gp2',
      Port: 5432,
      EnableCloudwatchLogsExports: ['postgresql'],
    });
    // Renamed in: the environment says no protection, but the adopted instance had it, so the copy keeps it.
    rds.resetHistory();
    instances({ [failed]: handBuilt, [temporary]: { DBInstanceStatus: 'available' } });
    await s.restore(SNAP, 'x');
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      {
        DBInstanceIdentifier: temporary,
        NewDBInstanceIdentifier: 'orion-prod',
        DeletionProtection: true,
        ApplyImmediately: true,
      },
    ]);
  });

  test('an adopted instance that is gone cannot be restored: its settings are what the copy would take', async () => {
    const s = new RdsSnapshots(new RDSClient({ region: 'eu-west-1' }), {
      instanceIdentifier: 'orion-prod',
      restore: { fromInstance: true, securityGroupIds: ['sg-0ccc'], deletionProtection: true, port: 5432 },
    });
    snapshotExists([{ Key: TAG_RESTORE_REASON, Value: 'x' }]);
    instances({});
    await expect(s.restore(SNAP, 'x')).rejects.toThrow('cannot restore: instance orion-prod is gone');
    expect(rds.commandCalls(RestoreDBInstanceFromDBSnapshotCommand)).toHaveLength(0);
  });

  test('restoreStatus is none when no restore of this snapshot was started', async () => {
    snapshotExists();
    instances({ 'orion-prod': { DBInstanceStatus: 'available' } });
    expect(await snapshots().restoreStatus(SNAP)).toEqual({ state: 'none' });
  });
});

describe('SecretsManagerSecrets', () => {
  const MASTER = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master';
  const APP = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app';
  const secrets = () => new SecretsManagerSecrets(new SecretsManagerClient({ region: 'eu-west-1' }), MASTER, APP);

  test('reads each secret once per invocation, and again after a failed read', async () => {
    sm.on(GetSecretValueCommand, { SecretId: MASTER })
      .rejectsOnce(fault('ThrottlingException'))
      .resolves({
        SecretString: JSON.stringify({
          username: 'orion_admin',
          password: 'm-Secret-1',
          host: 'db.example',
          port: 5433,
        }),
      });
    sm.on(GetSecretValueCommand, { SecretId: APP }).resolves({
      SecretString: JSON.stringify({ username: 'orion_app_clone', password: 'a-Secret-2' }),
    });
    const s = secrets();
    await expect(s.master()).rejects.toThrow('ThrottlingException'); // the SDK's retries gave up
    expect(await s.master()).toEqual({
      username: 'orion_admin',
      password: 'm-Secret-1',
      host: 'db.example',
      port: 5433,
      dbname: undefined,
    });
    await s.master();
    expect(await s.app()).toMatchObject({ username: 'orion_app_clone', password: 'a-Secret-2' });
    expect(sm.commandCalls(GetSecretValueCommand, { SecretId: MASTER })).toHaveLength(2); // one throttled + one
  });

  test('a malformed secret is an error that does not quote its value', async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'not-json-but-a-Secret-3' });
    const err = await secrets()
      .master()
      .catch((e) => e);
    expect(err.message).toBe(`the master secret ${MASTER} is not JSON`);
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ password: 'only-Secret-4' }) });
    const err2 = await secrets()
      .app()
      .catch((e) => e);
    expect(err2.message).toBe(`the app secret ${APP} has no username/password`);
  });
});

describe('isStackRollingBack', () => {
  test.each([
    ['UPDATE_ROLLBACK_IN_PROGRESS', true],
    ['UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS', true],
    ['ROLLBACK_IN_PROGRESS', true],
    ['UPDATE_IN_PROGRESS', false],
    ['CREATE_IN_PROGRESS', false],
  ])('%s → %s', async (status, expected) => {
    cfn
      .on(DescribeStacksCommand, { StackName: 'arn:stack' })
      .resolves({ Stacks: [{ StackName: 's', StackStatus: status as any, CreationTime: new Date() }] });
    expect(await isStackRollingBack(new CloudFormationClient({ region: 'eu-west-1' }), 'arn:stack')).toBe(expected);
  });
});

describe('RdsDeletionProtection.apply', () => {
  const protection = () =>
    new RdsDeletionProtection(new RDSClient({ region: 'eu-west-1' }), new CloudFormationClient({}), 'orion-prod');

  test('sets the configured value where it differs, and waits while the instance is busy or renamed away', async () => {
    rds.on(ModifyDBInstanceCommand).resolves({});
    instances({ 'orion-prod': { DBInstanceStatus: 'available', DeletionProtection: false } });
    await protection().apply(true);
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'orion-prod', DeletionProtection: true, ApplyImmediately: true },
    ]);
    rds.resetHistory();
    instances({ 'orion-prod': { DBInstanceStatus: 'available', DeletionProtection: true } });
    await protection().apply(true);
    instances({ 'orion-prod': { DBInstanceStatus: 'backing-up', DeletionProtection: false } });
    await protection().apply(true);
    instances({}); // a restore renamed it away
    await protection().apply(true);
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
  });
});

describe('RdsDeletionProtection on an adopted instance', () => {
  const adopted = () =>
    new RdsDeletionProtection(new RDSClient({ region: 'eu-west-1' }), new CloudFormationClient({}), 'orion-prod', true);

  test('turns protection on when configured, and never off', async () => {
    rds.on(ModifyDBInstanceCommand).resolves({});
    instances({ 'orion-prod': { DBInstanceStatus: 'available', DeletionProtection: true } });
    await adopted().apply(false);
    expect(rds.commandCalls(ModifyDBInstanceCommand)).toHaveLength(0);
    instances({ 'orion-prod': { DBInstanceStatus: 'available', DeletionProtection: false } });
    await adopted().apply(true);
    expect(rds.commandCalls(ModifyDBInstanceCommand).map((c) => c.args[0].input)).toEqual([
      { DBInstanceIdentifier: 'orion-prod', DeletionProtection: true, ApplyImmediately: true },
    ]);
  });

  test('a failed first create of the adopting stack rolls back without touching the instance', async () => {
    rds.on(ModifyDBInstanceCommand).resolves({});
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Orion-prod',
          StackStatus: 'ROLLBACK_IN_PROGRESS',
          CreationTime: new Date('2026-11-02T10:00:00Z'),
        },
      ],
    });
    // Even an instance that looks younger than the stack (its clock, a restore) keeps its protection.
    instances({
      'orion-prod': {
        DBInstanceStatus: 'available',
        DeletionProtection: true,
        InstanceCreateTime: new Date('2026-11-02T10:05:00Z'),
      },
    });
    expect(
      await adopted().releaseForFailedCreate('arn:aws:cloudformation:eu-west-1:123456789012:stack/Orion-prod/x'),
    ).toBe(true);
    expect(rds.calls()).toHaveLength(0);
    expect(cfn.calls()).toHaveLength(0);
  });
});
