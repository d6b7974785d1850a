// Bundles the CLI into dist/orion-db.cjs (fast start: one file, dependencies stay in node_modules).
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

await build({
  entryPoints: ['bin/orion-db.ts'],
  outfile: 'dist/orion-db.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
chmodSync('dist/orion-db.cjs', 0o755);
