/**
 * Custom::SchemaMigrations as the handler tests drive it: the properties the stack would pass for a
 * deploy fixture's database, the Provider framework's events, the handler with the test's adapters
 * (template-database snapshots, the fixture's secrets, RDS and CloudFormation through the SDK, mocked
 * by the test), and polling until done.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { RDSClient } from '@aws-sdk/client-rds';
import type { Client } from 'pg';
import { RdsDeletionProtection } from '../../lambda/aws/deletion-protection';
import { isStackRollingBack } from '../../lambda/aws/stack-status';
import type { SnapshotPort } from '../../lambda/lifecycle/ports';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import { createHandlers, type InvocationContext, type ProviderEvent } from '../../lambda/schema-migrator/handler';
import type { SchemaMigrationsProperties } from '../../lambda/schema-migrator/properties';
import { lastPollAfter } from '../../lib/schema-migrations';
import type { DeployFixture } from './deploy';

export const STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Orion-test/0a1b2c3d';
/** What a migrating invocation has: isComplete's whole 14 minutes. */
export const FULL_INVOCATION: InvocationContext = { getRemainingTimeInMillis: () => 14 * 60_000 };

/** The properties a created instance's stack passes, for the fixture's database; `extra` on top. */
export function resourceProperties(
  fixture: DeployFixture,
  deployId: string,
  extra: Partial<SchemaMigrationsProperties> = {},
): SchemaMigrationsProperties {
  const r = fixture.roles;
  return {
    DeployId: deployId,
    MigrationsHash: 'x'.repeat(64),
    DatabaseName: r.database,
    OwnerRole: r.owner,
    GroupRole: r.group,
    AppRole: r.app,
    MasterSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:master',
    AppSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:app',
    InstanceIdentifier: 'orion-test',
    SnapshotPrefix: fixture.prefix,
    SnapshotRetention: '5',
    RestoreSubnetGroupName: 'orion-test-db',
    RestoreSecurityGroupIds: ['sg-0123456789abcdef0'],
    RestoreParameterGroupName: 'orion-test-params',
    RestoreMultiAz: 'true',
    RestoreInstanceClass: 'db.t3.medium',
    RestoreStorageType: 'gp3',
    RestoreDeletionProtection: 'true',
    RestorePort: '5433',
    ...extra,
  };
}

/** The Provider framework's event for the fixture's resource; an Update replaces `oldDeployId`'s properties. */
export function providerEvent(
  fixture: DeployFixture,
  type: 'Create' | 'Update' | 'Delete',
  deployId: string,
  options: { oldDeployId?: string; properties?: Partial<SchemaMigrationsProperties> } = {},
): ProviderEvent {
  const { oldDeployId, properties } = options;
  return {
    RequestType: type,
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    ResponseURL: 'https://example.invalid/',
    StackId: STACK_ID,
    RequestId: `req-${deployId}`,
    LogicalResourceId: 'SchemaMigrations',
    ResourceType: 'Custom::SchemaMigrations',
    ResourceProperties: { ServiceToken: 'x', ...resourceProperties(fixture, deployId, properties) } as any,
    ...(type !== 'Create' ? { PhysicalResourceId: `orion-test/${fixture.roles.database}` } : {}),
    ...(oldDeployId
      ? { OldResourceProperties: { ServiceToken: 'x', ...resourceProperties(fixture, oldDeployId, properties) } }
      : {}),
  } as ProviderEvent;
}

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly extra?: unknown;
}

export interface TestHandlerOptions {
  readonly fixture: DeployFixture;
  /** A superuser connection, for the template-database snapshot port. */
  readonly admin: Client;
  readonly migrationsDir: string;
  /** Counted here by name. */
  readonly metrics: Record<string, number>;
  /** Every log line, when given. */
  readonly logs?: LogLine[];
  /** @default the fixture's server */
  readonly serverUrl?: string;
  /** @default template databases on the fixture's server */
  readonly snapshots?: SnapshotPort;
  /** @default what the stack's time budget gives */
  readonly lastPollAfterMs?: number;
}

/** The handler as one Lambda bundle would be (its own migrations folder), with the test's adapters. */
export function testHandlers(o: TestHandlerOptions) {
  const record = (level: string) => (message: string, extra?: Record<string, unknown>) =>
    o.logs?.push({ level, message, extra });
  return createHandlers({
    migrationsDir: o.migrationsDir,
    lastPollAfterMs: o.lastPollAfterMs ?? lastPollAfter().toMilliseconds(),
    logger: { info: record('info'), warn: record('warn'), error: record('error') },
    metrics: {
      add: (name, value) => {
        o.metrics[name] = (o.metrics[name] ?? 0) + value;
      },
      addDuration: () => {},
      flush: () => {},
    },
    isRollingBack: (stackId) => isStackRollingBack(new CloudFormationClient({ region: 'eu-west-1' }), stackId),
    deletionProtection: (settings) =>
      new RdsDeletionProtection(
        new RDSClient({ region: 'eu-west-1' }),
        new CloudFormationClient({ region: 'eu-west-1' }),
        settings.instanceIdentifier,
        settings.adoptedInstance,
      ),
    target: async () => ({
      serverUrl: o.serverUrl ?? o.fixture.serverUrl,
      secrets: o.fixture.secrets,
      snapshots: o.snapshots ?? new TemplateDatabaseSnapshots(o.admin, o.fixture.roles.database),
    }),
  });
}

/** onEvent, then isComplete polled until done, as the Provider framework does (at most 10 polls here). */
export async function untilComplete(
  h: ReturnType<typeof createHandlers>,
  e: ProviderEvent,
  context: InvocationContext = FULL_INVOCATION,
) {
  // The framework merges onEvent's answer into the event every isComplete gets (createResponseEvent).
  const answer = await h.onEvent(e);
  const { PhysicalResourceId } = answer;
  for (let poll = 0; poll < 10; poll++) {
    const result = await h.isComplete({ ...e, ...answer }, context);
    if (result.IsComplete) return { PhysicalResourceId, ...result };
  }
  throw new Error('never completed');
}
