/**
 * `orion-db verify --from SRC --to URL`: does the target hold what the source holds? Per table: row
 * counts; a sample of rows compared value by value *as the target's types see them*; and the
 * unique-key pre-check on the source (seed 002's three checks).
 *
 * The sample is chosen by a hash of each row's primary key (converted to the target's type, so both
 * sides pick the same rows), converted like `copy` converts, and streamed into a temporary table
 * with the target's column types. PostgreSQL then normalises both sides alike (an instant written as
 * text in SQLite equals the same timestamptz; JSON is compared as jsonb prints it) and names each
 * sampled key that is missing or differs, and in which columns. Tables without a primary key are
 * compared as multisets of rows. Only the session's temporary table is written.
 */
import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../lambda/engine/db';
import { describeConflict } from './errors';
import { planTables, type TablePlan } from './plan';
import { findUniqueConflicts } from './precheck';
import { copyIn, encodeRows } from './rows';
import type { Source } from './source';
import { readTargetSchema } from './target';
import { createTempTable } from './temp-table';

export interface TableComparison {
  readonly from: { rows: number; sample_hash: string | null } | null;
  readonly to: { rows: number; sample_hash: string | null } | null;
  /** Rows of the sample (source side). */
  readonly sampled: number;
}

export interface VerifyResult {
  readonly tables: Record<string, TableComparison>;
  readonly problems: string[];
  readonly sampledRows: number;
  readonly uniqueKeysChecked: number;
}

/** Differing rows named per table (the count of all of them is exact). */
const SHOWN = 5;
const BATCH = 5000;

export async function verifyCopy(
  source: Source,
  target: ClientBase,
  options: { tables?: readonly string[]; sample: number },
): Promise<VerifyResult> {
  await target.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'`);
  const schema = await readTargetSchema(target);
  const selection = planTables(await source.tables(), schema, options.tables);
  const tables: Record<string, TableComparison> = {};
  const problems: string[] = [];
  for (const t of selection.onlyInSource) {
    tables[t] = { from: { rows: await source.count(t), sample_hash: null }, to: null, sampled: 0 };
    problems.push(`table ${t} is missing from the --to database`);
  }
  for (const t of selection.onlyInTarget) {
    const { rows } = await target.query(`SELECT count(*)::bigint AS n FROM public.${q(t)}`);
    tables[t] = { from: null, to: { rows: Number(rows[0].n), sample_hash: null }, sampled: 0 };
    problems.push(`table ${t} is missing from the --from database`);
  }
  let sampledRows = 0;
  for (const plan of selection.plans) {
    const name = plan.target.name;
    const fromRows = await source.count(plan.source.name);
    const { rows } = await target.query(`SELECT count(*)::bigint AS n FROM public.${q(name)}`);
    const toRows = Number(rows[0].n);
    const sample = await compareSample(source, target, plan, options.sample);
    sampledRows += sample.sampled;
    tables[name] = {
      from: { rows: fromRows, sample_hash: sample.fromHash },
      to: { rows: toRows, sample_hash: sample.toHash },
      sampled: sample.sampled,
    };
    if (fromRows !== toRows) problems.push(`table ${name}: ${fromRows} rows in --from, ${toRows} in --to`);
    if (sample.differences.length) {
      const prefix =
        fromRows === toRows ? `same row count (${fromRows}) but the sampled rows differ` : 'sampled rows differ';
      problems.push(`table ${name}: ${prefix}: ${sample.differences.join('; ')}`);
    }
  }
  const conflicts = await findUniqueConflicts(source, target, selection.plans, BATCH);
  for (const c of conflicts) problems.push(`${describeConflict(c)} in --from`);
  return {
    tables: Object.fromEntries(Object.entries(tables).sort(([a], [b]) => a.localeCompare(b))),
    problems,
    sampledRows,
    uniqueKeysChecked: selection.plans.reduce((n, p) => n + p.target.uniqueKeys.length, 0),
  };
}

interface SampleOutcome {
  readonly sampled: number;
  readonly fromHash: string | null;
  readonly toHash: string | null;
  readonly differences: string[];
}

async function compareSample(
  source: Source,
  target: ClientBase,
  plan: TablePlan,
  fraction: number,
): Promise<SampleOutcome> {
  const keyed = plan.keyIndexes?.every((i) => i >= 0) ? plan.keyIndexes : null;
  const temp = 'orion_verify_sample';
  const cols = plan.columns.map((_, i) => `c${i}`);
  const table = `public.${q(plan.target.name)}`;
  const threshold = Math.floor(fraction * 0x100000000);
  let sampled = 0;
  async function* lines() {
    let rowNumber = 0;
    for await (const batch of source.batches(plan.source, plan.sourceColumns, BATCH, null)) {
      const encoded = encodeRows({ ...plan, mode: 'whole' }, batch.rows, rowNumber + 1);
      rowNumber += batch.rows.length;
      if (!keyed) {
        sampled += encoded.rows;
        yield encoded.text;
        continue;
      }
      // Keep the rows whose converted key hashes below the threshold: the same rows on every run.
      let text = '';
      const rows = encoded.text.split('\n');
      for (let r = 0; r < batch.rows.length; r++) {
        const fields = rows[r].split('\t');
        const key = keyed.map((i) => fields[i]).join('\t');
        if (createHash('md5').update(key).digest().readUInt32BE(0) < threshold) {
          text += `${rows[r]}\n`;
          sampled++;
        }
      }
      yield text;
    }
  }
  await target.query('BEGIN');
  try {
    await createTempTable(
      target,
      `CREATE TEMPORARY TABLE ${temp} (${plan.columns.map((c, i) => `${cols[i]} ${c.type}`).join(', ')}) ON COMMIT DROP`,
      'comparing the sampled rows',
    );
    await copyIn(target, `COPY ${temp} FROM STDIN`, lines());
    const targetCols = plan.columns.map((c) => q(c.name));
    const rowText = (alias: string, names: string[]) =>
      `md5(ROW(${names.map((n) => `${alias}.${n}`).join(', ')})::text)`;
    if (!keyed) return await compareMultiset(target, plan, temp, cols, targetCols, fraction);
    const on = keyed.map((i) => `t.${targetCols[i]} = s.${cols[i]}`).join(' AND ');
    const differs = cols.map((c, i) => `s.${c}::text IS DISTINCT FROM t.${targetCols[i]}::text`);
    const { rows: hashes } = await target.query(
      `SELECT md5(string_agg(${rowText('s', cols)}, '' ORDER BY ${keyed.map((i) => `s.${cols[i]}`).join(', ')})) AS from_hash,
              md5(string_agg(${rowText('t', targetCols)}, '' ORDER BY ${keyed.map((i) => `s.${cols[i]}`).join(', ')})) AS to_hash
         FROM ${temp} s LEFT JOIN ${table} t ON ${on}`,
    );
    const { rows: bad } = await target.query({
      text: `SELECT ${keyed.map((i) => `s.${cols[i]}::text`).join(', ')}, t.${targetCols[keyed[0]]} IS NULL AS missing,
                    array_remove(ARRAY[${differs.map((d, i) => `CASE WHEN ${d} THEN ${lit(plan.columns[i].name)} END`).join(', ')}], NULL) AS columns,
                    count(*) OVER () AS total
               FROM ${temp} s LEFT JOIN ${table} t ON ${on}
              WHERE t.${targetCols[keyed[0]]} IS NULL OR ${differs.join(' OR ')}
              ORDER BY ${keyed.map((i) => `s.${cols[i]}`).join(', ')} LIMIT ${SHOWN}`,
      rowMode: 'array',
    });
    const differences = bad.map((r) => {
      const key = keyed.map((i, n) => `${plan.columns[i].name}=${r[n]}`).join(', ');
      const missing = r[keyed.length];
      const columns = r[keyed.length + 1] as string[];
      return missing ? `key ${key} is missing from --to` : `key ${key} differs in ${columns.join(', ')}`;
    });
    if (bad.length && Number(bad[0][keyed.length + 2]) > bad.length)
      differences.push(`${Number(bad[0][keyed.length + 2]) - bad.length} more sampled rows differ`);
    return { sampled, fromHash: hashes[0].from_hash, toHash: hashes[0].to_hash, differences };
  } finally {
    await target.query('ROLLBACK');
  }
}

/** A table without a primary key: the sampled rows of both sides as multisets of normalised rows. */
async function compareMultiset(
  target: ClientBase,
  plan: TablePlan,
  temp: string,
  cols: string[],
  targetCols: string[],
  fraction: number,
): Promise<SampleOutcome> {
  const threshold = Math.floor(fraction * 65536);
  const pick = (alias: string, names: string[]) =>
    `SELECT md5(ROW(${names.map((n) => `${alias}.${n}`).join(', ')})::text) AS h FROM ${alias === 's' ? temp : `public.${q(plan.target.name)}`} ${alias}`;
  const sampled = (sql: string) =>
    `SELECT h FROM (${sql}) x WHERE ('x' || substr(h, 1, 4))::bit(16)::int < ${threshold}`;
  const { rows } = await target.query(
    `WITH f AS (${sampled(pick('s', cols))}), t AS (${sampled(pick('t', targetCols))})
     SELECT (SELECT count(*) FROM f)::int AS sampled,
            (SELECT md5(string_agg(h, '' ORDER BY h)) FROM f) AS from_hash,
            (SELECT md5(string_agg(h, '' ORDER BY h)) FROM t) AS to_hash,
            (SELECT count(*) FROM (SELECT h FROM f EXCEPT ALL SELECT h FROM t) d)::int AS only_from,
            (SELECT count(*) FROM (SELECT h FROM t EXCEPT ALL SELECT h FROM f) d)::int AS only_to`,
  );
  const r = rows[0];
  const differences: string[] = [];
  if (r.only_from)
    differences.push(
      `${r.only_from} sampled --from rows are not in --to (the table has no primary key to name them by)`,
    );
  if (r.only_to) differences.push(`${r.only_to} sampled --to rows are not in --from`);
  return { sampled: r.sampled, fromHash: r.from_hash, toHash: r.to_hash, differences };
}

function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
