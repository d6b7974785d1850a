// A deliberately failing test, run only by scripts/check-test-gate.sh: it proves that a failing test
// makes the suite exit non-zero, with the suite's own global setup (the embedded PostgreSQL) loaded.
import { expect, inject, test } from 'vitest';

test('the gate can fail', () => {
  expect(inject('adminUrl')).toMatch(/^postgres:\/\//);
  expect('this test').toBe('deliberately failing');
});
