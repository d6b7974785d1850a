/**
 * The roles GitHub Actions assumes through OIDC to deploy one environment: no long-lived AWS keys.
 * Each role trusts only this repository's jobs running in that GitHub environment, and may only
 * assume the CDK bootstrap roles (which `cdk deploy` uses) of its account. Those bootstrap roles can
 * deploy any stack of the account, so only separate accounts keep the staging role away from prod.
 */
import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { NagSuppressions } from 'cdk-nag';
import type { Construct } from 'constructs';
import { ConfigError } from '../config/errors';

export interface GitHubOidcStackProps extends StackProps {
  /** `owner/name`. */
  readonly repository: string;
  /** GitHub environment name → role name suffix, e.g. { staging: 'staging', production: 'prod' }. */
  readonly environments: Readonly<Record<string, string>>;
  /**
   * An account has at most one GitHub OIDC provider: give its ARN when it exists already.
   * @default - the provider is created
   */
  readonly existingProviderArn?: string;
}

export class GitHubOidcStack extends Stack {
  readonly roles: Record<string, iam.Role> = {};

  constructor(scope: Construct, id: string, props: GitHubOidcStackProps) {
    super(scope, id, props);
    if (
      props.existingProviderArn !== undefined &&
      !/^arn:aws[a-z-]*:iam::\d{12}:oidc-provider\/token\.actions\.githubusercontent\.com$/.test(
        props.existingProviderArn,
      )
    )
      throw new ConfigError(
        `-c githubOidcProviderArn: expected arn:aws:iam::<account>:oidc-provider/token.actions.githubusercontent.com, got "${props.existingProviderArn}"`,
      );
    if (Object.keys(props.environments).length > 1)
      Annotations.of(this).addWarningV2(
        'orion:shared-deploy-account',
        `the roles for ${Object.keys(props.environments).join(' and ')} are in one account: each may assume the same CDK ` +
          'bootstrap roles, so either can deploy every stack of it. Keep prod in its own account and deploy this ' +
          'stack there with -c githubEnvironments=production (README, "GitHub Actions")',
      );
    const providerArn =
      props.existingProviderArn ??
      new iam.OpenIdConnectProvider(this, 'GitHub', {
        url: 'https://token.actions.githubusercontent.com',
        clientIds: ['sts.amazonaws.com'],
      }).openIdConnectProviderArn;
    for (const [environment, suffix] of Object.entries(props.environments)) {
      const role = new iam.Role(this, `Deploy-${suffix}`, {
        roleName: `orion-github-deploy-${suffix}`,
        // A snapshot of a large database plus migrations can take well over the default hour.
        maxSessionDuration: Duration.hours(4),
        assumedBy: new iam.WebIdentityPrincipal(providerArn, {
          StringEquals: {
            'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
            'token.actions.githubusercontent.com:sub': `repo:${props.repository}:environment:${environment}`,
          },
        }),
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['sts:AssumeRole'],
          resources: [
            `arn:${this.partition}:iam::${this.account}:role/cdk-hnb659fds-*-role-${this.account}-${this.region}`,
          ],
        }),
      );
      this.roles[environment] = role;
      NagSuppressions.addResourceSuppressions(
        role,
        [
          {
            id: 'AwsSolutions-IAM5',
            reason:
              'cdk deploy assumes the CDK bootstrap roles of this account (deploy, file/image publishing, lookup), which share this name pattern',
          },
        ],
        true,
      );
      new CfnOutput(this, `RoleArn${suffix}`, {
        value: role.roleArn,
        description: `Set as vars.${suffix.toUpperCase()}_DEPLOY_ROLE_ARN in the GitHub environment "${environment}"`,
      });
    }
  }
}
