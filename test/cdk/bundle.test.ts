/**
 * The migration Lambda's real bundle (esbuild, as `cdk synth` builds it): the handler, the parser's
 * WebAssembly beside it (it is loaded from the bundle's own folder) and the migrations inside.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { expect, test } from 'vitest';
import { environmentConfig } from '../../lib/config/environments';
import { DatabaseStack } from '../../lib/database-stack';
import { SHIPPED_MIGRATIONS } from '../helpers/db';

test('the Lambda bundle carries the handler, the parser’s wasm and the migrations, and loads', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'orion-cdk-out-'));
  const context = JSON.parse(readFileSync(join(__dirname, '..', '..', 'cdk.json'), 'utf8')).context;
  const app = new App({ outdir, context });
  const stack = new DatabaseStack(app, 'Orion-dev', { config: environmentConfig('dev'), deployId: 'd1' });
  const template = Template.fromStack(stack);
  app.synth();
  const fn = Object.values(template.findResources('AWS::Lambda::Function')).find(
    (r) => r.Properties.Handler === 'index.onEvent',
  )!;
  const hash = String(fn.Properties.Code.S3Key).replace(/\.zip$/, '');
  const asset = join(outdir, `asset.${hash}`);
  expect(existsSync(join(asset, 'index.js'))).toBe(true);
  expect(existsSync(join(asset, 'libpg-query.wasm'))).toBe(true);
  expect(readdirSync(join(asset, 'migrations')).sort()).toEqual(
    readdirSync(SHIPPED_MIGRATIONS)
      .filter((f) => f.endsWith('.sql'))
      .sort(),
  );
  const run = spawnSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(join(asset, 'index.js'))}).isComplete({ RequestType: 'Delete', StackId: 's', PhysicalResourceId: 'p' }, { getRemainingTimeInMillis: () => 60000 }).then((r) => console.log(JSON.stringify(r)))`,
    ],
    // The AWS SDK is not bundled: Lambda's runtime provides it, here the project's node_modules do.
    {
      encoding: 'utf8',
      env: { ...process.env, AWS_REGION: 'eu-west-1', NODE_PATH: join(__dirname, '..', '..', 'node_modules') },
    },
  );
  expect(run.stdout.trim().split('\n').at(-1), run.stderr).toBe('{"IsComplete":true}');
}, 120_000);
