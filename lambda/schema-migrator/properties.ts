/**
 * The properties of `Custom::SchemaMigrations`: written by the CDK construct, read by the handler.
 * Defined once, here, and pinned by a test. CloudFormation delivers every value as a string.
 */
import type { RestoreSettings } from '../aws/snapshots';
import { BadInputError } from '../engine/errors';
import { DRIFT_POLICIES, type DriftPolicy } from '../lifecycle/drift';

export const RESOURCE_TYPE = 'Custom::SchemaMigrations';

/**
 * How long the handler keeps connecting while the database endpoint does not resolve (after a
 * restore-by-rename); the construct's time budget (lib/schema-migrations.ts) counts it.
 */
export const UNREACHABLE_RETRY_MS = 5 * 60_000;

/** What the construct writes (values may be CDK tokens at synth time). */
export interface SchemaMigrationsProperties {
  /** Changes on every deploy, so the resource is updated (and migrations run) every time. */
  readonly DeployId: string;
  /** sha256 over the migrations folder, so a changed folder is visible in the template diff (the handler does not read it). */
  readonly MigrationsHash: string;
  readonly DatabaseName: string;
  readonly OwnerRole: string;
  readonly GroupRole: string;
  readonly AppRole: string;
  readonly MasterSecretArn: string;
  readonly AppSecretArn: string;
  readonly InstanceIdentifier: string;
  readonly SnapshotPrefix: string;
  readonly SnapshotRetention: string;
  /**
   * "true" for an instance the stack adopted (config `existingInstance`): deletion protection is
   * never lifted from it, and a restore copies the replaced instance's own settings. Absent in
   * properties written before adoption existed (a rollback may deliver those): "false".
   */
  readonly AdoptedInstance?: string;
  /** `--baseline V` for the lifecycle (config `baselineVersion`); absent when not set. */
  readonly BaselineVersion?: string;
  /** What an in-place snapshot restore recreates the instance with (the Restore* below unless adopted). */
  readonly RestoreSubnetGroupName?: string;
  readonly RestoreSecurityGroupIds: readonly string[];
  readonly RestoreParameterGroupName?: string;
  readonly RestoreMultiAz?: string;
  readonly RestoreInstanceClass?: string;
  readonly RestoreStorageType?: string;
  readonly RestoreDeletionProtection: string;
  readonly RestorePort: string;
  /** An adopted instance's enhanced-monitoring role (config `existingInstance.monitoringRoleArn`), when configured. */
  readonly RestoreMonitoringRoleArn?: string;
  /**
   * What a stack rollback does to migrations the failed deploy applied (see RollbackPolicy). Optional
   * in the handler: a rollback carries the previous template's properties, which may predate it.
   */
  readonly Rollback?: RollbackPolicy;
  /** The newest migration version in the folder this template was synthesized with: a rollback's target. */
  readonly SchemaVersion?: string;
  /** The lifecycle's drift checks (config `driftPolicy`); absent in older templates: "off". */
  readonly DriftPolicy?: DriftPolicy;
}

/**
 * On a stack rollback: `keep` leaves the schema ahead (no data written since is lost; the alarm is
 * raised), `down-scripts` reverts with the down scripts stored in the ledger (what they drop is lost),
 * `restore` restores the failed deploy's pre-migration snapshot (every write since is lost).
 */
export const ROLLBACK_POLICIES = ['keep', 'down-scripts', 'restore'] as const;
export type RollbackPolicy = (typeof ROLLBACK_POLICIES)[number];
/** Loses nothing written after the deploy. */
export const DEFAULT_ROLLBACK_POLICY: RollbackPolicy = 'keep';

/** The same, narrowed and converted for the handler. */
export interface MigrationSettings {
  readonly deployId: string;
  readonly roles: { database: string; owner: string; group: string; app: string };
  readonly masterSecretArn: string;
  readonly appSecretArn: string;
  readonly instanceIdentifier: string;
  readonly snapshotPrefix: string;
  readonly snapshotRetention: number;
  /** The stack adopted the instance: never lift its deletion protection (see AdoptedInstance). */
  readonly adoptedInstance: boolean;
  readonly baselineVersion?: string;
  readonly restore: RestoreSettings;
  readonly rollback: RollbackPolicy;
  /** Undefined when the template predates the property. */
  readonly schemaVersion?: bigint;
  readonly driftPolicy: DriftPolicy;
}

/** Narrows the raw ResourceProperties; a missing or malformed one is a clear error naming it. */
export function parseProperties(raw: Record<string, unknown> | undefined): MigrationSettings {
  const p = raw ?? {};
  const str = (key: keyof SchemaMigrationsProperties): string => {
    const v = p[key];
    if (typeof v !== 'string' || v === '')
      throw new BadInputError(`Custom::SchemaMigrations property ${key} is missing or not a string`);
    return v;
  };
  const bool = (key: keyof SchemaMigrationsProperties): boolean => {
    const v = str(key);
    if (v !== 'true' && v !== 'false')
      throw new BadInputError(`Custom::SchemaMigrations property ${key} must be "true" or "false", got "${v}"`);
    return v === 'true';
  };
  const int = (key: keyof SchemaMigrationsProperties): number => {
    const v = Number(str(key));
    if (!Number.isInteger(v) || v < 0)
      throw new BadInputError(`Custom::SchemaMigrations property ${key} must be a whole number, got "${p[key]}"`);
    return v;
  };
  const adopted = p.AdoptedInstance === undefined ? false : bool('AdoptedInstance');
  const baseline = p.BaselineVersion;
  if (baseline !== undefined && (typeof baseline !== 'string' || !/^[1-9]\d{0,18}$/.test(baseline)))
    throw new BadInputError(
      `Custom::SchemaMigrations property BaselineVersion must be a positive whole number, got "${String(baseline)}"`,
    );
  const groups = p.RestoreSecurityGroupIds;
  if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string')) {
    throw new BadInputError('Custom::SchemaMigrations property RestoreSecurityGroupIds must be a list of strings');
  }
  const rollback = p.Rollback ?? DEFAULT_ROLLBACK_POLICY;
  if (!(ROLLBACK_POLICIES as readonly unknown[]).includes(rollback))
    throw new BadInputError(
      `Custom::SchemaMigrations property Rollback must be one of ${ROLLBACK_POLICIES.join(', ')}, got "${rollback}"`,
    );
  const driftPolicy = p.DriftPolicy ?? 'off';
  if (!(DRIFT_POLICIES as readonly unknown[]).includes(driftPolicy))
    throw new BadInputError(
      `Custom::SchemaMigrations property DriftPolicy must be one of ${DRIFT_POLICIES.join(', ')}, got "${driftPolicy}"`,
    );
  const version = p.SchemaVersion;
  if (version !== undefined && (typeof version !== 'string' || !/^(none|\d{1,19})$/.test(version)))
    throw new BadInputError(
      `Custom::SchemaMigrations property SchemaVersion must be a version or "none", got "${version}"`,
    );
  return {
    deployId: str('DeployId'),
    rollback: rollback as RollbackPolicy,
    driftPolicy: driftPolicy as DriftPolicy,
    schemaVersion: version === undefined ? undefined : version === 'none' ? 0n : BigInt(version),
    roles: { database: str('DatabaseName'), owner: str('OwnerRole'), group: str('GroupRole'), app: str('AppRole') },
    masterSecretArn: str('MasterSecretArn'),
    appSecretArn: str('AppSecretArn'),
    instanceIdentifier: str('InstanceIdentifier'),
    snapshotPrefix: str('SnapshotPrefix'),
    snapshotRetention: int('SnapshotRetention'),
    adoptedInstance: adopted,
    ...(baseline === undefined ? {} : { baselineVersion: baseline }),
    restore: adopted
      ? {
          fromInstance: true,
          securityGroupIds: groups as string[],
          deletionProtection: bool('RestoreDeletionProtection'),
          port: int('RestorePort'),
          ...(typeof p.RestoreMonitoringRoleArn === 'string' && p.RestoreMonitoringRoleArn
            ? { monitoringRoleArn: p.RestoreMonitoringRoleArn }
            : {}),
        }
      : {
          subnetGroupName: str('RestoreSubnetGroupName'),
          securityGroupIds: groups as string[],
          parameterGroupName: str('RestoreParameterGroupName'),
          multiAz: bool('RestoreMultiAz'),
          instanceClass: str('RestoreInstanceClass'),
          storageType: str('RestoreStorageType'),
          deletionProtection: bool('RestoreDeletionProtection'),
          port: int('RestorePort'),
        },
  };
}

/** The function's environment variable that carries the time budget's last poll start, in seconds. */
export const LAST_POLL_AFTER_ENV = 'LAST_POLL_AFTER_SECONDS';
