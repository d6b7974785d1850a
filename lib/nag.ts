/**
 * cdk-nag AwsSolutions findings we accept, each with its reason. Everything else is fixed in the
 * stack; an unacknowledged finding fails `cdk synth` and the tests.
 */
import { Stack } from 'aws-cdk-lib';
import { type NagPackSuppression, NagSuppressions } from 'cdk-nag';
import type { DatabaseStack } from './database-stack';

/** The Lambda the CDK creates for `cloudwatchLogsRetention` (a fixed, well-known construct id). */
const LOG_RETENTION_ID = 'LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a';

export function acknowledgeNagFindings(stack: DatabaseStack): void {
  // An adopted instance is not a resource of this stack: nothing of it for cdk-nag to check.
  if (!stack.config.existingInstance) acknowledgeInstanceFindings(stack);
  acknowledgeStackFindings(stack);
}

/** Findings on the instance the stack creates, and on what the CDK adds for it. */
function acknowledgeInstanceFindings(stack: DatabaseStack): void {
  const c = stack.config;
  NagSuppressions.addResourceSuppressions(
    stack.instance,
    [
      {
        id: 'AwsSolutions-IAM4',
        reason:
          'Enhanced monitoring uses AmazonRDSEnhancedMonitoringRole, the AWS policy written for exactly this role',
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole'],
      },
      // Only where the environment's config chose so; prod's validation forbids both.
      ...(c.multiAz
        ? []
        : [
            {
              id: 'AwsSolutions-RDS3',
              reason: `${c.name} is single-AZ by configuration (cost); staging and prod are Multi-AZ`,
            },
          ]),
      {
        id: 'AwsSolutions-RDS10',
        reason:
          `Custom::SchemaMigrations sets deletion protection (${c.deletionProtection ? 'on' : 'off'} for ${c.name} by configuration; ` +
          'prod must have it) on every deploy instead of the template, so a failed first create can roll back rather ' +
          'than end ROLLBACK_FAILED; removal still takes a final snapshot',
      },
    ],
    true,
  );
  NagSuppressions.addResourceSuppressionsByPath(
    Stack.of(stack),
    `/${stack.node.path}/${LOG_RETENTION_ID}`,
    [
      {
        id: 'AwsSolutions-IAM4',
        reason: "The CDK's log-retention helper (for the RDS log exports) uses AWSLambdaBasicExecutionRole",
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason: "The CDK's log-retention helper sets retention on log groups RDS creates by name at runtime",
        appliesTo: ['Resource::*'],
      },
    ],
    true,
  );
}

/** Findings on what the stack builds around its instance, adopted or created. */
function acknowledgeStackFindings(stack: DatabaseStack): void {
  const id = stack.migrations.instanceIdentifier;
  const snapshotPrefix = stack.migrations.snapshotPrefix;
  if (stack.bastion) {
    NagSuppressions.addResourceSuppressions(
      stack.bastion,
      [
        {
          id: 'AwsSolutions-EC28',
          reason: 'The on-call bastion runs only the SSM agent and forwards a port; basic monitoring is enough',
        },
        {
          id: 'AwsSolutions-EC29',
          reason:
            'The on-call bastion holds no state: the stack recreates it, and nothing is lost when it is terminated',
        },
        {
          id: 'AwsSolutions-IAM4',
          reason:
            'AmazonSSMManagedInstanceCore is the AWS policy the Session Manager agent needs, and all the bastion has',
          appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore'],
        },
      ],
      true,
    );
  }

  const migrationRole: NagPackSuppression[] = [
    {
      id: 'AwsSolutions-IAM4',
      reason:
        'AWSLambdaVPCAccessExecutionRole: ENI management for a Lambda in a VPC has no resource-level scoping, and this is the AWS policy for it',
      appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole'],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason: `Pre-migration snapshot names derive from each deploy id, so they are matched by prefix (${snapshotPrefix}-pre-*), not listed`,
      appliesTo: [
        {
          regex: `/^Resource::arn:<AWS::Partition>:rds:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):snapshot:${snapshotPrefix}-pre-\\*$/g`,
        },
      ],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'DescribeDBSnapshots listing an instance’s snapshots (the prune) is authorized against snapshot:*, as no single snapshot is named; read-only',
      appliesTo: [
        {
          regex:
            '/^Resource::arn:<AWS::Partition>:rds:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):snapshot:\\*$/g',
        },
      ],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason: `An in-place restore creates ${id}-restore-* and keeps the failed instance as ${id}-failed-*; their suffixes come from the deploy`,
      appliesTo: [
        {
          regex: `/^Resource::arn:<AWS::Partition>:rds:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):db:${id}-\\*$/g`,
        },
      ],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'A restore uses the default option group of the engine version the snapshot has (default:postgres-<major>)',
      appliesTo: [
        {
          regex:
            '/^Resource::arn:<AWS::Partition>:rds:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):og:default:postgres-\\*$/g',
        },
      ],
    },
    {
      id: 'AwsSolutions-IAM5',
      reason: 'DescribeStacks on this stack only; the trailing * is the stack id CloudFormation appends to the name',
      appliesTo: [
        {
          regex: `/^Resource::arn:<AWS::Partition>:cloudformation:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):stack\\/${stack.stackName}\\/\\*$/g`,
        },
      ],
    },
  ];
  if (stack.config.existingInstance)
    migrationRole.push({
      id: 'AwsSolutions-IAM5',
      reason:
        `The adopted instance's subnet and parameter groups were made outside the stack and are read from it when a restore starts; ` +
        `RestoreDBInstanceFromDBSnapshot only names them, while the instance it creates is limited to ${id}-restore-* and the snapshot to ${snapshotPrefix}-pre-*`,
      appliesTo: [
        {
          regex:
            '/^Resource::arn:<AWS::Partition>:rds:(<AWS::Region>|[a-z0-9-]+):(<AWS::AccountId>|\\d{12}):(subgrp|pg):\\*$/g',
        },
      ],
    });
  NagSuppressions.addResourceSuppressions(stack.migrations.role, migrationRole, true);

  const provider = stack.migrations.node.findChild('Provider');
  NagSuppressions.addResourceSuppressions(
    provider,
    [
      {
        id: 'AwsSolutions-IAM4',
        reason:
          "The CDK Provider framework's own functions use AWSLambdaBasicExecutionRole for their logs; the CDK creates these roles",
        appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'The Provider framework invokes our two handler functions by ARN and any of their versions (<arn>:*), as the CDK generates it',
        appliesTo: [
          { regex: '/^Resource::<SchemaMigrations(OnEvent|IsComplete|Providerframework\\w+)[0-9A-F]{8}\\.Arn>:\\*$/g' },
        ],
      },
      {
        id: 'AwsSolutions-IAM5',
        reason:
          'Step Functions log delivery (logs:CreateLogDelivery and friends) supports no resource-level permissions',
        appliesTo: ['Resource::*'],
      },
      {
        id: 'AwsSolutions-SF2',
        reason:
          'The Provider framework offers no X-Ray option for its waiter state machine; it only polls isComplete, and its logs (level ALL) are on',
      },
    ],
    true,
  );
}

/** The pipeline stack: findings in what CDK Pipelines generates for itself. */
export function acknowledgePipelineFindings(stack: Stack): void {
  NagSuppressions.addStackSuppressions(stack, [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'CDK Pipelines grants its CodeBuild and CodePipeline roles wildcards on its own artifact bucket, log groups and reports, as generated',
    },
    {
      id: 'AwsSolutions-S1',
      reason:
        'The pipeline artifact bucket (created by CDK Pipelines) holds build artifacts only; CloudTrail covers access',
    },
    {
      id: 'AwsSolutions-CB4',
      reason:
        'CDK Pipelines encrypts artifacts with the pipeline KMS key (crossAccountKeys) at the bucket; its CodeBuild projects use that bucket',
    },
    { id: 'AwsSolutions-KMS5', reason: 'The cross-account artifact key is created by CDK Pipelines' },
  ]);
}
