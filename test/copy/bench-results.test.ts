/** bench/results/copy.json: a run of some cases (BENCH_COPY_CASES=big) keeps the other cases' rows. */
import { expect, test } from 'vitest';
import { mergeResults } from '../../bench/copy-results';

test('a partial benchmark run replaces its own rows and keeps, dated, the rows of cases it did not run', () => {
  const previous = {
    date: '2026-12-04T17:50:28.832Z',
    settings: 'old',
    rounds: 3,
    rows: [
      { case: 'SQLite', contender: 'orion-db copy', median: 10 },
      { case: 'SQLite', contender: 'pgloader', median: 15 },
      { case: 'big', contender: 'orion-db copy', median: 99 },
    ],
  };
  const run = { date: '2026-12-04T19:00:00.000Z', settings: 'new', rounds: 1 };
  const merged = mergeResults(previous, [{ case: 'big', contender: 'orion-db copy', median: 50 }], run);
  expect(merged).toEqual({
    date: run.date,
    settings: 'new',
    rounds: 1,
    rows: [
      { case: 'SQLite', contender: 'orion-db copy', median: 10, date: previous.date, rounds: 3 },
      { case: 'SQLite', contender: 'pgloader', median: 15, date: previous.date, rounds: 3 },
      { case: 'big', contender: 'orion-db copy', median: 50, date: run.date, rounds: 1 },
    ],
  });
  expect(mergeResults(null, [{ case: 'pg', contender: 'pg_dump', median: 7 }], run).rows).toEqual([
    { case: 'pg', contender: 'pg_dump', median: 7, date: run.date, rounds: 1 },
  ]);
});
