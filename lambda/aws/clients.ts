/**
 * The SDK clients the Lambda uses, with the SDK's own retries: adaptive mode backs off on throttling
 * and rate-limits the client itself, for every command, including the quota faults RDS returns.
 * Nothing of ours retries on top of it.
 */
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { RDSClient } from '@aws-sdk/client-rds';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** Attempts per command (the SDK's default is 3): RDS's describe quotas are low and shared by the account. */
export const MAX_ATTEMPTS = 8;

/** What every client gets; `extra` (region, a request handler in tests) is added. */
export function clientConfig<T extends object>(extra: T = {} as T): T & { maxAttempts: number; retryMode: 'adaptive' } {
  return { ...extra, maxAttempts: MAX_ATTEMPTS, retryMode: 'adaptive' };
}

export function awsClients(extra: object = {}) {
  return {
    rds: new RDSClient(clientConfig(extra)),
    secretsManager: new SecretsManagerClient(clientConfig(extra)),
    cloudFormation: new CloudFormationClient(clientConfig(extra)),
  };
}
