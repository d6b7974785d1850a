/**
 * One environment's database: VPC, RDS PostgreSQL, secrets with rotation, alarms, and the
 * schema-migrations custom resource.
 */
import {
  Annotations,
  CfnOutput,
  type CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import type { EnvironmentConfig } from './config/environments';
import {
  type CreatedInstanceRestore,
  METRICS_NAMESPACE,
  SchemaMigrations,
  type SchemaMigrationsProps,
} from './schema-migrations';

export interface DatabaseStackProps extends StackProps {
  readonly config: EnvironmentConfig;
  /** @default - see SchemaMigrationsProps.deployId */
  readonly deployId?: string;
  /** @default - the project's migrations/ folder */
  readonly migrationsDir?: string;
}

const MASTER_USERNAME = 'orion_admin';
const NEW_VPC_CIDR = '10.60.0.0/16';

/** Characters no generated password contains (the rotation functions' default too): safe in URLs and shells. */
const PASSWORD_EXCLUDE = ' %+~`#$&*()|[]{}:;<>?!\'/@"\\';

/** The port clients use: the adopted instance's own, or the configured one of the created instance. */
export function databasePort(c: EnvironmentConfig): number {
  return c.existingInstance?.port ?? c.port;
}

export class DatabaseStack extends Stack {
  /** The instance the stack created, or (config `existingInstance`) the one it adopted. */
  readonly instance: rds.IDatabaseInstance;
  readonly appSecret: rds.DatabaseSecret;
  readonly migrations: SchemaMigrations;
  readonly alarmTopic: sns.Topic;
  /** The on-call instance for SSM port forwarding (config `bastion`). */
  readonly bastion?: ec2.Instance;
  readonly config: EnvironmentConfig;
  /** Stack outputs by name (Endpoint, Port, DatabaseName, MasterSecretArn, AppSecretArn, DatabaseUrlTemplate). */
  readonly outputs: Record<string, CfnOutput> = {};

  constructor(scope: Construct, id: string, props: DatabaseStackProps) {
    super(scope, id, props);
    const c = props.config;
    this.config = c;
    const identifier = c.existingInstance?.identifier ?? `orion-${c.name}`;
    const key = new kms.Key(this, 'Key', {
      enableKeyRotation: true,
      description: `Orion ${c.name}: database storage, secrets, alarms`,
      // Kept when the stack is deleted (its snapshots need it), but not after a failed first create.
      removalPolicy: RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
    });

    const vpc = this.vpc(c);
    const isolated: ec2.SubnetSelection = c.existingVpc
      ? { subnets: vpc.isolatedSubnets }
      : { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
    const endpointsSg = new ec2.SecurityGroup(this, 'EndpointsSecurityGroup', {
      vpc,
      description: 'VPC interface endpoints',
      allowAllOutbound: false,
    });
    const endpoint = (name: string, service: ec2.InterfaceVpcEndpointAwsService) =>
      vpc.addInterfaceEndpoint(name, {
        service,
        subnets: isolated,
        securityGroups: [endpointsSg],
        privateDnsEnabled: true,
        open: false,
      });
    const secretsEndpoint = endpoint('SecretsManagerEndpoint', ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER);
    endpoint('RdsEndpoint', ec2.InterfaceVpcEndpointAwsService.RDS);
    endpoint('CloudFormationEndpoint', ec2.InterfaceVpcEndpointAwsService.CLOUDFORMATION);
    if (c.bastion) {
      // Session Manager's agent reaches these three; there is no other way out of the isolated subnets.
      endpoint('SsmEndpoint', ec2.InterfaceVpcEndpointAwsService.SSM);
      endpoint('SsmMessagesEndpoint', ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES);
      endpoint('Ec2MessagesEndpoint', ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES);
    }

    const adopted = c.existingInstance;
    const port = databasePort(c);
    // An adopted instance keeps its own security group: rules admitting our functions are added to it.
    const dbSg: ec2.ISecurityGroup = adopted
      ? ec2.SecurityGroup.fromSecurityGroupId(this, 'DatabaseSecurityGroup', adopted.securityGroupId, {
          allowAllOutbound: false,
        })
      : new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
          vpc,
          description: `Orion ${c.name} PostgreSQL`,
          allowAllOutbound: false,
        });
    for (const [i, sgId] of c.applicationSecurityGroupIds.entries()) {
      dbSg.addIngressRule(ec2.Peer.securityGroupId(sgId), ec2.Port.tcp(port), `application security group ${i + 1}`);
    }

    let masterSecret: secretsmanager.ISecret;
    let restore: SchemaMigrationsProps['restore'];
    if (adopted) {
      this.instance = rds.DatabaseInstance.fromDatabaseInstanceAttributes(this, 'Database', {
        instanceIdentifier: adopted.identifier,
        instanceEndpointAddress: adopted.endpoint,
        port: adopted.port,
        securityGroups: [dbSg],
        engine: this.engine(c),
      });
      // Attached as a created instance's master secret is: Secrets Manager writes the instance's engine,
      // host and port into it, which the rotation functions and the migration Lambda read.
      masterSecret = secretsmanager.Secret.fromSecretCompleteArn(this, 'MasterSecret', adopted.masterSecretArn).attach(
        this.instance,
      );
      restore = {
        adopted: true,
        securityGroups: [dbSg],
        encryptionKey: adopted.kmsKeyArn ? kms.Key.fromKeyArn(this, 'InstanceKey', adopted.kmsKeyArn) : undefined,
        deletionProtection: c.deletionProtection,
        port,
        monitoringRole: adopted.monitoringRoleArn
          ? iam.Role.fromRoleArn(this, 'MonitoringRole', adopted.monitoringRoleArn, { mutable: false })
          : undefined,
      };
    } else {
      const created = this.createInstance(c, identifier, vpc, isolated, dbSg, key);
      this.instance = created.instance;
      masterSecret = created.instance.secret!;
      restore = created.restore;
    }

    this.appSecret = new rds.DatabaseSecret(this, 'AppSecret', {
      username: c.appRole,
      dbname: c.databaseName,
      secretName: `orion/${c.name}/app`,
      masterSecret,
      encryptionKey: key,
      excludeCharacters: PASSWORD_EXCLUDE,
    });
    const appAttached = this.appSecret.attach(this.instance);
    const rotation = { automaticallyAfter: Duration.days(30), endpoint: secretsEndpoint, vpcSubnets: isolated };
    if (this.instance instanceof rds.DatabaseInstance) {
      this.instance.addRotationSingleUser(rotation);
      this.instance.addRotationMultiUser('AppRotation', { ...rotation, secret: appAttached });
    } else {
      // What addRotationSingleUser/addRotationMultiUser do for an instance of this stack, for an imported one.
      const rotate = (id: string, props: Partial<secretsmanager.SecretRotationProps>) =>
        new secretsmanager.SecretRotation(this, id, {
          ...rotation,
          vpc,
          target: this.instance,
          excludeCharacters: PASSWORD_EXCLUDE,
          application: secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_SINGLE_USER,
          secret: masterSecret,
          ...props,
        });
      rotate('MasterRotation', {});
      rotate('AppRotation', {
        application: secretsmanager.SecretRotationApplication.POSTGRES_ROTATION_MULTI_USER,
        secret: appAttached,
        masterSecret,
      });
    }
    // The migration and rotation Lambdas reach Secrets Manager, RDS and CloudFormation through these.
    endpointsSg.addIngressRule(
      ec2.Peer.ipv4(c.existingVpc?.cidrBlock ?? NEW_VPC_CIDR),
      ec2.Port.tcp(443),
      'HTTPS from inside the VPC',
    );

    this.migrations = new SchemaMigrations(this, 'SchemaMigrations', {
      vpc,
      vpcSubnets: isolated,
      instance: this.instance,
      instanceIdentifier: identifier,
      masterSecret,
      appSecret: appAttached,
      databaseName: c.databaseName,
      ownerRole: c.ownerRole,
      groupRole: c.groupRole,
      appRole: c.appRole,
      snapshotRetention: c.snapshotRetention,
      rollback: c.rollback,
      driftPolicy: c.driftPolicy,
      deployId: props.deployId,
      migrationsDir: props.migrationsDir,
      baselineVersion: c.baselineVersion,
      restore,
    });
    // Migrations need the instance and both secrets attached (host, port) — but not the rotation
    // schedules, which are children of the attachments: rotation must wait for the roles. An adopted
    // instance and its master secret are not resources of this stack.
    const cfn = (construct: Construct) => construct.node.defaultChild as CfnResource | undefined;
    const first = [this.instance, masterSecret, appAttached].flatMap((x) => cfn(x) ?? []);
    this.migrations.resource.node.addDependency(...first);
    for (const schedule of this.node.findAll().filter((n) => n instanceof secretsmanager.CfnRotationSchedule))
      schedule.node.addDependency(this.migrations.resource);

    if (c.bastion) this.bastion = this.onCallBastion(vpc, isolated, dbSg, c);

    this.alarmTopic = new sns.Topic(this, 'Alarms', {
      displayName: `Orion ${c.name} database alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (c.alarmEmail) this.alarmTopic.addSubscription(new subs.EmailSubscription(c.alarmEmail));
    else if (c.name === 'prod')
      Annotations.of(this.alarmTopic).addWarningV2(
        'orion:no-alarm-subscriber',
        'prod alarms reach nobody: set environments.prod.alarmEmail in the settings file (-c config=FILE) or pass -c alarmEmail=ADDRESS',
      );
    key.grantEncryptDecrypt(new iam.ServicePrincipal('cloudwatch.amazonaws.com')); // alarms publish to the encrypted topic
    this.alarms(c);

    const out = (name: string, value: string, description: string) =>
      (this.outputs[name] = new CfnOutput(this, name, { value, description }));
    out('Endpoint', this.instance.dbInstanceEndpointAddress, 'Database host');
    out('Port', this.instance.dbInstanceEndpointPort, 'Database port');
    out('DatabaseName', c.databaseName, 'Application database');
    out('MasterSecretArn', masterSecret.secretArn, 'Master credentials (Secrets Manager)');
    out('AppSecretArn', appAttached.secretArn, `${c.appRole} credentials (Secrets Manager)`);
    out(
      'DatabaseUrlTemplate',
      `postgres://<username>:<password>@${this.instance.dbInstanceEndpointAddress}:${this.instance.dbInstanceEndpointPort}/${c.databaseName}?sslmode=verify-full`,
      `Fill <username> and <password> from AppSecretArn's current value at every connect: rotation alternates ${c.appRole} and ${c.appRole}_clone`,
    );
    out('SchemaVersion', this.migrations.resource.getAttString('ToVersion'), 'Schema version after the last deploy');
    if (this.bastion) {
      out('BastionInstanceId', this.bastion.instanceId, 'On-call SSM port forwarding to the database');
      out(
        'PortForwardCommand',
        Fn.join('', [
          'aws ssm start-session --target ',
          this.bastion.instanceId,
          ' --document-name AWS-StartPortForwardingSessionToRemoteHost --parameters host=',
          this.instance.dbInstanceEndpointAddress,
          `,portNumber=${port},localPortNumber=${port}`,
        ]),
        'Then connect to localhost with the secret’s credentials (README, "Reaching the database")',
      );
    }
  }

  /** The instance this stack owns, with its parameter and subnet groups and a generated master secret. */
  private createInstance(
    c: EnvironmentConfig,
    identifier: string,
    vpc: ec2.IVpc,
    isolated: ec2.SubnetSelection,
    dbSg: ec2.ISecurityGroup,
    key: kms.IKey,
  ): { instance: rds.DatabaseInstance; restore: CreatedInstanceRestore } {
    const parameterGroup = new rds.ParameterGroup(this, 'Parameters', {
      engine: this.engine(c),
      description: `Orion ${c.name}: TLS required, slow statements and lock waits logged`,
      parameters: {
        'rds.force_ssl': '1',
        log_min_duration_statement: '1000',
        log_lock_waits: '1',
        log_min_error_statement: 'error',
      },
    });
    // No fixed name: a retry after a failed first create must not collide with what it left behind.
    const subnetGroup = new rds.SubnetGroup(this, 'SubnetGroup', {
      vpc,
      vpcSubnets: isolated,
      description: `Orion ${c.name} database subnets`,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const instance = new rds.DatabaseInstance(this, 'Database', {
      instanceIdentifier: identifier,
      engine: this.engine(c),
      instanceType: new ec2.InstanceType(c.instanceClass.replace(/^db\./, '')),
      vpc,
      subnetGroup,
      securityGroups: [dbSg],
      port: c.port,
      multiAz: c.multiAz,
      storageType: rds.StorageType.GP3,
      allocatedStorage: c.allocatedStorageGiB,
      maxAllocatedStorage: c.maxAllocatedStorageGiB,
      storageEncrypted: true,
      storageEncryptionKey: key,
      credentials: rds.Credentials.fromGeneratedSecret(MASTER_USERNAME, {
        encryptionKey: key,
        secretName: `orion/${c.name}/master`,
      }),
      parameterGroup,
      backupRetention: Duration.days(c.backupRetentionDays),
      // Not set here: Custom::SchemaMigrations turns deletion protection on after a successful deploy,
      // so a failed first create can still roll back (README, "A failed first deploy").
      removalPolicy: RemovalPolicy.SNAPSHOT, // a final snapshot on delete
      autoMinorVersionUpgrade: true,
      cloudwatchLogsExports: ['postgresql', 'upgrade'],
      cloudwatchLogsRetention: logs.RetentionDays.THREE_MONTHS,
      enablePerformanceInsights: true,
      performanceInsightEncryptionKey: key,
      monitoringInterval: Duration.seconds(60),
      copyTagsToSnapshot: true,
      iamAuthentication: false,
    });
    return {
      instance,
      restore: {
        subnetGroupName: subnetGroup.subnetGroupName,
        securityGroups: [dbSg],
        parameterGroupName: parameterGroup.bindToInstance({}).parameterGroupName,
        multiAz: c.multiAz,
        instanceClass: c.instanceClass,
        encryptionKey: key,
        deletionProtection: c.deletionProtection,
        port: c.port,
        // The role the instance construct makes for monitoringInterval (aws-rds DatabaseInstanceNew).
        monitoringRole: instance.node.findChild('MonitoringRole') as iam.IRole,
      },
    };
  }

  /**
   * On-call access to a database in isolated subnets: an instance with no inbound rule and no
   * address outside the VPC, reached only through SSM Session Manager (IAM-authorized, logged).
   */
  private onCallBastion(
    vpc: ec2.IVpc,
    subnets: ec2.SubnetSelection,
    dbSg: ec2.ISecurityGroup,
    c: EnvironmentConfig,
  ): ec2.Instance {
    const port = databasePort(c);
    const sg = new ec2.SecurityGroup(this, 'BastionSecurityGroup', {
      vpc,
      description: `Orion ${c.name} on-call bastion: SSM endpoints and the database only`,
      allowAllOutbound: false,
    });
    sg.addEgressRule(ec2.Peer.ipv4(c.existingVpc?.cidrBlock ?? NEW_VPC_CIDR), ec2.Port.tcp(443), 'SSM endpoints');
    sg.addEgressRule(dbSg, ec2.Port.tcp(port), 'the database');
    dbSg.addIngressRule(sg, ec2.Port.tcp(port), 'on-call bastion (SSM port forwarding)');
    const bastion = new ec2.Instance(this, 'Bastion', {
      vpc,
      vpcSubnets: subnets,
      securityGroup: sg,
      instanceType: new ec2.InstanceType('t4g.nano'),
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
      ssmSessionPermissions: true,
      requireImdsv2: true,
      blockDevices: [{ deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(8, { encrypted: true }) }],
    });
    // The subnet decides the zone; naming it again would pin a zone name into the template.
    (bastion.node.defaultChild as ec2.CfnInstance).addPropertyDeletionOverride('AvailabilityZone');
    return bastion;
  }

  /**
   * The configured zones, or the account's first two at deploy time (Fn::GetAZs): never a lookup
   * at synth, which needs credentials for the target account that a pipeline's synth step lacks.
   */
  override get availabilityZones(): string[] {
    const c = this.config;
    if (c?.existingVpc) return [...c.existingVpc.availabilityZones];
    if (c?.availabilityZones) return [...c.availabilityZones];
    return [0, 1].map((i) => Fn.select(i, Fn.getAzs()));
  }

  private engine(c: EnvironmentConfig): rds.IInstanceEngine {
    return rds.DatabaseInstanceEngine.postgres({
      version: rds.PostgresEngineVersion.of(c.engineVersion, c.engineVersion.split('.')[0]),
    });
  }

  private vpc(c: EnvironmentConfig): ec2.IVpc {
    if (c.existingVpc) {
      return ec2.Vpc.fromVpcAttributes(this, 'Vpc', {
        vpcId: c.existingVpc.vpcId,
        availabilityZones: [...c.existingVpc.availabilityZones],
        isolatedSubnetIds: [...c.existingVpc.subnetIds],
        vpcCidrBlock: c.existingVpc.cidrBlock,
      });
    }
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: this.availabilityZones.length, // the zones above
      ipAddresses: ec2.IpAddresses.cidr(NEW_VPC_CIDR),
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    });
    vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', { retention: logs.RetentionDays.THREE_MONTHS }),
      ),
    });
    return vpc;
  }

  private alarms(c: EnvironmentConfig): void {
    const action = new actions.SnsAction(this.alarmTopic);
    const add = (id: string, metric: cloudwatch.IMetric, props: Omit<cloudwatch.CreateAlarmOptions, 'metric'>) => {
      const alarm =
        metric instanceof cloudwatch.Metric
          ? metric.createAlarm(this, id, props)
          : new cloudwatch.Alarm(this, id, { metric, ...props });
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      return alarm;
    };
    add('CpuAlarm', this.instance.metricCPUUtilization({ period: Duration.minutes(5) }), {
      alarmDescription: 'CPU above 80% for 15 minutes',
      threshold: 80,
      evaluationPeriods: 3,
    });
    add('FreeStorageAlarm', this.instance.metricFreeStorageSpace({ period: Duration.minutes(5) }), {
      alarmDescription: 'Less than 10% of the allocated storage free',
      threshold: c.allocatedStorageGiB * 1024 ** 3 * 0.1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
    });
    add('FreeMemoryAlarm', this.instance.metricFreeableMemory({ period: Duration.minutes(5) }), {
      alarmDescription: 'Less than 256 MiB of freeable memory',
      threshold: 256 * 1024 ** 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 3,
    });
    add('ConnectionsAlarm', this.instance.metricDatabaseConnections({ period: Duration.minutes(5) }), {
      alarmDescription: 'More than 100 connections (check for a connection leak or a missing pool)',
      threshold: 100,
      evaluationPeriods: 3,
    });
    add(
      'MigrationFailureAlarm',
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: 'MigrationFailures',
        dimensionsMap: { service: 'schema-migrator' },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      {
        alarmDescription:
          'A schema migration failed during a deploy (or a rollback could not be completed); see the schema-migrator logs',
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
    add(
      'DriftAlarm',
      new cloudwatch.Metric({
        namespace: METRICS_NAMESPACE,
        metricName: 'DriftFound',
        dimensionsMap: { service: 'schema-migrator' },
        statistic: 'Maximum',
        period: Duration.minutes(5),
      }),
      {
        alarmDescription:
          'A deploy found the database different from its migrations (changed by hand); the deploy report and "orion-db drift" name each difference',
        threshold: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      },
    );
  }
}
