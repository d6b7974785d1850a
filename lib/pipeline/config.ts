/**
 * Settings of the CDK pipeline that promotes staging to prod: the `pipeline` section of the
 * committed settings file (`-c pipeline=true -c config=orion.config.json`). Synthesized only when
 * asked for, so a plain `cdk synth` needs no repository connection.
 */

import type { ExistingVpc } from '../config/environments';
import { ConfigError } from '../config/errors';

export interface PipelineConfig {
  /** The account of the pipeline itself (its stack, CodeBuild projects and artifact bucket). */
  readonly account: string;
  /** The region of the pipeline and of both environments. */
  readonly region: string;
  /**
   * Where staging is deployed. The staging check runs CodeBuild inside `stagingVpc`, which a
   * CodeBuild project of the pipeline's account can only use when the VPC is (shared) in that account.
   */
  readonly stagingAccount: string;
  /** Where prod is deployed; bootstrapped with `cdk bootstrap --trust <account>`. */
  readonly prodAccount: string;
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

/** What `-c pipeline=true` synthesizes without a settings file: for the tests and CI, never deployable. */
export const EXAMPLE_PIPELINE_CONFIG: PipelineConfig = {
  account: '111111111111',
  region: 'eu-west-1',
  stagingAccount: '111111111111',
  prodAccount: '222222222222',
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
  for (const key of ['account', 'stagingAccount', 'prodAccount'] as const)
    if (!/^\d{12}$/.test(String(c[key]))) errors.push(`${key}: must be a 12-digit AWS account id, got "${c[key]}"`);
  if (!/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/.test(String(c.region)))
    errors.push(`region: must be an AWS region like eu-west-1, got "${c.region}"`);
  if (
    !/^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection\/[0-9a-f-]{36}$/.test(
      String(c.connectionArn),
    )
  )
    errors.push(`connectionArn: not a connection ARN: "${c.connectionArn}"`);
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(String(c.repository)))
    errors.push(`repository: must be owner/name, got "${c.repository}"`);
  if (!c.branch) errors.push('branch: must not be empty');
  if (!c.stagingVpc) errors.push('stagingVpc: required (vpcId, cidrBlock, availabilityZones, subnetIds)');
  if (!/^sg-[0-9a-f]{8,17}$/.test(String(c.checkSecurityGroupId)))
    errors.push(`checkSecurityGroupId: not a security group id: "${c.checkSecurityGroupId}"`);
  if (errors.length) throw new ConfigError(`invalid pipeline configuration:\n  ${errors.join('\n  ')}`);
  return c;
}
