// Fails (exit 1) when an `orion-db status --json` report shows pending, incomplete or failed migrations.
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2] ?? 0, 'utf8'));
const problems = [
  ...report.errors.map((e) => `error: ${e.file ? `${e.file}: ` : ''}${e.message}`),
  ...report.pending.map((p) => `pending: ${p.version} ${p.name}`),
  ...(report.incomplete ?? []).map((p) => `incomplete: ${p.version} ${p.name}`),
];
if (!report.ok || problems.length) {
  console.error(`the database is not at the deployed version:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.error(`the database is at version ${report.to_version}, nothing pending`);
