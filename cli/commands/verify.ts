/**
 * `orion-db verify --from URL --to URL`: row counts and sampled row hashes compared per table.
 */
import { connect } from '../../lambda/engine/db';
import { emptyReport, type Report } from '../../lambda/engine/report';
import { compareDatabases } from '../../lambda/engine/verify';
import type { CommandContext } from './migrations';

export async function verify(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const from = await connect(options.from!, { applicationName: 'orion-db verify' });
  try {
    const to = await connect(options.target!, { applicationName: 'orion-db verify' });
    try {
      const result = await compareDatabases(from, to, { tables: options.tables, sample: options.sample });
      const report = emptyReport('verify');
      report.tables = result.tables;
      report.sample = options.sample ?? 0.05;
      report.ok = result.differences.length === 0;
      report.errors = result.differences.map((d) => ({ message: d.problem }));
      return report;
    } finally {
      await to.end();
    }
  } finally {
    await from.end();
  }
}
