/**
 * The snapshot port on RDS. Every step is resumable: where a restore is, is read back from the
 * instances' identifiers, statuses and tags, never kept in memory.
 *
 * In-place restore (the endpoint stays the same):
 *   1. restore the snapshot to `<id>-restore-<h>` with the instance's settings;
 *   2. when it is available, rename the failed `<id>` to `<id>-failed-<h>` (kept, tagged, for inspection);
 *   3. rename `<id>-restore-<h>` to `<id>`; done when it is available under that name.
 */
import { createHash } from 'node:crypto';
import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  type DBInstance,
  type DBSnapshot,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  type DescribeDBInstancesCommandOutput,
  DescribeDBSnapshotsCommand,
  type DescribeDBSnapshotsCommandOutput,
  ModifyDBInstanceCommand,
  type ModifyDBInstanceCommandInput,
  type RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
  type RestoreDBInstanceFromDBSnapshotCommandInput,
  type Tag,
} from '@aws-sdk/client-rds';
import type { RestoreState, RestoreStatus, SnapshotInfo, SnapshotPort, SnapshotState } from '../lifecycle/ports';
import { unlessNotFound } from './not-found';

export const TAG_RESTORED_FROM = 'orion:restored-from';
export const TAG_FAILED_DEPLOY = 'orion:failed-deploy-snapshot';
export const TAG_RESTORE_REASON = 'orion:restore-reason';
/**
 * On every pre-migration snapshot `ensure` takes: `list` (and so the prune) sees only those. An adopted
 * instance's own manual snapshots may have names like ours; they never carry it.
 */
export const TAG_PRE_MIGRATION = 'orion:pre-migration';
/** Set by the lifecycle on every snapshot before TAG_PRE_MIGRATION existed: those are ours too. */
const TAG_DEPLOY_ID = 'orion:deploy-id';
/** On the restored instance once the settings a restore cannot carry were copied from the failed one. */
export const TAG_SETTINGS_COPIED = 'orion:settings-copied';
/** On the restored instance once enhanced monitoring was copied (or why not): a call of its own, after the rest. */
export const TAG_MONITORING_COPIED = 'orion:monitoring-copied';

/** What a restored instance is given so it takes the failed one's place (from the stack, through the custom resource). */
export type RestoreSettings = GivenRestoreSettings | AdoptedRestoreSettings;

/** An instance the stack created: it knows every setting. */
export interface GivenRestoreSettings {
  readonly fromInstance?: false;
  readonly subnetGroupName: string;
  readonly securityGroupIds: readonly string[];
  readonly parameterGroupName: string;
  readonly multiAz: boolean;
  readonly instanceClass: string;
  readonly storageType: string;
  readonly deletionProtection: boolean;
  readonly port: number;
}

/**
 * An instance the stack adopted: its subnet group, parameter group, class, Multi-AZ and storage type
 * are not in the stack, so the restore copies them from the instance it replaces.
 */
export interface AdoptedRestoreSettings {
  readonly fromInstance: true;
  readonly securityGroupIds: readonly string[];
  /** Turned on for the restored instance; an adopted instance's own protection is kept either way. */
  readonly deletionProtection: boolean;
  readonly port: number;
  /**
   * The enhanced-monitoring role the stack may pass (config `existingInstance.monitoringRoleArn`).
   * Without it, a restore does not turn enhanced monitoring back on: the tag says so.
   */
  readonly monitoringRoleArn?: string;
}

export interface RdsSnapshotsOptions {
  readonly instanceIdentifier: string;
  readonly restore: RestoreSettings;
  /** Added to every snapshot and restored instance (e.g. the stack). */
  readonly tags?: Readonly<Record<string, string>>;
}

export class RdsSnapshots implements SnapshotPort {
  constructor(
    private readonly rds: RDSClient,
    private readonly options: RdsSnapshotsOptions,
  ) {}

  async ensure(id: string, tags: Readonly<Record<string, string>>): Promise<SnapshotState> {
    const existing = await this.snapshot(id);
    if (existing) return snapshotState(existing);
    try {
      await this.send(
        new CreateDBSnapshotCommand({
          DBInstanceIdentifier: this.options.instanceIdentifier,
          DBSnapshotIdentifier: id,
          Tags: toTags({ ...this.options.tags, ...tags, [TAG_PRE_MIGRATION]: this.options.instanceIdentifier }),
        }),
      );
    } catch (err: any) {
      // Another invocation created it first, or the instance is busy (a backup): look again next poll.
      if (err?.name !== 'DBSnapshotAlreadyExistsFault' && err?.name !== 'InvalidDBInstanceStateFault') throw err;
    }
    return 'creating';
  }

  async list(): Promise<SnapshotInfo[]> {
    const found: SnapshotInfo[] = [];
    let marker: string | undefined;
    do {
      const out: DescribeDBSnapshotsCommandOutput = await this.send(
        new DescribeDBSnapshotsCommand({
          DBInstanceIdentifier: this.options.instanceIdentifier,
          SnapshotType: 'manual',
          Marker: marker,
        }),
      );
      for (const s of out.DBSnapshots ?? []) {
        const ours = s.TagList?.some((t) => t.Key === TAG_PRE_MIGRATION || t.Key === TAG_DEPLOY_ID);
        if (s.DBSnapshotIdentifier && ours)
          found.push({
            id: s.DBSnapshotIdentifier,
            createdAt: s.SnapshotCreateTime ?? new Date(0),
            ...(s.SnapshotCreateTime === undefined || s.Status === 'creating' ? { creating: true } : {}),
          });
      }
      marker = out.Marker;
    } while (marker);
    return found;
  }

  async delete(id: string): Promise<void> {
    await unlessNotFound(
      () => this.send(new DeleteDBSnapshotCommand({ DBSnapshotIdentifier: id })),
      'DBSnapshotNotFoundFault',
    );
  }

  async restoreStatus(id: string): Promise<RestoreStatus> {
    const { original, temporary, failed } = await this.instances(id);
    const reason = (await this.snapshot(id))?.TagList?.find((t) => t.Key === TAG_RESTORE_REASON)?.Value;
    if (original && tag(original, TAG_RESTORED_FROM) === id)
      return { state: original.DBInstanceStatus === 'available' ? 'done' : 'in-progress', reason };
    if (temporary || failed) return { state: 'in-progress', reason };
    return { state: 'none' };
  }

  async restore(id: string, reason: string): Promise<RestoreState> {
    const names = this.names(id);
    const snapshot = await this.snapshot(id);
    if (!snapshot) throw new Error(`cannot restore: snapshot ${id} does not exist`);
    if (!snapshot.TagList?.some((t) => t.Key === TAG_RESTORE_REASON) && snapshot.DBSnapshotArn) {
      await this.send(
        new AddTagsToResourceCommand({
          ResourceName: snapshot.DBSnapshotArn,
          Tags: toTags({ [TAG_RESTORE_REASON]: tagValue(reason) }),
        }),
      );
    }
    const { original, temporary, failed } = await this.instances(id);
    if (original && tag(original, TAG_RESTORED_FROM) === id) {
      if (original.DBInstanceStatus !== 'available') return 'in-progress';
      if (!failed) return 'done';
      if (tag(original, TAG_SETTINGS_COPIED) === undefined) {
        await this.copyRestOfSettings(original, failed, id);
        return 'in-progress';
      }
      // Its own call, at a later poll once the first is applied: a PassRole denial loses only monitoring.
      if (failed.MonitoringInterval && tag(original, TAG_MONITORING_COPIED) === undefined) {
        await this.copyMonitoring(original, failed, id);
        return 'in-progress';
      }
      return 'done';
    }
    if (!failed) {
      if (!temporary) {
        const r = restoreLike(this.options.restore, original, this.options.instanceIdentifier);
        await this.send(
          new RestoreDBInstanceFromDBSnapshotCommand({
            DBInstanceIdentifier: names.temporary,
            DBSnapshotIdentifier: id,
            DBSubnetGroupName: r.subnetGroupName,
            VpcSecurityGroupIds: [...r.securityGroupIds],
            DBParameterGroupName: r.parameterGroupName,
            MultiAZ: r.multiAz,
            DBInstanceClass: r.instanceClass,
            StorageType: r.storageType,
            Iops: r.iops,
            Port: r.port,
            PubliclyAccessible: false,
            CopyTagsToSnapshot: true,
            DeletionProtection: false, // until it has taken the original's name
            EnableCloudwatchLogsExports: [...r.logExports],
            ...carriedOver(original),
            // The failed instance's own tags (a cost centre, an owner), then ours; not the restore's markers.
            Tags: restoreTags(ownTags(original), { ...this.options.tags, [TAG_RESTORED_FROM]: id }),
          }),
        );
        return 'in-progress';
      }
      if (temporary.DBInstanceStatus !== 'available' || !original || original.DBInstanceStatus !== 'available')
        return 'in-progress';
      await this.send(
        new AddTagsToResourceCommand({
          ResourceName: original.DBInstanceArn!,
          Tags: toTags({ [TAG_FAILED_DEPLOY]: id }),
        }),
      );
      await this.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: this.options.instanceIdentifier,
          NewDBInstanceIdentifier: names.failed,
          ApplyImmediately: true,
        }),
      );
      return 'in-progress';
    }
    // The failed instance has its new name; give the restored one the original name.
    if (!original && temporary && temporary.DBInstanceStatus === 'available') {
      await this.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: names.temporary,
          NewDBInstanceIdentifier: this.options.instanceIdentifier,
          // An adopted instance keeps the protection it had, whatever the environment's setting.
          DeletionProtection:
            this.options.restore.deletionProtection ||
            (this.options.restore.fromInstance === true && failed.DeletionProtection === true),
          ApplyImmediately: true,
        }),
      );
    }
    return 'in-progress';
  }

  /**
   * What a restore request cannot carry, copied from the failed instance once the copy has its name:
   * Performance Insights and its key, backup retention, storage autoscaling (enhanced monitoring
   * follows in its own call, copyMonitoring). The tag records it is done, so a later poll (or deploy) does not do it again.
   */
  private async copyRestOfSettings(restored: DBInstance, failed: DBInstance, id: string): Promise<void> {
    await this.modifyAndRecord(restored, TAG_SETTINGS_COPIED, id, {
      EnablePerformanceInsights: failed.PerformanceInsightsEnabled ?? false,
      ...(failed.PerformanceInsightsEnabled
        ? {
            PerformanceInsightsKMSKeyId: failed.PerformanceInsightsKMSKeyId,
            PerformanceInsightsRetentionPeriod: failed.PerformanceInsightsRetentionPeriod,
          }
        : {}),
      ...(failed.BackupRetentionPeriod !== undefined ? { BackupRetentionPeriod: failed.BackupRetentionPeriod } : {}),
      ...(failed.MaxAllocatedStorage !== undefined ? { MaxAllocatedStorage: failed.MaxAllocatedStorage } : {}),
    });
  }

  /**
   * Enhanced monitoring and its role, as the failed instance had them. Passing the role takes
   * iam:PassRole on it, which the stack grants only for the role it knows: an adopted instance without
   * a configured monitoringRoleArn gets no role sent, and the tag says monitoring is to be turned on by hand.
   */
  private async copyMonitoring(restored: DBInstance, failed: DBInstance, id: string): Promise<void> {
    const r = this.options.restore;
    if (r.fromInstance === true && !r.monitoringRoleArn) {
      return this.record(
        restored,
        TAG_MONITORING_COPIED,
        'not copied: no monitoringRoleArn configured for the adopted instance; turn enhanced monitoring on by hand',
      );
    }
    await this.modifyAndRecord(restored, TAG_MONITORING_COPIED, id, {
      MonitoringInterval: failed.MonitoringInterval,
      MonitoringRoleArn: failed.MonitoringRoleArn,
    });
  }

  /**
   * One best-effort ModifyDBInstance on the restored instance, its outcome recorded in `tag`: the data is
   * back either way, and the tag says what was not copied (README, "On call").
   */
  private async modifyAndRecord(
    restored: DBInstance,
    tag: string,
    done: string,
    settings: Omit<ModifyDBInstanceCommandInput, 'DBInstanceIdentifier' | 'ApplyImmediately'>,
  ): Promise<void> {
    let outcome = done;
    try {
      await this.send(
        new ModifyDBInstanceCommand({
          DBInstanceIdentifier: this.options.instanceIdentifier,
          ...settings,
          ApplyImmediately: true,
        }),
      );
    } catch (err: any) {
      outcome = `not copied: ${err?.name ?? 'error'}: ${err?.message ?? err}`;
    }
    await this.record(restored, tag, outcome);
  }

  private async record(restored: DBInstance, tag: string, outcome: string): Promise<void> {
    await this.send(
      new AddTagsToResourceCommand({ ResourceName: restored.DBInstanceArn!, Tags: toTags({ [tag]: outcome }) }),
    );
  }

  keptAs(id: string): string {
    return this.names(id).failed;
  }

  private names(id: string): { temporary: string; failed: string } {
    const h = createHash('sha256').update(id).digest('hex').slice(0, 8);
    return {
      temporary: `${this.options.instanceIdentifier}-restore-${h}`,
      failed: `${this.options.instanceIdentifier}-failed-${h}`,
    };
  }

  private async instances(id: string): Promise<{ original?: DBInstance; temporary?: DBInstance; failed?: DBInstance }> {
    const names = this.names(id);
    const [original, temporary, failed] = await Promise.all([
      this.instance(this.options.instanceIdentifier),
      this.instance(names.temporary),
      this.instance(names.failed),
    ]);
    return { original, temporary, failed };
  }

  private async instance(identifier: string): Promise<DBInstance | undefined> {
    const out: DescribeDBInstancesCommandOutput | undefined = await unlessNotFound(
      () => this.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: identifier })),
      'DBInstanceNotFoundFault',
    );
    return out?.DBInstances?.[0];
  }

  private async snapshot(id: string): Promise<DBSnapshot | undefined> {
    const out: DescribeDBSnapshotsCommandOutput | undefined = await unlessNotFound(
      () => this.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id })),
      'DBSnapshotNotFoundFault',
    );
    return out?.DBSnapshots?.[0];
  }

  // The SDK's per-command overloads do not survive a generic wrapper; results are typed at the call sites.
  private send(command: any): Promise<any> {
    return this.rds.send(command);
  }
}

/** The settings the restored copy gets: as given, or the replaced (adopted) instance's own. */
function restoreLike(r: RestoreSettings, original: DBInstance | undefined, identifier: string): RestoreRequest {
  if (!r.fromInstance) return { ...r, logExports: ['postgresql', 'upgrade'] };
  if (!original)
    throw new Error(
      `cannot restore: instance ${identifier} is gone, and its settings are what the restored copy takes`,
    );
  const subnetGroupName = original.DBSubnetGroup?.DBSubnetGroupName;
  const parameterGroupName = original.DBParameterGroups?.[0]?.DBParameterGroupName;
  if (!subnetGroupName || !parameterGroupName || !original.DBInstanceClass || original.MultiAZ === undefined)
    throw new Error(
      `cannot restore: RDS did not describe ${identifier}'s subnet group, parameter group, class and Multi-AZ`,
    );
  const groups = (original.VpcSecurityGroups ?? []).flatMap((g) =>
    g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
  );
  const storageType = original.StorageType ?? 'gp2';
  return {
    subnetGroupName,
    parameterGroupName,
    securityGroupIds: groups.length ? groups : r.securityGroupIds,
    multiAz: original.MultiAZ,
    instanceClass: original.DBInstanceClass,
    storageType,
    iops: storageType.startsWith('io') ? original.Iops : undefined,
    port: original.Endpoint?.Port ?? r.port,
    logExports: original.EnabledCloudwatchLogsExports ?? [],
  };
}

/**
 * What the instance has that a restore request also takes, beyond the stack's settings: storage size,
 * provisioned IOPS and throughput, the CA certificate, backup retention and window, minor-version
 * upgrades, IAM authentication, copying tags to snapshots and its log exports. Not the KMS key: the
 * request takes none, and a restore from an encrypted snapshot is encrypted with the snapshot's key.
 * What a restore cannot carry at all is copied after the rename (copyRestOfSettings).
 */
function carriedOver(original: DBInstance | undefined): Partial<RestoreDBInstanceFromDBSnapshotCommandInput> {
  if (!original) return {};
  const type = original.StorageType;
  // gp3 below 400 GiB (PostgreSQL) has a fixed baseline, and RDS refuses IOPS or throughput given for it.
  const gp3Provisioned = type === 'gp3' && (original.AllocatedStorage ?? 0) >= 400;
  const carried: Partial<RestoreDBInstanceFromDBSnapshotCommandInput> = {
    AllocatedStorage: original.AllocatedStorage,
    Iops: type?.startsWith('io') || gp3Provisioned ? original.Iops : undefined,
    StorageThroughput: gp3Provisioned ? original.StorageThroughput : undefined,
    CACertificateIdentifier: original.CACertificateIdentifier,
    BackupRetentionPeriod: original.BackupRetentionPeriod,
    PreferredBackupWindow: original.PreferredBackupWindow,
    AutoMinorVersionUpgrade: original.AutoMinorVersionUpgrade,
    EnableIAMDatabaseAuthentication: original.IAMDatabaseAuthenticationEnabled,
    CopyTagsToSnapshot: original.CopyTagsToSnapshot,
    EnableCloudwatchLogsExports: original.EnabledCloudwatchLogsExports,
  };
  return Object.fromEntries(Object.entries(carried).filter(([, v]) => v !== undefined));
}

/** RDS refuses a request with more than 50 tags on a resource. */
const MAX_TAGS = 50;

/**
 * The restored instance's tags: ours all (the restore's marker is how later polls find it), then as
 * many of the failed instance's own as fit in RDS's limit; the rest stay on the failed instance, kept.
 */
function restoreTags(own: Record<string, string>, ours: Record<string, string>): Tag[] {
  const room = Math.max(0, MAX_TAGS - Object.keys(ours).length);
  const kept = Object.entries(own)
    .filter(([k]) => !(k in ours))
    .slice(0, room);
  return toTags({ ...Object.fromEntries(kept), ...ours });
}

/** The instance's tags, less AWS's reserved ones and the markers of an earlier restore. */
function ownTags(original: DBInstance | undefined): Record<string, string> {
  const ours = new Set([TAG_RESTORED_FROM, TAG_FAILED_DEPLOY, TAG_SETTINGS_COPIED, TAG_MONITORING_COPIED]);
  return Object.fromEntries(
    (original?.TagList ?? [])
      .filter((t) => t.Key && t.Value !== undefined && !t.Key.startsWith('aws:') && !ours.has(t.Key))
      .map((t) => [t.Key!, t.Value!]),
  );
}

/** What the restore call is given: the stack's settings, or an adopted instance's as read from RDS. */
type RestoreRequest = Omit<GivenRestoreSettings, 'fromInstance' | 'deletionProtection'> & {
  readonly iops?: number;
  readonly logExports: readonly string[];
};

function snapshotState(s: DBSnapshot): SnapshotState {
  if (s.Status === 'available') return 'available';
  if (s.Status === 'creating' || s.Status === 'pending') return 'creating';
  throw new Error(`snapshot ${s.DBSnapshotIdentifier} is ${s.Status}: it cannot protect this deploy`);
}

function tag(instance: DBInstance, key: string): string | undefined {
  return instance.TagList?.find((t) => t.Key === key)?.Value;
}

function toTags(tags: Readonly<Record<string, string>>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value: tagValue(Value) }));
}

/** RDS tag values: at most 256 characters of a limited set. */
function tagValue(v: string): string {
  return v.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, ' ').slice(0, 256);
}
