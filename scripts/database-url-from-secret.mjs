// Prints a connection URL built from an RDS secret (for CI steps that run orion-db against a
// deployed database). Its output holds a password: capture it into an environment variable, never echo it.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

const [secretArn, database] = process.argv.slice(2);
if (!secretArn || !database) {
  console.error('usage: database-url-from-secret.mjs SECRET_ARN DATABASE');
  process.exit(2);
}
const out = await new SecretsManagerClient({}).send(new GetSecretValueCommand({ SecretId: secretArn }));
const s = JSON.parse(out.SecretString ?? '{}');
const url = new URL(`postgres://${s.host}:${s.port}/${encodeURIComponent(database)}?sslmode=verify-full`);
url.username = encodeURIComponent(s.username);
url.password = encodeURIComponent(s.password);
process.stdout.write(url.toString());
