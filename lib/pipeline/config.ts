/**
 * Settings of the CDK pipeline that promotes staging to prod. Synthesized only when configured
 * (`-c pipeline=true`), so a plain `cdk synth` needs no repository connection.
 */
import { BadInputError } from '../../lambda/engine/errors';
import type { ExistingVpc } from '../config/environments';

export interface PipelineConfig {
  /** CodeStar/CodeConnections connection to the repository. */
  readonly connectionArn: string;
  /** `owner/name`. */
  readonly repository: string;
  readonly branch: string;
  /** Staging runs in this VPC, so the post-deploy check can reach its database. */
  readonly stagingVpc: ExistingVpc;
  /**
   * A security group in that VPC for the check step; staging admits it (applicationSecurityGroupIds)
   * because stacks deployed by a pipeline cannot reference the pipeline stack's own resources.
   */
  readonly checkSecurityGroupId: string;
}

/** The example the README and the tests use; real values come from context (-c pipelineConfig=file.json). */
export const EXAMPLE_PIPELINE_CONFIG: PipelineConfig = {
  connectionArn: 'arn:aws:codeconnections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000',
  repository: 'example-org/orion-db-stack',
  branch: 'main',
  stagingVpc: {
    vpcId: 'vpc-0a1b2c3d4e5f60718',
    cidrBlock: '10.70.0.0/16',
    availabilityZones: ['eu-west-1a', 'eu-west-1b'],
    subnetIds: ['subnet-0a1b2c3d4e5f60711', 'subnet-0a1b2c3d4e5f60722'],
  },
  checkSecurityGroupId: 'sg-0a1b2c3d4e5f60799',
};

export function validatePipelineConfig(c: PipelineConfig): PipelineConfig {
  const errors: string[] = [];
  if (
    !/^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection\/[0-9a-f-]{36}$/.test(
      c.connectionArn,
    )
  )
    errors.push(`connectionArn: not a connection ARN: "${c.connectionArn}"`);
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(c.repository))
    errors.push(`repository: must be owner/name, got "${c.repository}"`);
  if (!c.branch) errors.push('branch: must not be empty');
  if (!/^sg-[0-9a-f]{8,17}$/.test(c.checkSecurityGroupId))
    errors.push(`checkSecurityGroupId: not a security group id: "${c.checkSecurityGroupId}"`);
  if (errors.length) throw new BadInputError(`invalid pipeline configuration:\n  ${errors.join('\n  ')}`);
  return c;
}
