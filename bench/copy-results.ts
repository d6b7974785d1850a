/**
 * bench/results/copy.json across partial runs: a run of some cases (BENCH_COPY_CASES=big) replaces
 * only those cases' rows and keeps the others, each row carrying the date and rounds it was measured
 * with (the top-level date is the latest run's).
 */
export interface ResultRow {
  readonly case: string;
  readonly contender: string;
  readonly date?: string;
  readonly rounds?: number;
  readonly [field: string]: unknown;
}

export interface ResultsFile {
  readonly date: string;
  readonly settings: string;
  readonly rounds: number;
  readonly rows: readonly ResultRow[];
}

/** `previous` (the parsed file, or null) with `rows` of this run put in place of the same case and contender. */
export function mergeResults(
  previous: ResultsFile | null,
  rows: readonly ResultRow[],
  run: { date: string; settings: string; rounds: number },
): ResultsFile {
  const fresh = rows.map((r) => ({ ...r, date: run.date, rounds: run.rounds }));
  const same = (a: ResultRow, b: ResultRow) => a.case === b.case && a.contender === b.contender;
  // Rows written before rows were dated take the file's date and rounds.
  const kept = (previous?.rows ?? []).map((r) => ({ date: previous!.date, rounds: previous!.rounds, ...r }));
  const merged = kept.map((old) => fresh.find((r) => same(r, old)) ?? old);
  for (const r of fresh) if (!kept.some((old) => same(r, old))) merged.push(r);
  return { date: run.date, settings: run.settings, rounds: run.rounds, rows: merged };
}
