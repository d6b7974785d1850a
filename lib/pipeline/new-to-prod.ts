/**
 * What the prod approval shows: the migrations of this commit that prod has not applied yet.
 *
 * Prod's version is read from prod's own stack — the output SchemaVersion, which is the custom
 * resource's ToVersion, i.e. prod's ledger after its last deploy — rather than from the commit the
 * pipeline last promoted: prod can also be deployed by hand or by the GitHub workflow, and a failed
 * or rolled-back deploy leaves it where its ledger says, not where the last approval pointed.
 */
import { readdirSync } from 'node:fs';
import { type CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { parseFileName } from '../../lambda/engine/files';

/** Prod's schema version, `none` before its first deploy, or undefined when its stack does not say. */
export async function prodSchemaVersion(cfn: CloudFormationClient, stackName: string): Promise<string | undefined> {
  try {
    const out = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return out.Stacks?.[0]?.Outputs?.find((o) => o.OutputKey === 'SchemaVersion')?.OutputValue;
  } catch (err: any) {
    if (err?.name === 'ValidationError' && /does not exist/.test(String(err.message))) return 'none';
    throw err;
  }
}

/** The up migrations in `dir` newer than `version` (all of them for `none`), oldest first, without `.up.sql`. */
export function migrationsNewerThan(dir: string, version: string): string[] {
  const floor = version === 'none' ? -1n : BigInt(version);
  return readdirSync(dir)
    .map((file) => ({ file, parsed: parseFileName(file) }))
    .filter((m) => m.parsed?.direction === 'up' && m.parsed.version > floor)
    .sort((a, b) => (a.parsed!.version < b.parsed!.version ? -1 : 1))
    .map((m) => m.file.replace(/\.up\.sql$/, ''));
}

/** The two pipeline variables the approval comment shows; at most ~900 characters together. */
export function approvalVariables(prodVersion: string | undefined, dir: string) {
  if (prodVersion === undefined)
    return {
      PROD_SCHEMA_VERSION: 'unknown (its stack has no SchemaVersion output)',
      NEW_TO_PROD: `unknown; this commit carries ${migrationsNewerThan(dir, 'none').length} migrations`,
    };
  const names = migrationsNewerThan(dir, prodVersion);
  let shown = names.join(', ');
  for (let keep = names.length - 1; shown.length > 800 && keep > 0; keep--)
    shown = `${names.slice(0, keep).join(', ')}, … ${names.length - keep} more`;
  return {
    PROD_SCHEMA_VERSION: prodVersion,
    NEW_TO_PROD: names.length === 0 ? 'none' : `${names.length}: ${shown}`,
  };
}
