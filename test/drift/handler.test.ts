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
import type { ProviderEvent } from '../../lambda/schema-migrator/handler';
import { providerEvent, STACK_ID, testHandlers, untilComplete } from '../helpers/custom-resource';
import { adminUrl, client, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { EVERY_KIND } from './helpers';

const cfn = mockClient(CloudFormationClient);
const rds = mockClient(RDSClient);

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

function event(type: 'Create' | 'Update', deployId: string, driftPolicy: 'fail' | 'warn'): ProviderEvent {
  return providerEvent(fixture, type, deployId, { properties: { DriftPolicy: driftPolicy } });
}

function deploy(dir: string, e: ProviderEvent) {
  return untilComplete(testHandlers({ fixture, admin, migrationsDir: dir, metrics }), e);
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
