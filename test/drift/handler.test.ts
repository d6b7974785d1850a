/**
 * The custom resource with DriftPolicy, as the Lambda runs it (AWS mocked at the SDK boundary, real
 * PostgreSQL as the RDS-like master): a hand change fails a 'fail' deploy before anything is
 * applied, naming the drift, and is counted in the DriftFound metric the stack alarms on.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeDBInstancesCommand, ModifyDBInstanceCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import type { Client } from 'pg';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { RdsDeletionProtection } from '../../lambda/aws/deletion-protection';
import { isStackRollingBack } from '../../lambda/aws/stack-status';
import { TemplateDatabaseSnapshots } from '../../lambda/local/snapshots';
import { createHandlers, type ProviderEvent } from '../../lambda/schema-migrator/handler';
import type { SchemaMigrationsProperties } from '../../lambda/schema-migrator/properties';
import { lastPollAfter } from '../../lib/schema-migrations';
import { adminUrl, client, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { EVERY_KIND } from './helpers';

const STACK_ID = 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Orion-test/0a1b2c3d';
const cfn = mockClient(CloudFormationClient);
const rds = mockClient(RDSClient);
const context = { getRemainingTimeInMillis: () => 14 * 60_000 };

let fixture: DeployFixture;
let admin: Client;
let metrics: Record<string, number>;

beforeEach(async () => {
  fixture = deployFixture();
  admin = await client(adminUrl());
  metrics = {};
  cfn.reset();
  rds.reset();
  cfn.on(DescribeStacksCommand, { StackName: STACK_ID }).resolves({
    Stacks: [{ StackName: 'Orion-test', StackStatus: 'UPDATE_IN_PROGRESS', CreationTime: new Date('2026-11-02') }],
  });
  rds.on(DescribeDBInstancesCommand).resolves({
    DBInstances: [{ DBInstanceIdentifier: 'orion-test', DBInstanceStatus: 'available', DeletionProtection: true }],
  });
  rds.on(ModifyDBInstanceCommand).resolves({});
});
afterEach(async () => {
  await admin.end();
  await fixture.cleanup();
});

function handlers(dir: string) {
  return createHandlers({
    lastPollAfterMs: lastPollAfter().toMilliseconds(),
    migrationsDir: dir,
    logger: { info: () => {}, warn: () => {}, error: () => {} },
    metrics: {
      add: (name, value) => (metrics[name] = (metrics[name] ?? 0) + value),
      addDuration: () => {},
      flush: () => {},
    },
    isRollingBack: (stackId) => isStackRollingBack(new CloudFormationClient({ region: 'eu-west-1' }), stackId),
    deletionProtection: (settings) =>
      new RdsDeletionProtection(
        new RDSClient({ region: 'eu-west-1' }),
        new CloudFormationClient({ region: 'eu-west-1' }),
        settings.instanceIdentifier,
      ),
    target: async () => ({
      serverUrl: fixture.serverUrl,
      secrets: fixture.secrets,
      snapshots: new TemplateDatabaseSnapshots(admin, fixture.roles.database),
    }),
  });
}

function event(type: 'Create' | 'Update', deployId: string, driftPolicy: 'fail' | 'warn'): ProviderEvent {
  const r = fixture.roles;
  const properties: SchemaMigrationsProperties = {
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
    DriftPolicy: driftPolicy,
  };
  return {
    RequestType: type,
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:provider',
    ResponseURL: 'https://example.invalid/',
    StackId: STACK_ID,
    RequestId: `req-${deployId}`,
    LogicalResourceId: 'SchemaMigrations',
    ResourceType: 'Custom::SchemaMigrations',
    ResourceProperties: { ServiceToken: 'x', ...properties } as any,
    ...(type === 'Update' ? { PhysicalResourceId: `orion-test/${r.database}` } : {}),
  } as ProviderEvent;
}

async function deploy(dir: string, e: ProviderEvent) {
  const h = handlers(dir);
  const { PhysicalResourceId } = await h.onEvent(e);
  for (let poll = 0; poll < 10; poll++) {
    const result = await h.isComplete({ ...e, PhysicalResourceId }, context);
    if (result.IsComplete) return result;
  }
  throw new Error('never completed');
}

test("DriftPolicy 'fail': a hand change fails the deploy before anything is applied; DriftFound counts it", async () => {
  const v1 = migrationsDir({ '000001_base.up.sql': EVERY_KIND['000001_base.up.sql'] });
  expect((await deploy(v1, event('Create', 'd1', 'fail'))).Data).toMatchObject({ ToVersion: '1' });
  expect(metrics.DriftFound).toBe(0);
  await fixture.asMaster(`SET ROLE "${fixture.roles.owner}"; GRANT DELETE ON items TO PUBLIC`);
  await expect(deploy(migrationsDir(EVERY_KIND), event('Update', 'd2', 'fail'))).rejects.toThrow(
    /drift before applying: 1 difference\(s\) from the applied migrations \(grant table public\.items to PUBLIC\); nothing was applied/,
  );
  expect(metrics).toMatchObject({ DriftFound: 1, MigrationFailures: 1 });
  const warned = await deploy(migrationsDir(EVERY_KIND), event('Update', 'd3', 'warn'));
  expect(warned.Data).toMatchObject({ FromVersion: '1', ToVersion: '2', Applied: '1' });
  // The lockdown leaves a table's grants to PUBLIC alone: found before and after applying (1 + 1 + 1).
  expect(metrics.DriftFound).toBe(3);
});
