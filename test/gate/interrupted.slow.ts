// Run only by test/gate/ci-scripts.test.ts, which interrupts the run (SIGINT, as Ctrl-C or a CI's
// timeout does) while this test waits: the suite's embedded PostgreSQL must not outlive the run.
import { writeFileSync } from 'node:fs';
import { expect, inject, test } from 'vitest';

test('waits to be interrupted', async () => {
  expect(inject('adminUrl')).toMatch(/^postgres:\/\//);
  writeFileSync(process.env.ORION_INTERRUPT_MARKER!, 'started');
  await new Promise((resolve) => setTimeout(resolve, 120_000));
}, 180_000);
