/**
 * The pipeline's NewToProd step: prints `export NAME='value'` lines for the prod approval
 * (lib/pipeline/new-to-prod.ts). Credentials: the AWS profile the step sets up (prod's lookup role).
 *   npx tsx scripts/new-to-prod.ts --stack Orion-prod --region eu-west-1 --migrations migrations
 */
import { parseArgs } from 'node:util';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { approvalVariables, prodSchemaVersion } from '../lib/pipeline/new-to-prod';

const { values } = parseArgs({
  options: { stack: { type: 'string' }, region: { type: 'string' }, migrations: { type: 'string' } },
});
if (!values.stack || !values.region || !values.migrations) {
  console.error('usage: new-to-prod.ts --stack NAME --region REGION --migrations DIR');
  process.exit(2);
}
async function main(stack: string, region: string, migrations: string) {
  const version = await prodSchemaVersion(new CloudFormationClient({ region }), stack);
  // Values are versions and migration names (letters, digits, _ . -): no quote can occur in them.
  for (const [name, value] of Object.entries(approvalVariables(version, migrations)))
    console.log(`export ${name}='${value.replace(/'/g, '')}'`);
}

main(values.stack, values.region, values.migrations).catch((err) => {
  console.error(`cannot read prod's schema version from stack ${values.stack}: ${err.message}`);
  process.exit(1);
});
