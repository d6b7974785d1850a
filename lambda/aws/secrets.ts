/**
 * The secrets port on Secrets Manager. Values are parsed here and never logged or put in messages.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Credentials, SecretsPort } from '../lifecycle/ports';

/** The JSON that RDS-generated secrets hold. */
export interface DatabaseSecretValue extends Credentials {
  readonly host?: string;
  readonly port?: number | string;
  readonly dbname?: string;
}

export class SecretsManagerSecrets implements SecretsPort {
  private readonly cache = new Map<string, Promise<DatabaseSecretValue>>();

  constructor(
    private readonly client: SecretsManagerClient,
    private readonly masterSecretArn: string,
    private readonly appSecretArn: string,
  ) {}

  master(): Promise<DatabaseSecretValue> {
    return this.read(this.masterSecretArn, 'master');
  }

  app(): Promise<DatabaseSecretValue> {
    return this.read(this.appSecretArn, 'app');
  }

  /** Read once per invocation: the value may rotate between invocations, never within one. */
  private read(arn: string, which: string): Promise<DatabaseSecretValue> {
    let value = this.cache.get(arn);
    if (!value) {
      value = this.client
        .send(new GetSecretValueCommand({ SecretId: arn }))
        .then((out) => parse(out.SecretString, which, arn));
      value.catch(() => this.cache.delete(arn));
      this.cache.set(arn, value);
    }
    return value;
  }
}

function parse(text: string | undefined, which: string, arn: string): DatabaseSecretValue {
  let value: any;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw new Error(`the ${which} secret ${arn} is not JSON`); // the value itself is never quoted
  }
  if (typeof value?.username !== 'string' || typeof value?.password !== 'string') {
    throw new Error(`the ${which} secret ${arn} has no username/password`);
  }
  return {
    username: value.username,
    password: value.password,
    host: value.host,
    port: value.port,
    dbname: value.dbname,
  };
}
