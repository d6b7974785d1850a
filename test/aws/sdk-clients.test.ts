/**
 * The SDK clients' own retries, exercised through the real SDK middleware: no mock replaces `send`
 * here, only the HTTP handler below it answers (as RDS does when it throttles).
 */
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { awsClients, MAX_ATTEMPTS } from '../../lambda/aws/clients';
import { RdsSnapshots } from '../../lambda/aws/snapshots';

const SNAP = 'orion-prod-pre-d2-abcdef12';
const RESTORE = {
  subnetGroupName: 'orion-prod-db',
  securityGroupIds: ['sg-0aaa'],
  parameterGroupName: 'orion-prod-params',
  multiAz: true,
  instanceClass: 'db.t3.medium',
  storageType: 'gp3',
  deletionProtection: true,
  port: 5433,
};

describe('the SDK clients', () => {
  test('retry throttling themselves, in adaptive mode, through the real SDK middleware', async () => {
    // Below the SDK's retry middleware: the HTTP handler answers as RDS does when throttled, twice.
    const answers = [THROTTLED, THROTTLED, SNAPSHOT_CREATING];
    const sent: string[] = [];
    const requestHandler = {
      handle: async (request: { body?: string }) => {
        sent.push(String(request.body));
        const body = answers.shift()!;
        return {
          response: {
            statusCode: body === THROTTLED ? 400 : 200,
            headers: { 'content-type': 'text/xml' },
            body: Readable.from([Buffer.from(body)]),
          },
        };
      },
    };
    const { rds: client } = awsClients({
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' },
      requestHandler,
    });
    expect(client.config.retryMode).toBe('adaptive');
    expect(await client.config.maxAttempts()).toBe(MAX_ATTEMPTS);
    const s = new RdsSnapshots(client, { instanceIdentifier: 'orion-prod', restore: RESTORE });
    expect(await s.ensure(SNAP, {})).toBe('creating');
    expect(sent).toHaveLength(3);
    expect(sent.every((b) => b.includes('Action=DescribeDBSnapshots'))).toBe(true);
  });
});

const THROTTLED =
  '<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>';
const SNAPSHOT_CREATING = `<DescribeDBSnapshotsResponse><DescribeDBSnapshotsResult><DBSnapshots><DBSnapshot><DBSnapshotIdentifier>${SNAP}</DBSnapshotIdentifier><Status>creating</Status></DBSnapshot></DBSnapshots></DescribeDBSnapshotsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeDBSnapshotsResponse>`;
