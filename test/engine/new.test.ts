import { describe, expect, test } from 'vitest';
import { nextVersion } from '../../cli/commands/new';

describe('nextVersion (orion-db new)', () => {
  const now = new Date('2026-11-23T20:15:07Z');
  test.each<[string, string[], string]>([
    ['an empty folder starts at 000001', [], '000001'],
    ['6-digit sequences continue', ['000007_a.up.sql', '000007_a.down.sql', 'README.md'], '000008'],
    ['wider sequences keep their width', ['00000041_a.up.sql'], '00000042'],
    ['golang-migrate style folders continue', ['0002_1.7.0_schema.up.sql'], '000003'],
    ['UTC timestamp folders get the current timestamp', ['20260101120000_a.up.sql'], '20261123201507'],
    [
      'a version never goes backwards, even past a future timestamp',
      ['20991231235959_future.up.sql'],
      '20991231235960',
    ],
  ])('%s', (_name, files, expected) => {
    expect(nextVersion(files, now)).toBe(expected);
  });
});
