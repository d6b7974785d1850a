/**
 * `Custom::SchemaMigrations`: runs the deploy lifecycle (bootstrap → snapshot → migrate → lockdown →
 * verify, restore on failure) on every deploy, from a Lambda inside the database's VPC, behind the
 * CDK Provider framework.
 */

import { join } from 'node:path';
import { ArnFormat, CustomResource, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as rds from 'aws-cdk-lib/aws-rds';
import type * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { DriftPolicy } from '../lambda/lifecycle/drift';
import {
  DEFAULT_ROLLBACK_POLICY,
  LAST_POLL_AFTER_ENV,
  RESOURCE_TYPE,
  type RollbackPolicy,
  type SchemaMigrationsProperties,
  UNREACHABLE_RETRY_MS,
} from '../lambda/schema-migrator/properties';
import { lintErrorsForSynth } from './private/lint-at-synth';
import { hashMigrations, latestVersion } from './private/migrations-hash';

export const METRICS_NAMESPACE = 'Orion/SchemaMigrations';
const ROOT = join(__dirname, '..');

/**
 * How the custom resource's hour is spent. CloudFormation fails it after `serviceTimeout`; the
 * Provider framework must answer first. Its waiter (a Step Functions Retry) counts only the pauses:
 * MaxAttempts = totalTimeout / queryInterval, each attempt preceded by IntervalSeconds, so the
 * invocations' own time comes on top: the one that migrates, the first connection after a restore,
 * and every other poll's short one. `worstCase` adds them up; a test keeps it under the hour.
 */
export const TIME_BUDGET = {
  /** CloudFormation's limit for a custom resource. */
  serviceTimeout: Duration.hours(1),
  /** onEvent reads the properties (on a failed create's rollback: one DescribeStacks and one ModifyDBInstance). */
  onEventTimeout: Duration.minutes(2),
  /** The invocation that migrates may use it all; less than the framework's own 15 minutes, which waits for it. */
  isCompleteTimeout: Duration.minutes(14),
  queryInterval: Duration.minutes(1),
  /** The pauses between polls: the snapshot being taken, a restore under way, a lock held elsewhere. */
  totalTimeout: Duration.minutes(25),
  /** The poll that connects after a restore-by-rename, while the endpoint's name does not resolve yet. */
  reconnect: Duration.millis(UNREACHABLE_RETRY_MS),
  /** What each other poll costs at most: a cold start in the VPC, reading secrets, connecting, planning. */
  pollAllowance: Duration.seconds(20),
} as const;

/** The longest the Provider framework can take to answer, in seconds (see TIME_BUDGET). */
export function worstCaseSeconds(b: typeof TIME_BUDGET = TIME_BUDGET): number {
  const polls = b.totalTimeout.toSeconds() / b.queryInterval.toSeconds();
  return (
    b.onEventTimeout.toSeconds() +
    b.isCompleteTimeout.toSeconds() +
    b.reconnect.toSeconds() +
    b.totalTimeout.toSeconds() +
    polls * b.pollAllowance.toSeconds()
  );
}

/**
 * No isComplete poll starts later than this after onEvent took its start time: the last one may run the
 * whole isCompleteTimeout, and the framework's answer must reach CloudFormation within serviceTimeout.
 * What comes before that start time (onEvent's cold start) and after the last poll (the answer) is one
 * pollAllowance each. Whole minutes, rounded down. The handler gets it in its environment.
 */
export function lastPollAfter(b: typeof TIME_BUDGET = TIME_BUDGET): Duration {
  const seconds = b.serviceTimeout.toSeconds() - b.isCompleteTimeout.toSeconds() - 2 * b.pollAllowance.toSeconds();
  return Duration.minutes(Math.floor(seconds / 60));
}

export interface SchemaMigrationsProps {
  readonly vpc: ec2.IVpc;
  /** Where the Lambda runs: subnets that reach the database and the VPC endpoints. */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** The instance the stack created, or the one it adopted (`DatabaseInstance.fromDatabaseInstanceAttributes`). */
  readonly instance: rds.IDatabaseInstance;
  /** The instance's fixed identifier (snapshots and restores are scoped to it). */
  readonly instanceIdentifier: string;
  readonly masterSecret: secretsmanager.ISecret;
  readonly appSecret: secretsmanager.ISecret;
  readonly databaseName: string;
  readonly ownerRole: string;
  readonly groupRole: string;
  readonly appRole: string;
  /** What an in-place restore recreates the instance with. */
  readonly restore: CreatedInstanceRestore | AdoptedInstanceRestore;
  /**
   * Passed to the lifecycle as `--baseline V`: a database with tables and no ledger is proved equal
   * to the migrations up to V and adopted. @default - no baseline: such a database is refused
   */
  readonly baselineVersion?: string;
  /** Pre-migration snapshots to keep. @default 5 */
  readonly snapshotRetention?: number;
  /** What a stack rollback does to migrations a deploy applied (see README, "On call"). @default 'keep' */
  readonly rollback?: RollbackPolicy;
  /** The lifecycle's drift checks before and after applying (see README, "Drift"). @default 'off' */
  readonly driftPolicy?: DriftPolicy;
  /**
   * Identifies this deploy; a new value makes CloudFormation update the resource, which runs the
   * lifecycle. @default - the synth time, so every `cdk deploy` runs it
   */
  readonly deployId?: string;
  /** @default - the project's `migrations/` folder */
  readonly migrationsDir?: string;
}

/** An instance the stack created: the restore is given every setting. */
export interface CreatedInstanceRestore {
  readonly adopted?: false;
  readonly subnetGroupName: string;
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  readonly parameterGroupName: string;
  readonly multiAz: boolean;
  readonly instanceClass: string;
  readonly encryptionKey: kms.IKey;
  readonly deletionProtection: boolean;
  readonly port: number;
  /**
   * The instance's enhanced-monitoring role: after a restore, ModifyDBInstance gives it to the restored
   * copy (MonitoringRoleArn), which takes iam:PassRole on it. @default - no enhanced monitoring
   */
  readonly monitoringRole?: iam.IRole;
}

/**
 * An instance the stack adopted: a restore copies the replaced instance's subnet group, parameter
 * group, class, Multi-AZ and storage (read from RDS at the time), and its deletion protection is
 * never lifted.
 */
export interface AdoptedInstanceRestore {
  readonly adopted: true;
  readonly securityGroups: readonly ec2.ISecurityGroup[];
  /** The key of the instance's storage and snapshots. @default - the AWS-managed `aws/rds` key: no grant needed */
  readonly encryptionKey?: kms.IKey;
  readonly deletionProtection: boolean;
  readonly port: number;
  /** Its enhanced-monitoring role (see CreatedInstanceRestore). @default - not passed: copied by hand */
  readonly monitoringRole?: iam.IRole;
}

export class SchemaMigrations extends Construct {
  readonly resource: CustomResource;
  readonly securityGroup: ec2.SecurityGroup;
  readonly role: iam.Role;
  readonly snapshotPrefix: string;
  readonly instanceIdentifier: string;

  constructor(scope: Construct, id: string, props: SchemaMigrationsProps) {
    super(scope, id);
    const migrationsDir = props.migrationsDir ?? join(ROOT, 'migrations');
    // A dangerous migration must not reach a deploy by accident: lint errors fail `cdk synth`.
    this.node.addValidation({ validate: () => lintErrorsForSynth(migrationsDir) });
    this.instanceIdentifier = props.instanceIdentifier;
    this.snapshotPrefix = props.instanceIdentifier;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: 'Schema migrations Lambda: to the database and the VPC endpoints',
      allowAllOutbound: true,
    });
    props.instance.connections.allowDefaultPortFrom(this.securityGroup, 'schema migrations Lambda');

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: 'Schema migrations: this instance, its snapshots and its secrets only',
    });
    this.grantPermissions(props);

    const logGroup = new logs.LogGroup(this, 'Logs', { retention: logs.RetentionDays.THREE_MONTHS });
    const handler = (name: 'onEvent' | 'isComplete') =>
      new NodejsFunction(this, name === 'onEvent' ? 'OnEvent' : 'IsComplete', {
        entry: join(ROOT, 'lambda', 'schema-migrator', 'index.ts'),
        handler: name,
        runtime: lambda.Runtime.NODEJS_24_X,
        architecture: lambda.Architecture.ARM_64,
        memorySize: 512,
        timeout: name === 'onEvent' ? TIME_BUDGET.onEventTimeout : TIME_BUDGET.isCompleteTimeout,
        role: this.role,
        vpc: props.vpc,
        vpcSubnets: props.vpcSubnets,
        securityGroups: [this.securityGroup],
        logGroup,
        environment: {
          // TLS to RDS is verified against the RDS CA bundle the runtime ships.
          NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
          POWERTOOLS_SERVICE_NAME: 'schema-migrator',
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          MIGRATIONS_DIR: './migrations',
          [LAST_POLL_AFTER_ENV]: String(lastPollAfter().toSeconds()),
        },
        projectRoot: ROOT,
        depsLockFilePath: join(ROOT, 'package-lock.json'),
        bundling: {
          format: OutputFormat.CJS,
          minify: true,
          sourceMap: true,
          target: 'node24',
          // The SQL parser loads its WebAssembly from beside the bundle; the migrations ship inside it.
          commandHooks: {
            beforeBundling: () => [],
            beforeInstall: () => [],
            afterBundling: (inputDir: string, outputDir: string) => [
              `cp "${inputDir}/node_modules/libpg-query/wasm/libpg-query.wasm" "${outputDir}/"`,
              `mkdir -p "${outputDir}/migrations"`,
              `cp "${migrationsDir}"/*.sql "${outputDir}/migrations/"`,
            ],
          },
        },
      });
    const onEvent = handler('onEvent');
    const isComplete = handler('isComplete');

    const provider = new cr.Provider(this, 'Provider', {
      onEventHandler: onEvent,
      isCompleteHandler: isComplete,
      queryInterval: TIME_BUDGET.queryInterval,
      totalTimeout: TIME_BUDGET.totalTimeout,
      logGroup: new logs.LogGroup(this, 'ProviderLogs', { retention: logs.RetentionDays.THREE_MONTHS }),
      disableWaiterStateMachineLogging: false,
      waiterStateMachineLogOptions: {
        destination: new logs.LogGroup(this, 'WaiterLogs', { retention: logs.RetentionDays.THREE_MONTHS }),
        level: sfn.LogLevel.ALL,
        includeExecutionData: false, // execution data carries the resource properties
      },
    });

    const r = props.restore;
    const restore = r.adopted
      ? { AdoptedInstance: 'true', ...(r.monitoringRole ? { RestoreMonitoringRoleArn: r.monitoringRole.roleArn } : {}) }
      : {
          AdoptedInstance: 'false',
          RestoreSubnetGroupName: r.subnetGroupName,
          RestoreParameterGroupName: r.parameterGroupName,
          RestoreMultiAz: String(r.multiAz),
          RestoreInstanceClass: r.instanceClass,
          RestoreStorageType: 'gp3',
        };
    const properties: SchemaMigrationsProperties = {
      DeployId: props.deployId ?? new Date().toISOString(),
      MigrationsHash: hashMigrations(migrationsDir),
      DatabaseName: props.databaseName,
      OwnerRole: props.ownerRole,
      GroupRole: props.groupRole,
      AppRole: props.appRole,
      MasterSecretArn: props.masterSecret.secretArn,
      AppSecretArn: props.appSecret.secretArn,
      InstanceIdentifier: props.instanceIdentifier,
      SnapshotPrefix: this.snapshotPrefix,
      SnapshotRetention: String(props.snapshotRetention ?? 5),
      ...(props.baselineVersion === undefined ? {} : { BaselineVersion: props.baselineVersion }),
      ...restore,
      RestoreSecurityGroupIds: r.securityGroups.map((g) => g.securityGroupId),
      RestoreDeletionProtection: String(r.deletionProtection),
      RestorePort: String(r.port),
      Rollback: props.rollback ?? DEFAULT_ROLLBACK_POLICY,
      SchemaVersion: latestVersion(migrationsDir),
      DriftPolicy: props.driftPolicy ?? 'off',
    };
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: RESOURCE_TYPE,
      serviceTimeout: TIME_BUDGET.serviceTimeout,
      properties: properties as unknown as Record<string, unknown>,
    });
    // The instance resource itself, not its construct: that one contains the rotation schedules,
    // which must wait for this resource (they log in as roles it creates).
    if (props.instance.node.defaultChild) this.resource.node.addDependency(props.instance.node.defaultChild);
    // An adopted instance is there already: what must exist first is the rule admitting this Lambda
    // (an AWS::EC2::SecurityGroupIngress under the imported group, with the other functions' rules).
    if (r.adopted) for (const group of r.securityGroups) this.resource.node.addDependency(group);
  }

  private grantPermissions(props: SchemaMigrationsProps): void {
    const stack = Stack.of(this);
    const rdsArn = (resource: string, name: string) =>
      stack.formatArn({ service: 'rds', resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const id = props.instanceIdentifier;
    const instance = rdsArn('db', id);
    // Restores create `<id>-restore-*` and rename the failed instance to `<id>-failed-*`.
    const related = rdsArn('db', `${id}-*`);
    const snapshots = rdsArn('snapshot', `${this.snapshotPrefix}-pre-*`);
    // Each action with the resource types IAM checks it against (the Service Authorization Reference),
    // pinned by test/cdk/iam.test.ts against every call lambda/aws makes.
    const r = props.restore;
    // An adopted instance's subnet and parameter groups are read from it at restore time: not known here.
    const restoreGroups = r.adopted
      ? [rdsArn('subgrp', '*'), rdsArn('pg', '*')]
      : [rdsArn('subgrp', r.subnetGroupName), rdsArn('pg', r.parameterGroupName)];
    const statements = [
      { Sid: 'Snapshots', actions: ['rds:CreateDBSnapshot'], resources: [instance, snapshots] },
      { Sid: 'ReadInstances', actions: ['rds:DescribeDBInstances'], resources: [instance, related] },
      // Listing by instance (the prune) is checked against snapshot:*, not one snapshot's ARN.
      { Sid: 'ReadSnapshots', actions: ['rds:DescribeDBSnapshots'], resources: [instance, rdsArn('snapshot', '*')] },
      { Sid: 'Retention', actions: ['rds:DeleteDBSnapshot'], resources: [snapshots] },
      { Sid: 'Tagging', actions: ['rds:AddTagsToResource'], resources: [instance, related, snapshots] },
      {
        Sid: 'Restore',
        actions: ['rds:RestoreDBInstanceFromDBSnapshot'],
        resources: [related, snapshots, ...restoreGroups, rdsArn('og', 'default:postgres-*')],
      },
      // Renames for the restore, and deletion protection (set after a deploy, lifted for a failed create's rollback).
      { Sid: 'Modify', actions: ['rds:ModifyDBInstance'], resources: [instance, related] },
    ];
    for (const s of statements)
      this.role.addToPolicy(new iam.PolicyStatement({ sid: s.Sid, actions: s.actions, resources: s.resources }));
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DetectRollback',
        actions: ['cloudformation:DescribeStacks'],
        resources: [
          stack.formatArn({ service: 'cloudformation', resource: 'stack', resourceName: `${stack.stackName}/*` }),
        ],
      }),
    );
    // Network interfaces in the VPC and log writing: EC2's ENI actions allow no resource scoping.
    this.role.addManagedPolicy(
      iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSLambdaVPCAccessExecutionRole'),
    );
    props.masterSecret.grantRead(this.role);
    props.appSecret.grantRead(this.role);
    // Enhanced monitoring's role, handed to the restored copy by ModifyDBInstance: only to RDS.
    if (r.monitoringRole)
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'PassMonitoringRole',
          actions: ['iam:PassRole'],
          resources: [r.monitoringRole.roleArn],
          conditions: {
            StringEquals: { 'iam:PassedToService': ['rds.amazonaws.com', 'monitoring.rds.amazonaws.com'] },
          },
        }),
      );
    // Restoring an encrypted snapshot lets RDS create a grant on the key.
    if (r.encryptionKey)
      this.role.addToPolicy(
        new iam.PolicyStatement({
          sid: 'RestoreEncrypted',
          actions: ['kms:CreateGrant', 'kms:DescribeKey'],
          resources: [r.encryptionKey.keyArn],
        }),
      );
  }
}
