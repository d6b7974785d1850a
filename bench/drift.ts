/**
 * `orion-db drift` against `orion-db migrate` of the same history (issue #16: drift within 1.5x the
 * time to apply it). Each round, in alternation: `migrate` of the history into a fresh database, then
 * `drift` of that database (which replays the same history into a scratch database, reads both
 * catalogs and compares them), each timed as a whole process. Shapes from bench/shapes.ts at 300
 * migrations (BENCH_DRIFT_SHAPES, default ddl,index-fk,function); BENCH_ROUNDS rounds (default 5).
 * Results go to bench/results/drift.json.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedServer } from '../lambda/local/embedded-server';
import { SHAPES, writeMigrations } from './shapes';

const ROOT = resolve(__dirname, '..');
const WORK = join(ROOT, 'bench', '.work', 'drift');
const CLI = join(ROOT, 'dist', 'orion-db.cjs');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const COUNT = 300;
const WANTED = (process.env.BENCH_DRIFT_SHAPES ?? 'ddl,index-fk,function').split(',');

function run(args: string[]): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => done({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr }));
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  chmodSync(WORK, 0o755);
  const base = existsSync('/dev/shm') ? '/dev/shm' : WORK;
  const parent = mkdtempSync(join(base, 'orion-bench-drift-'));
  chmodSync(parent, 0o755);
  const server = await startEmbeddedServer({ dataDir: join(parent, 'data'), password: 'bench', fast: true });
  const admin = new Client({ connectionString: server.url });
  await admin.connect();
  const rows: {
    shape: string;
    migrations: number;
    migrate_ms: number;
    drift_ms: number;
    ratio: number;
    live_catalog_read_ms: number;
  }[] = [];
  console.log(
    `# orion-db drift vs migrate, ${COUNT} migrations, ${ROUNDS} rounds (medians)\n` +
      `${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores; load ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}; PostgreSQL 16 on ${base === '/dev/shm' ? 'tmpfs' : 'disk'}, fsync off\n`,
  );
  let n = 0;
  try {
    for (const shape of SHAPES.filter((s) => WANTED.includes(s.id))) {
      const dir = writeMigrations(WORK, shape, 'orion', COUNT);
      const migrateMs: number[] = [];
      const driftMs: number[] = [];
      const readMs: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const name = `bench_drift_${++n}`;
        await admin.query(`CREATE DATABASE ${name}`);
        const url = server.url.replace(/\/postgres$/, `/${name}`);
        const migrate = await run(['migrate', '--database-url', url, '--migrations', dir, '--no-role']);
        if (migrate.code !== 0) throw new Error(`migrate exited ${migrate.code}: ${migrate.stderr.slice(-2000)}`);
        const drift = await run(['drift', '--database-url', url, '--migrations', dir, '--json']);
        // Checked, not only timed: a drift run that found anything (or failed) is no measurement.
        if (drift.code !== 0 || JSON.parse(drift.stdout).drift.length !== 0)
          throw new Error(`drift exited ${drift.code} on a clean database: ${drift.stderr.slice(-2000)}`);
        migrateMs.push(migrate.ms);
        driftMs.push(drift.ms);
        readMs.push(JSON.parse(drift.stdout).ms.read);
        await admin.query(`DROP DATABASE ${name}`);
      }
      const row = {
        shape: shape.id,
        migrations: COUNT,
        migrate_ms: Math.round(median(migrateMs)),
        drift_ms: Math.round(median(driftMs)),
        ratio: Math.round((median(driftMs) / median(migrateMs)) * 100) / 100,
        live_catalog_read_ms: Math.round(median(readMs)),
      };
      rows.push(row);
      console.log(
        `${shape.label.padEnd(48)} migrate ${String(row.migrate_ms).padStart(6)} ms   drift ${String(row.drift_ms).padStart(6)} ms   ${row.ratio.toFixed(2)}x  (live catalog read ${row.live_catalog_read_ms} ms; drift ${driftMs.map(Math.round).join(', ')})`,
      );
    }
  } finally {
    await admin.end();
    await server.stop();
    rmSync(parent, { recursive: true, force: true });
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench', 'results', 'drift.json'),
    JSON.stringify({ at: new Date().toISOString(), rounds: ROUNDS, load: loadavg(), rows }, null, 2) + '\n',
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
