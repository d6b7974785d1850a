/**
 * `orion-db copy`'s progress on stderr (issue #17): per table, rows/s and the time left on a terminal,
 * one line per table otherwise. Driven with the engine's events and a clock under the test's control.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { progressRenderer } from '../../cli/commands/copy';

afterEach(() => vi.restoreAllMocks());

/** Runs the renderer over events at the given clock times; returns printed lines and raw terminal output. */
function render(live: boolean, steps: [number, Parameters<ReturnType<typeof progressRenderer>>[0]][]) {
  const printed: string[] = [];
  let raw = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    raw += String(chunk);
    return true;
  });
  const now = vi.spyOn(Date, 'now');
  const onEvent = progressRenderer((line) => printed.push(line), live);
  for (const [ms, event] of steps) {
    now.mockReturnValue(ms);
    onEvent(event);
  }
  return { printed, raw };
}

const TABLE = { type: 'table', table: 'activities', sourceRows: 10_000, done: 0, mode: 'batches' } as const;

describe('copy progress', () => {
  test('on a terminal: a live line per table with done/total, rows/s and the time left', () => {
    const { printed, raw } = render(true, [
      [1_000, TABLE],
      [2_000, { type: 'rows', table: 'activities', done: 2_000, sourceRows: 10_000 }],
      [3_000, { type: 'rows', table: 'activities', done: 4_000, sourceRows: 10_000 }],
      [6_000, { type: 'table-done', table: 'activities', copied: 10_000, ms: 5_000 }],
    ]);
    // 4,000 rows in 2 s: 2,000 rows/s, 6,000 left: 3 s.
    expect(raw).toContain('activities 4,000/10,000 (40 %)  2,000 rows/s  ETA 3 s');
    expect(printed).toEqual(['activities: 10,000 rows', '  activities: copied 10,000 rows in 5.0 s (2,000 rows/s)']);
  });

  test('a resumed table counts its rate from where this run started, and says where it resumed', () => {
    const { printed, raw } = render(true, [
      [0, { ...TABLE, done: 6_000 }],
      [1_000, { type: 'rows', table: 'activities', done: 8_000, sourceRows: 10_000 }],
    ]);
    expect(printed).toEqual(['activities: 10,000 rows, resuming after 6,000']);
    expect(raw).toContain('8,000/10,000 (80 %)  2,000 rows/s  ETA 1 s');
  });

  test('not a terminal: one line per table when it starts and when it is done, no redrawn lines', () => {
    const { printed, raw } = render(false, [
      [0, { type: 'precheck', table: 'activities' }],
      [0, { ...TABLE, mode: 'whole' }],
      [1_000, { type: 'rows', table: 'activities', done: 5_000, sourceRows: 10_000 }],
      [4_000, { type: 'table-done', table: 'activities', copied: 10_000, ms: 4_000 }],
    ]);
    expect(raw).toBe('');
    expect(printed).toEqual([
      'activities: 10,000 rows (in one transaction)',
      '  activities: copied 10,000 rows in 4.0 s (2,500 rows/s)',
    ]);
  });
});
