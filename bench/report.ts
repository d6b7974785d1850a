/**
 * `npx tsx bench/report.ts [RUN.json…]`: the README's performance tables from full runs of
 * bench/run.ts — every shape of the newest run with its ratios, then orion-db's ratio to the floor in
 * each run (the spread across runs) with the load averages each run saw. Without arguments it reads
 * every file in bench/results/runs/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

interface Row {
  case: string;
  shape?: string;
  count?: number;
  contender: string;
  median: number;
  ratio?: number;
}
interface Run {
  date: string;
  /** Absent in runs written before the flag: those were full. */
  full?: boolean;
  cases?: string[];
  machine?: string;
  loadAtStart?: number[];
  loadAtEnd?: number[];
  seconds: number;
  rounds: number;
  rows: (Row & { rssMb?: number })[];
}

const RUNS = resolve(__dirname, 'results', 'runs');
const files = process.argv.length > 2 ? process.argv.slice(2) : readdirSync(RUNS).map((f) => join(RUNS, f));
const runs: Run[] = files
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(f, 'utf8')) as Run)
  .sort((a, b) => a.date.localeCompare(b.date));
if (runs.length === 0) throw new Error(`no runs in ${RUNS}`);
/** The newest full run (every case) gives the main table; every run gives the spread. */
const last = [...runs].reverse().find((r) => r.full !== false) ?? runs[runs.length - 1];

const PEERS = ['dbmate', 'postgres-migrations', 'node-pg-migrate'];
const ms = (x: number) => `${Math.round(x).toLocaleString('en')} ms`;
const cell = (r: Row | undefined) => (r ? `${ms(r.median)} (${r.ratio!.toFixed(2)}x)` : '');
const load = (l?: number[]) => (l ? l.map((x) => x.toFixed(1)).join(' / ') : '?');

/** The apply cases of a run, in the order they ran. */
const applyCases = (run: Run) => [...new Set(run.rows.filter((r) => r.shape).map((r) => r.case))];
const rowOf = (run: Run, c: string, who: string) => run.rows.find((r) => r.case === c && r.contender.startsWith(who));

const peerNames = PEERS.map((p) => last.rows.find((r) => r.contender.startsWith(p))?.contender ?? p);
console.log(
  `One full run (${last.date.slice(0, 16).replace('T', ' ')} UTC, ${last.seconds.toFixed(0)} s, load average ${load(last.loadAtStart)} at its start and ${load(last.loadAtEnd)} at its end; ${last.machine ?? ''}):\n`,
);
console.log(`| shape | migrations | floor | orion-db | ${peerNames.join(' | ')} |`);
console.log(`|---|---:|---:|---:|${PEERS.map(() => '---:').join('|')}|`);
for (const c of applyCases(last)) {
  const floor = rowOf(last, c, 'psql')!;
  console.log(
    `| ${floor.shape} | ${floor.count!.toLocaleString('en')} | ${ms(floor.median)} | ${cell(rowOf(last, c, 'orion-db'))} | ${PEERS.map((p) => cell(rowOf(last, c, p))).join(' | ')} |`,
  );
}

console.log(
  `\norion-db's ratio to the floor in each of ${runs.length} runs (the full run and \`BENCH_CASES=apply\` runs), with the load average at start → end:\n`,
);
const cases = applyCases(last);
console.log(
  `| shape | migrations | ${runs.map((r) => `${r.date.slice(11, 16)}${r.full === false ? ` (${r.cases?.join(', ')})` : ''}`).join(' | ')} | spread |`,
);
console.log(`|---|---:|${runs.map(() => '---:').join('|')}|---:|`);
for (const c of cases) {
  const ratios = runs.map((run) => rowOf(run, c, 'orion-db')?.ratio);
  const known = ratios.filter((x): x is number => x !== undefined);
  const floor = rowOf(last, c, 'psql')!;
  console.log(
    `| ${floor.shape} | ${floor.count!.toLocaleString('en')} | ${ratios.map((x) => (x === undefined ? '' : `${x.toFixed(2)}x`)).join(' | ')} | ${known.length ? `${Math.min(...known).toFixed(2)}–${Math.max(...known).toFixed(2)}x` : ''} |`,
  );
}
console.log(`| load | | ${runs.map((r) => `${load(r.loadAtStart)} → ${load(r.loadAtEnd)}`).join(' | ')} | |`);

const others = last.rows.filter((r) => !r.shape);
if (others.length) {
  console.log('\nThe other cases of the newest run:\n');
  console.log('| case | contender | median | ratio | peak RSS |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of others)
    console.log(
      `| ${r.case} | ${r.contender} | ${ms(r.median)} | ${r.ratio !== undefined ? `${r.ratio.toFixed(2)}x` : ''} | ${r.rssMb !== undefined ? `${r.rssMb.toFixed(0)} MB` : ''} |`,
    );
}
