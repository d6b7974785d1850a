/**
 * Typed settings per environment, validated at synth time with errors that name the setting.
 */

import { validateIdentifier } from '../../lambda/engine/identifiers';
import { DRIFT_POLICIES, type DriftPolicy } from '../../lambda/lifecycle/drift';
import { DEFAULT_ROLES } from '../../lambda/lifecycle/names';
import { ROLLBACK_POLICIES, type RollbackPolicy } from '../../lambda/schema-migrator/properties';
import { ConfigError } from './errors';

export const ENVIRONMENT_NAMES = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

/** An existing VPC, described fully so synth needs no lookup (and no credentials). */
export interface ExistingVpc {
  readonly vpcId: string;
  /** The VPC's IPv4 CIDR: HTTPS to the VPC endpoints is allowed from it. */
  readonly cidrBlock: string;
  readonly availabilityZones: readonly string[];
  /** Isolated (or private) subnets, one per availability zone. */
  readonly subnetIds: readonly string[];
}

/**
 * An RDS instance built outside the stack (the SOP's console-created one), adopted as it is: the
 * stack creates no instance, and never replaces or deletes this one.
 */
export interface ExistingInstance {
  /** The instance identifier, e.g. `orion-prod` (its restores are `<id>-restore-*`, so at most 46 characters). */
  readonly identifier: string;
  /** The instance's endpoint address, `<identifier>.<hash>.<region>.rds.amazonaws.com`. */
  readonly endpoint: string;
  /** The port the instance listens on (the console's default is 5432). */
  readonly port: number;
  /** The instance's VPC security group: the stack's functions are admitted to it on `port`. */
  readonly securityGroupId: string;
  /**
   * Complete ARN (with its 6-character suffix) of a Secrets Manager secret of yours holding the
   * master's `username` and `password` as JSON; the stack attaches it to the instance, which adds
   * `engine`, `host` and `port`.
   */
  readonly masterSecretArn: string;
  /**
   * The customer-managed KMS key of the instance's storage (and so of its snapshots): restores need
   * `kms:CreateGrant` on it. @default - the AWS-managed `aws/rds` key, or none
   */
  readonly kmsKeyArn?: string;
  /**
   * ARN of the instance's enhanced-monitoring role, if it has enhanced monitoring: after a restore
   * the migration function gives it to the restored copy, which needs `iam:PassRole` on it.
   * @default - none: a restored copy's enhanced monitoring is turned on by hand (README, "On call")
   */
  readonly monitoringRoleArn?: string;
}

export interface EnvironmentConfig {
  readonly name: EnvironmentName;
  /** @default the CLI's account (CDK_DEFAULT_ACCOUNT); environment-agnostic when unknown */
  readonly account?: string;
  /** @default the CLI's region (CDK_DEFAULT_REGION); environment-agnostic when unknown */
  readonly region?: string;
  /** RDS instance class, e.g. `db.t3.medium`. */
  readonly instanceClass: string;
  readonly multiAz: boolean;
  /** gp3 storage at creation, GiB. */
  readonly allocatedStorageGiB: number;
  /** Storage autoscaling ceiling, GiB. */
  readonly maxAllocatedStorageGiB: number;
  readonly backupRetentionDays: number;
  readonly deletionProtection: boolean;
  /** PostgreSQL engine version, `16.x` (or `15.x`). */
  readonly engineVersion: string;
  readonly databaseName: string;
  readonly appRole: string;
  readonly ownerRole: string;
  readonly groupRole: string;
  /** @default 5433 — not the default port, to dodge the scans that target 5432 */
  readonly port: number;
  /** @default - a new VPC with isolated subnets in two availability zones */
  readonly existingVpc?: ExistingVpc;
  /**
   * Zones of the new VPC, e.g. `["eu-west-1a", "eu-west-1c"]`. Zone names map to different places in
   * each account, and not every account has every letter (`aws ec2 describe-availability-zones`).
   * @default - the first two zones the account has in the region, read at deploy time (Fn::GetAZs)
   */
  readonly availabilityZones?: readonly string[];
  /** Security groups of the application that may connect to the database. @default none */
  readonly applicationSecurityGroupIds: readonly string[];
  /** @default - alarms notify the SNS topic only */
  readonly alarmEmail?: string;
  /** Pre-migration snapshots to keep. */
  readonly snapshotRetention: number;
  /**
   * What a stack rollback does to migrations the failed deploy applied: `keep` (the schema stays
   * ahead, the alarm is raised; loses nothing written since), `down-scripts`, or `restore` (the
   * pre-migration snapshot). See README, "On call".
   */
  readonly rollback: RollbackPolicy;
  /**
   * Drift checks of every deploy (`orion-db drift`): `fail` stops a deploy that finds the database
   * changed by hand (before applying anything) and fails one whose result is not the replay of its
   * migrations; `warn` reports both (report, logs, the DriftFound metric and its alarm); `off`.
   */
  readonly driftPolicy: DriftPolicy;
  /**
   * A small instance without inbound rules in the database's subnets, reached only through SSM
   * Session Manager: on-call port forwarding to the database (see README, "Reaching the database").
   */
  readonly bastion: boolean;
  /**
   * @default - the stack creates the instance (`orion-<env>`) with the settings above
   */
  readonly existingInstance?: ExistingInstance;
  /**
   * For a database that has tables but no ledger (the hand-built one): the first deploy proves the
   * live schema equals what the migrations up to this version produce, records them as adopted, and
   * applies only the rest (`orion-db up --baseline V`). A positive integer, as a string.
   * @default - a database with tables and no ledger is refused
   */
  readonly baselineVersion?: string;
}

/** Settings without a default value in ENVIRONMENTS; a config file may set them too. */
export const OPTIONAL_SETTINGS = [
  'alarmEmail',
  'existingVpc',
  'availabilityZones',
  'existingInstance',
  'baselineVersion',
] as const;

const COMMON = {
  engineVersion: '16.13',
  databaseName: DEFAULT_ROLES.database,
  appRole: DEFAULT_ROLES.app,
  ownerRole: DEFAULT_ROLES.owner,
  groupRole: DEFAULT_ROLES.group,
  port: 5433,
  applicationSecurityGroupIds: [],
  snapshotRetention: 5,
  bastion: true,
  // Loses no data written after the deploy; dev overrides it.
  rollback: 'keep',
  // A hand change stops staging and prod deploys; dev only warns.
  driftPolicy: 'fail',
} as const;

export const ENVIRONMENTS: Readonly<Record<EnvironmentName, Omit<EnvironmentConfig, 'account' | 'region'>>> = {
  dev: {
    ...COMMON,
    name: 'dev',
    instanceClass: 'db.t3.micro',
    multiAz: false,
    allocatedStorageGiB: 20,
    maxAllocatedStorageGiB: 50,
    backupRetentionDays: 1,
    deletionProtection: false,
    databaseName: 'orion_dev',
    rollback: 'down-scripts',
    driftPolicy: 'warn',
  },
  staging: {
    ...COMMON,
    name: 'staging',
    instanceClass: 'db.t3.small',
    multiAz: true,
    allocatedStorageGiB: 20,
    maxAllocatedStorageGiB: 100,
    backupRetentionDays: 7,
    deletionProtection: true,
    databaseName: 'orion_staging',
  },
  prod: {
    ...COMMON,
    name: 'prod',
    instanceClass: 'db.t3.medium',
    multiAz: true,
    allocatedStorageGiB: 50,
    maxAllocatedStorageGiB: 500,
    backupRetentionDays: 14,
    deletionProtection: true,
  },
};

/** Which environments to synthesize: `-c env=NAME`, or all three. */
export function selectEnvironments(envContext: unknown): EnvironmentName[] {
  if (envContext === undefined || envContext === '') return [...ENVIRONMENT_NAMES];
  if (typeof envContext !== 'string' || !(ENVIRONMENT_NAMES as readonly string[]).includes(envContext)) {
    throw new ConfigError(
      `unknown environment ${JSON.stringify(envContext)} (-c env=...): expected one of ${ENVIRONMENT_NAMES.join(', ')}`,
    );
  }
  return [envContext as EnvironmentName];
}

/** Settings for one environment, with overrides (from context or tests), validated. */
export function environmentConfig(
  name: EnvironmentName,
  overrides: Partial<EnvironmentConfig> = {},
  env: { account?: string; region?: string } = {},
): EnvironmentConfig {
  const config: EnvironmentConfig = {
    ...ENVIRONMENTS[name],
    account: env.account,
    region: env.region,
    ...overrides,
    name,
  };
  validateEnvironment(config);
  return config;
}

export function validateEnvironment(c: EnvironmentConfig): void {
  const errors: string[] = [];
  const at = (setting: string, message: string) => errors.push(`${c.name}.${setting}: ${message}`);
  if (c.account !== undefined && !/^\d{12}$/.test(c.account))
    at('account', `must be a 12-digit AWS account id, got "${c.account}"`);
  if (c.region !== undefined && !/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/.test(c.region))
    at('region', `must be an AWS region like eu-west-1, got "${c.region}"`);
  if (!/^db\.[a-z0-9]+\.[a-z0-9]+$/.test(c.instanceClass))
    at('instanceClass', `must look like db.t3.medium, got "${c.instanceClass}"`);
  if (!/^1[56]\.\d+$/.test(c.engineVersion))
    at('engineVersion', `must be a PostgreSQL 16.x or 15.x version like 16.13, got "${c.engineVersion}"`);
  if (!(c.allocatedStorageGiB >= 20 && c.allocatedStorageGiB <= 65536))
    at('allocatedStorageGiB', `must be 20..65536, got ${c.allocatedStorageGiB}`);
  if (!(c.maxAllocatedStorageGiB >= c.allocatedStorageGiB))
    at(
      'maxAllocatedStorageGiB',
      `must be at least allocatedStorageGiB (${c.allocatedStorageGiB}), got ${c.maxAllocatedStorageGiB}`,
    );
  if (!(Number.isInteger(c.backupRetentionDays) && c.backupRetentionDays >= 0 && c.backupRetentionDays <= 35))
    at('backupRetentionDays', `must be 0..35, got ${c.backupRetentionDays}`);
  if (!(Number.isInteger(c.port) && c.port >= 1150 && c.port <= 65535))
    at('port', `must be 1150..65535 (the RDS range), got ${c.port}`);
  if (!(Number.isInteger(c.snapshotRetention) && c.snapshotRetention >= 1 && c.snapshotRetention <= 100))
    at('snapshotRetention', `must be 1..100, got ${c.snapshotRetention}`);
  if (!(DRIFT_POLICIES as readonly unknown[]).includes(c.driftPolicy))
    at('driftPolicy', `must be one of ${DRIFT_POLICIES.join(', ')}, got ${JSON.stringify(c.driftPolicy)}`);
  if (!(ROLLBACK_POLICIES as readonly unknown[]).includes(c.rollback))
    at('rollback', `must be one of ${ROLLBACK_POLICIES.join(', ')}, got ${JSON.stringify(c.rollback)}`);
  if (c.alarmEmail !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(c.alarmEmail))
    at('alarmEmail', `is not an e-mail address: "${c.alarmEmail}"`);
  for (const sg of c.applicationSecurityGroupIds)
    if (!/^sg-[0-9a-f]{8,17}$/.test(sg)) at('applicationSecurityGroupIds', `"${sg}" is not a security group id`);
  if (c.availabilityZones) {
    if (c.existingVpc) at('availabilityZones', 'give the zones in existingVpc.availabilityZones instead');
    if (c.availabilityZones.length < 2) at('availabilityZones', 'needs at least two zones (Multi-AZ, subnet group)');
    for (const zone of c.availabilityZones)
      if (!/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$/.test(zone) || (c.region && !zone.startsWith(c.region)))
        at('availabilityZones', `"${zone}" is not a zone of ${c.region ?? 'an AWS region'} (like eu-west-1a)`);
  }
  if (c.existingVpc) {
    const v = c.existingVpc;
    if (!/^vpc-[0-9a-f]{8,17}$/.test(v.vpcId)) at('existingVpc.vpcId', `"${v.vpcId}" is not a VPC id`);
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(v.cidrBlock))
      at('existingVpc.cidrBlock', `"${v.cidrBlock}" is not an IPv4 CIDR`);
    if (v.subnetIds.length < 2 || v.subnetIds.length !== v.availabilityZones.length)
      at('existingVpc.subnetIds', 'needs one subnet per availability zone, in at least two zones (Multi-AZ)');
  }
  if (c.existingInstance !== undefined) validateExistingInstance(c, at);
  if (
    c.baselineVersion !== undefined &&
    !(typeof c.baselineVersion === 'string' && /^[1-9]\d{0,18}$/.test(c.baselineVersion))
  )
    at(
      'baselineVersion',
      `must be a migration version, a positive integer given as a string like "1", got ${JSON.stringify(c.baselineVersion)}`,
    );
  if (c.name === 'prod') {
    if (!c.multiAz) at('multiAz', 'prod must be Multi-AZ');
    if (!c.deletionProtection) at('deletionProtection', 'prod must have deletion protection');
    if (c.backupRetentionDays < 7)
      at('backupRetentionDays', `prod needs at least 7 days of backups, got ${c.backupRetentionDays}`);
  }
  for (const [setting, value] of [
    ['databaseName', c.databaseName],
    ['appRole', c.appRole],
    ['ownerRole', c.ownerRole],
    ['groupRole', c.groupRole],
  ] as const) {
    try {
      validateIdentifier(value, `${c.name}.${setting}`);
    } catch (err) {
      errors.push((err as Error).message);
    }
  }
  if (errors.length) throw new ConfigError(`invalid configuration:\n  ${errors.join('\n  ')}`);
}

const EXISTING_INSTANCE_KEYS = [
  'identifier',
  'endpoint',
  'port',
  'securityGroupId',
  'masterSecretArn',
  'kmsKeyArn',
  'monitoringRoleArn',
];
/** RDS allows 63 characters; restores add `-restore-` and 8 hex digits to the identifier. */
const MAX_ADOPTED_IDENTIFIER = 63 - '-restore-'.length - 8;

/**
 * The adopted instance's settings, read as they come from a JSON file (any type may arrive).
 * Region and account in ARNs must be the environment's: the stack's roles live there.
 */
function validateExistingInstance(c: EnvironmentConfig, at: (setting: string, message: string) => void): void {
  const e = c.existingInstance as unknown;
  const field = (name: string) => `existingInstance.${name}`;
  if (typeof e !== 'object' || e === null || Array.isArray(e)) {
    at('existingInstance', 'must be an object with identifier, endpoint, port, securityGroupId and masterSecretArn');
    return;
  }
  const v = e as Record<string, unknown>;
  for (const key of Object.keys(v))
    if (!EXISTING_INSTANCE_KEYS.includes(key))
      at(field(key), `unknown setting (expected ${EXISTING_INSTANCE_KEYS.join(', ')})`);
  const text = (name: string, optional = false): string | undefined => {
    const value = v[name];
    if (value === undefined && optional) return undefined;
    if (typeof value !== 'string' || value === '') {
      at(field(name), value === undefined ? 'is missing' : `must be a string, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return value;
  };
  const identifier = text('identifier');
  if (
    identifier !== undefined &&
    !new RegExp(`^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,${MAX_ADOPTED_IDENTIFIER - 1}}$`).test(identifier)
  )
    at(
      field('identifier'),
      `"${identifier}" is not an RDS instance identifier this stack can restore: lower-case letters, digits and single hyphens, starting with a letter, at most ${MAX_ADOPTED_IDENTIFIER} characters (restores add "-restore-XXXXXXXX")`,
    );
  const endpoint = text('endpoint');
  if (endpoint !== undefined) {
    if (!/^[a-z0-9-]+(\.[a-z0-9-]+)+\.rds\.amazonaws\.com(\.cn)?$/.test(endpoint))
      at(
        field('endpoint'),
        `"${endpoint}" is not an RDS endpoint address (like orion-prod.abc123xyz.eu-west-1.rds.amazonaws.com)`,
      );
    else if (identifier !== undefined && !endpoint.startsWith(`${identifier}.`))
      at(
        field('endpoint'),
        `"${endpoint}" is not the endpoint of instance "${identifier}" (it starts with the identifier)`,
      );
    else if (c.region !== undefined && !endpoint.includes(`.${c.region}.rds.`))
      at(field('endpoint'), `"${endpoint}" is not in ${c.region}, the environment's region`);
  }
  if (!(typeof v.port === 'number' && Number.isInteger(v.port) && v.port >= 1150 && v.port <= 65535))
    at(field('port'), `must be the instance's port, 1150..65535 (the RDS range), got ${JSON.stringify(v.port)}`);
  const sg = text('securityGroupId');
  if (sg !== undefined && !/^sg-[0-9a-f]{8,17}$/.test(sg))
    at(field('securityGroupId'), `"${sg}" is not a security group id`);
  const inEnvironment = (name: string, arn: RegExpMatchArray) => {
    const [, region, account] = arn;
    if (c.region !== undefined && region !== c.region)
      at(field(name), `is in region ${region}, not the environment's ${c.region}`);
    if (c.account !== undefined && account !== c.account)
      at(field(name), `is in account ${account}, not the environment's ${c.account}`);
  };
  const secret = text('masterSecretArn');
  if (secret !== undefined) {
    const m = secret.match(/^arn:aws(?:-cn|-us-gov)?:secretsmanager:([a-z0-9-]+):(\d{12}):secret:(.+)-[A-Za-z0-9]{6}$/);
    if (!m)
      at(
        field('masterSecretArn'),
        `"${secret}" is not a complete secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX, with the 6-character suffix \`aws secretsmanager describe-secret\` shows)`,
      );
    else if (m[3].startsWith('rds!'))
      at(
        field('masterSecretArn'),
        'is a secret RDS manages itself (manage-master-user-password): it rotates on its own and holds no host or port; store the master credentials in a secret of your own (README, "Bring the hand-built orion_prod under the stack")',
      );
    else inEnvironment('masterSecretArn', m);
  }
  const key = text('kmsKeyArn', true);
  if (key !== undefined) {
    const m = key.match(/^arn:aws(?:-cn|-us-gov)?:kms:([a-z0-9-]+):(\d{12}):key\/(?:mrk-)?[0-9a-f-]{32,36}$/);
    if (!m)
      at(
        field('kmsKeyArn'),
        `"${key}" is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID; an alias will not do)`,
      );
    else inEnvironment('kmsKeyArn', m);
  }
  const monitoring = text('monitoringRoleArn', true);
  if (monitoring !== undefined) {
    const m = monitoring.match(/^arn:aws(?:-cn|-us-gov)?:iam::(\d{12}):role\/[\w+=,.@/-]+$/);
    if (!m) at(field('monitoringRoleArn'), `"${monitoring}" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`);
    else if (c.account !== undefined && m[1] !== c.account)
      at(field('monitoringRoleArn'), `is in account ${m[1]}, not the environment's ${c.account}`);
  }
  // The functions that reach the instance run in its VPC: the stack must be told which one.
  if (!c.existingVpc)
    at(
      'existingInstance',
      'needs existingVpc: the VPC the instance is in, where the migration and rotation functions run',
    );
}
