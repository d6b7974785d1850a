/**
 * Whether CloudFormation is rolling the stack back: an Update of our resource then carries the
 * previous properties, and must never fail.
 */
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';

const ROLLING_BACK = new Set([
  'UPDATE_ROLLBACK_IN_PROGRESS',
  'UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS',
  'ROLLBACK_IN_PROGRESS',
]);

export async function isStackRollingBack(client: CloudFormationClient, stackId: string): Promise<boolean> {
  const out = await client.send(new DescribeStacksCommand({ StackName: stackId }));
  const status = out.Stacks?.[0]?.StackStatus;
  return status !== undefined && ROLLING_BACK.has(status);
}
