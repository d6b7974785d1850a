/**
 * `orion-db verify --from SRC --to URL`: counts, a sample of rows compared as the target's types see
 * them, and the unique-key check, per table (copy/verify.ts). SRC is a SQLite file or PostgreSQL.
 */
import { openSource } from '../../copy/open-source';
import { parseSource, postgresUrl } from '../../copy/source';
import { verifyCopy } from '../../copy/verify';
import { connect } from '../../lambda/engine/db';
import { emptyReport, type Report } from '../../lambda/engine/report';
import type { CommandContext } from '../context';

export async function verify(ctx: CommandContext): Promise<Report> {
  const { options } = ctx;
  const spec = parseSource(options.from!, '--from', options.cwd);
  const targetUrl = postgresUrl(options.target!, '--to');
  const sample = options.sample ?? 0.05;
  const source = await openSource(spec);
  try {
    const to = await connect(targetUrl, { applicationName: 'orion-db verify' });
    try {
      const result = await verifyCopy(source, to, { tables: options.tables, sample });
      const report = emptyReport('verify');
      report.tables = result.tables;
      report.sample = sample;
      report.sampled_rows = result.sampledRows;
      report.unique_keys_checked = result.uniqueKeysChecked;
      report.ok = result.problems.length === 0;
      report.errors = result.problems.map((message) => ({ message }));
      return report;
    } finally {
      await to.end();
    }
  } finally {
    await source.close();
  }
}
