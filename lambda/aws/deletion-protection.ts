/**
 * The instance's deletion protection, owned by Custom::SchemaMigrations instead of the template.
 * The template cannot say "protected, except while the stack's own creation rolls back", and with
 * protection on from the start a failed first create ends ROLLBACK_FAILED, its fixed names taken.
 * So: the setting is applied at the start of every deploy, and lifted again only when CloudFormation
 * rolls back the creation of this very stack for an instance that creation made.
 */
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import {
  type DBInstance,
  DescribeDBInstancesCommand,
  ModifyDBInstanceCommand,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { unlessNotFound } from './not-found';

export class RdsDeletionProtection {
  constructor(
    private readonly rds: RDSClient,
    private readonly cloudFormation: CloudFormationClient,
    private readonly instanceIdentifier: string,
    /**
     * An instance the stack adopted (config `existingInstance`) is someone's long-lived database:
     * protection is turned on when configured, and never lifted, not even for a rollback.
     */
    private readonly adopted = false,
  ) {}

  /**
   * Sets deletion protection to `on` where it differs; it takes effect at once, without a reboot.
   * Not while the instance is busy or renamed away for a restore (which sets it on the copy): a
   * later poll or deploy does it then.
   */
  async apply(on: boolean): Promise<void> {
    if (this.adopted && !on) return;
    const instance = await this.instance();
    if (instance?.DBInstanceStatus === 'available' && instance.DeletionProtection !== on) await this.protect(on);
  }

  /**
   * While the stack's creation rolls back (ROLLBACK_IN_PROGRESS, a status only a failed create has),
   * makes the instance that creation made deletable. An instance older than the stack — one the
   * stack adopted — keeps its protection. True when CloudFormation may go on deleting.
   */
  async releaseForFailedCreate(stackId: string): Promise<boolean> {
    if (this.adopted) return true; // no call at all: nothing here may lift an adopted instance's protection
    const out = await this.cloudFormation.send(new DescribeStacksCommand({ StackName: stackId }));
    const stack = out.Stacks?.[0];
    if (stack?.StackStatus !== 'ROLLBACK_IN_PROGRESS' || !stack.CreationTime) return true;
    const instance = await this.instance();
    if (!instance?.InstanceCreateTime || instance.InstanceCreateTime < stack.CreationTime) return true;
    if (instance.DeletionProtection) {
      await this.protect(false);
      return false;
    }
    return instance.DBInstanceStatus === 'available';
  }

  private async protect(on: boolean): Promise<void> {
    await this.rds.send(
      new ModifyDBInstanceCommand({
        DBInstanceIdentifier: this.instanceIdentifier,
        DeletionProtection: on,
        ApplyImmediately: true,
      }),
    );
  }

  private async instance(): Promise<DBInstance | undefined> {
    const out = await unlessNotFound(
      () => this.rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: this.instanceIdentifier })),
      'DBInstanceNotFoundFault',
    );
    return out?.DBInstances?.[0];
  }
}
