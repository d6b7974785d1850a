/**
 * `npm run bench`, the copy part (issue #17): `orion-db copy` beside its peers, each a whole process
 * as users run it, alternating round by round, each run into a fresh database with the SOP's schema,
 * every run checked to have really copied all rows.
 *
 * - SQLite → PostgreSQL 16: 800,000 rows in the SOP's three tables against pgloader (Debian's
 *   package, `WITH data only`; installed with apt-get when missing).
 * - PostgreSQL → PostgreSQL: the same rows against `pg_dump --data-only | psql`, on Debian's
 *   PostgreSQL 15 (pg_dump 15 refuses a 16 server), through scripts/with-pg15.sh.
 * - Memory: peak RSS of `orion-db copy` on a 2 GB-class table (BENCH_COPY_BIG_ROWS rows of ≈ 1 KB).
 *
 * BENCH_COPY_ROUNDS (default 5) rounds; BENCH_COPY_CASES (default sqlite,pg,big) picks cases; results in
 * bench/results/copy.json, each row with the 1-minute load average before and after it (the machine is shared);
 * a run of some cases replaces only their rows (bench/copy-results.ts).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedServer } from '../lambda/local/embedded-server';
import { mergeResults, type ResultRow, type ResultsFile } from './copy-results';

const ROOT = resolve(__dirname, '..');
const WORK = join(ROOT, 'bench', '.work', 'copy');
const CLI = join(ROOT, 'dist', 'orion-db.cjs');
const RSS = join(ROOT, 'bench', 'rss.cjs');
const ROUNDS = Number(process.env.BENCH_COPY_ROUNDS ?? 5);
const BIG_ROWS = Number(process.env.BENCH_COPY_BIG_ROWS ?? 2_000_000);
const SIZES = { activities: 300_000, tokens: 400_000, viewers: 100_000 };
const TOTAL = SIZES.activities + SIZES.tokens + SIZES.viewers;
const SCHEMA = readFileSync(join(ROOT, 'test', 'fixtures', 'orion-sop', '000001_init_schema.up.sql'), 'utf8');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const CASES = (process.env.BENCH_COPY_CASES ?? 'sqlite,pg,big').split(',');
const load = () => Number(loadavg()[0].toFixed(2));

interface Sample {
  ms: number;
  rssMb?: number;
}
interface Row {
  case: string;
  contender: string;
  runs: number[];
  median: number;
  min: number;
  max: number;
  /** (max − min) / median */
  spread: number;
  ratio?: number;
  rssMb?: number;
  note?: string;
  /** 1-minute load average before and after the case. */
  load?: [number, number];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Runs a command to completion: wall time, and peak RSS (node: bench/rss.cjs on fd 3; others: /usr/bin/time). */
function run(cmd: string, args: string[], options: { rssOf?: 'node' | 'time'; env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<Sample>((done, fail) => {
    let argv = args;
    let command = cmd;
    if (options.rssOf === 'node') argv = ['--require', RSS, ...args];
    if (options.rssOf === 'time' && TIME) {
      command = TIME;
      argv = ['-f', 'maxrss-kb=%M', cmd, ...args];
    }
    const started = process.hrtime.bigint();
    const child = spawn(command, argv, {
      cwd: ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let fd3 = '';
    child.stderr!.on('data', (d) => (stderr += d));
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d) => (fd3 += d));
    child.on('error', fail);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (code !== 0) return fail(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.slice(-3000)}`));
      const timeKb = /maxrss-kb=(\d+)/.exec(stderr)?.[1];
      const kb = fd3 ? Number(fd3.trim()) : timeKb ? Number(timeKb) : undefined;
      done({ ms, rssMb: kb ? kb / 1024 : undefined });
    });
  });
}

function sqliteData(name: string, sql: string): string {
  const path = join(WORK, name);
  if (existsSync(path)) return path;
  execFileSync('sqlite3', [`${path}.tmp`], { input: sql, stdio: ['pipe', 'ignore', 'inherit'] });
  execFileSync('mv', [`${path}.tmp`, path]);
  return path;
}

function sopData(): string {
  const sql = readFileSync(join(ROOT, 'bench', 'copy-data.sql'), 'utf8')
    .replace(/:activities/g, String(SIZES.activities))
    .replace(/:tokens/g, String(SIZES.tokens))
    .replace(/:viewers/g, String(SIZES.viewers));
  return sqliteData('sop-800k.db', sql);
}

function ensurePgloader(): boolean {
  if (spawnSync('pgloader', ['--version']).status === 0) return true;
  console.error("pgloader not found; installing Debian's package");
  const apt = spawnSync(
    'bash',
    ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgloader'],
    {
      stdio: 'inherit',
    },
  );
  return apt.status === 0;
}

/** A server to create fresh databases on and count what each run copied. */
function databases(serverUrl: string) {
  let n = 0;
  const urlOf = (name: string) => {
    const u = new URL(serverUrl);
    u.pathname = `/${name}`;
    return u.toString();
  };
  return {
    urlOf,
    async fresh(prefix: string, schema = SCHEMA): Promise<string> {
      const name = `${prefix}_${process.pid}_${++n}`;
      await sql(serverUrl, `CREATE DATABASE ${name}`);
      await sql(urlOf(name), schema);
      return name;
    },
    async drop(name: string) {
      await sql(serverUrl, `DROP DATABASE ${name} WITH (FORCE)`);
    },
    async rows(name: string, tables: string[]): Promise<number> {
      const r = await sql(urlOf(name), tables.map((t) => `SELECT count(*)::int AS n FROM ${t}`).join(' UNION ALL '));
      return r.reduce((s, x) => s + x.n, 0);
    },
  };
}

async function sql(url: string, text: string): Promise<any[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query(text);
    return Array.isArray(r) ? r.at(-1).rows : r.rows;
  } finally {
    await c.end();
  }
}

function summarise(caseName: string, contender: string, samples: Sample[], note?: string): Row {
  const runs = samples.map((s) => s.ms);
  const rss = samples.map((s) => s.rssMb).filter((x): x is number => x !== undefined);
  const m = median(runs);
  return {
    case: caseName,
    contender,
    runs: runs.map(Math.round),
    median: m,
    min: Math.min(...runs),
    max: Math.max(...runs),
    spread: (Math.max(...runs) - Math.min(...runs)) / m,
    rssMb: rss.length ? Math.max(...rss) : undefined,
    note,
  };
}

function print(rows: Row[]): void {
  console.log('| case | contender | median s | min–max s | spread | vs peer | peak RSS MB | load |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.case} | ${r.contender}${r.note ? ` (${r.note})` : ''} | ${(r.median / 1000).toFixed(2)} | ` +
        `${(r.min / 1000).toFixed(2)}–${(r.max / 1000).toFixed(2)} | ${(r.spread * 100).toFixed(0)} % | ` +
        `${r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : ''} | ${r.rssMb !== undefined ? r.rssMb.toFixed(0) : ''} | ${r.load ? r.load.join('–') : ''} |`,
    );
  }
}

const TABLES = ['activities', 'activity_tokens', 'viewer_entries'];

/** SQLite → PostgreSQL 16: orion-db copy and pgloader, alternating. */
async function fromSqlite(serverUrl: string, data: string): Promise<Row[]> {
  const before = load();
  const db = databases(serverUrl);
  const havePgloader = ensurePgloader();
  const orion: Sample[] = [];
  const pgloader: Sample[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['pgloader', 'orion'] : ['orion', 'pgloader'];
    for (const who of order) {
      if (who === 'pgloader' && !havePgloader) continue;
      const name = await db.fresh('copy_sqlite');
      let s: Sample;
      if (who === 'orion') {
        s = await run(process.execPath, [CLI, 'copy', '--from', `sqlite:///${data}`, '--to', db.urlOf(name)], {
          rssOf: 'node',
        });
        orion.push(s);
      } else {
        const load = join(WORK, 'pgloader.load');
        writeFileSync(
          load,
          `LOAD DATABASE FROM sqlite:///${data} INTO ${db.urlOf(name)}\n` +
            'WITH data only, truncate, create no tables, create no indexes, reset no sequences;\n',
        );
        s = await run('pgloader', ['-q', load], { rssOf: 'time' });
        pgloader.push(s);
      }
      const copied = await db.rows(name, TABLES);
      if (copied !== TOTAL) throw new Error(`${who} copied ${copied} rows, expected ${TOTAL}`);
      await db.drop(name);
    }
  }
  const label = 'SQLite → PG 16, 800k rows';
  const rows = [summarise(label, 'orion-db copy', orion)];
  if (pgloader.length) {
    rows.push(summarise(label, 'pgloader (Debian, WITH data only)', pgloader));
    rows[0].ratio = rows[0].median / rows[1].median;
  }
  for (const r of rows) r.load = [before, load()];
  return rows;
}

/** Peak RSS on a 2 GB-class table: memory is bounded by the batch, not the table. */
async function bigTable(serverUrl: string): Promise<Row[]> {
  const before = load();
  const data = sqliteData(
    `big-${BIG_ROWS}.db`,
    `PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;
     CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, at TEXT NOT NULL);
     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BIG_ROWS})
     INSERT INTO big SELECT i, hex(randomblob(500)), datetime(1700000000 + i, 'unixepoch') FROM n;`,
  );
  const db = databases(serverUrl);
  const name = await db.fresh(
    'copy_big',
    'CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL, at timestamptz NOT NULL)',
  );
  const s = await run(process.execPath, [CLI, 'copy', '--from', `sqlite:///${data}`, '--to', db.urlOf(name)], {
    rssOf: 'node',
  });
  const copied = await db.rows(name, ['big']);
  if (copied !== BIG_ROWS) throw new Error(`copied ${copied} rows of the big table, expected ${BIG_ROWS}`);
  await db.drop(name);
  const gb = statSync(data).size / 1024 ** 3;
  const row = summarise(
    `one ${gb.toFixed(1)} GB SQLite table`,
    'orion-db copy',
    [s],
    `${BIG_ROWS.toLocaleString('en')} rows`,
  );
  row.load = [before, load()];
  return [row];
}

/** PostgreSQL → PostgreSQL on 15 (run inside scripts/with-pg15.sh): orion-db copy and pg_dump | psql. */
async function pgToPg(serverUrl: string, data: string): Promise<Row[]> {
  const before = load();
  const db = databases(serverUrl);
  const src = await db.fresh('copy_src');
  await run(process.execPath, [CLI, 'copy', '--from', `sqlite:///${data}`, '--to', db.urlOf(src)]);
  const orion: Sample[] = [];
  const dump: Sample[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['dump', 'orion'] : ['orion', 'dump'];
    for (const who of order) {
      const name = await db.fresh('copy_pg');
      if (who === 'orion') {
        orion.push(
          await run(process.execPath, [CLI, 'copy', '--from', db.urlOf(src), '--to', db.urlOf(name)], {
            rssOf: 'node',
          }),
        );
      } else {
        dump.push(
          await run('bash', [
            '-o',
            'pipefail',
            '-c',
            `pg_dump --data-only "${db.urlOf(src)}" | psql -X -q -v ON_ERROR_STOP=1 "${db.urlOf(name)}" > /dev/null`,
          ]),
        );
      }
      const copied = await db.rows(name, TABLES);
      if (copied !== TOTAL) throw new Error(`${who} copied ${copied} rows, expected ${TOTAL}`);
      await db.drop(name);
    }
  }
  const label = 'PG 15 → PG 15, 800k rows';
  const rows = [summarise(label, 'orion-db copy', orion), summarise(label, 'pg_dump --data-only | psql', dump)];
  rows[0].ratio = rows[0].median / rows[1].median;
  for (const r of rows) r.load = [before, load()];
  return rows;
}

async function main(): Promise<void> {
  const cases = process.env.BENCH_CASES;
  if (cases && !cases.split(',').includes('copy')) return;
  mkdirSync(WORK, { recursive: true });
  chmodSync(WORK, 0o755);
  const data = sopData();
  if (process.argv[2] === '--pg-to-pg') {
    // Inside scripts/with-pg15.sh: ORION_TEST_DATABASE_URL is its PostgreSQL 15.
    writeFileSync(process.argv[3], JSON.stringify(await pgToPg(process.env.ORION_TEST_DATABASE_URL!, data)));
    return;
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const settings = `${cpu}, ${cpus().length} cores; node ${process.version}; ${ROUNDS} rounds, alternating; data on tmpfs, fsync off`;
  console.log(`\n# orion-db copy benchmarks\n${settings}\n`);
  const base = existsSync('/dev/shm') ? '/dev/shm' : WORK;
  const parent = mkdtempSync(join(base, 'orion-copy-bench-'));
  chmodSync(parent, 0o755);
  const server = await startEmbeddedServer({ dataDir: join(parent, 'data'), password: 'bench', fast: true });
  const rows: Row[] = [];
  try {
    if (CASES.includes('sqlite')) rows.push(...(await fromSqlite(server.url, data)));
    print(rows);
    const pgOut = join(WORK, 'pg-to-pg.json');
    rmSync(pgOut, { force: true });
    const pg = !CASES.includes('pg')
      ? { status: null }
      : spawnSync(
          'bash',
          ['scripts/with-pg15.sh', process.execPath, '--import', 'tsx', __filename, '--pg-to-pg', pgOut],
          {
            cwd: ROOT,
            stdio: 'inherit',
          },
        );
    if (pg.status === 0) rows.push(...JSON.parse(readFileSync(pgOut, 'utf8')));
    else if (CASES.includes('pg')) console.error('the PostgreSQL 15 comparison failed; see above');
    if (CASES.includes('big')) rows.push(...(await bigTable(server.url)));
  } finally {
    await server.stop();
    rmSync(parent, { recursive: true, force: true });
  }
  console.log();
  print(rows);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = join(ROOT, 'bench', 'results', 'copy.json');
  // A run of some cases keeps the other cases' rows (copy-results.ts).
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ResultsFile) : null;
  const merged = mergeResults(previous, rows as unknown as ResultRow[], {
    date: new Date().toISOString(),
    settings,
    rounds: ROUNDS,
  });
  writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
