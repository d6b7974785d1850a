/**
 * Seed 002's pre-check: would the source's rows violate any primary or unique key of the target?
 * Checked on the values *as the target will hold them* (a uuid in two spellings, or one instant
 * written as text and as unix seconds, is one value there): the key columns of every source row are
 * converted and streamed into a temporary table with the target's column types, and PostgreSQL
 * groups them. The temporary table lives in this session only; the target's tables are not touched,
 * and the process's memory stays flat however large the source.
 */
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../lambda/engine/db';
import { ConversionProblem, copyField, type SourceValue } from './convert';
import { ConversionError, type UniqueConflict } from './errors';
import { canFindDuplicates } from './pg-source';
import { describeKey, isPassThrough, type TablePlan } from './plan';
import { copyIn, explainCopyError } from './rows';
import type { Source, UnchangedKind } from './source';
import type { TargetColumn, UniqueKey } from './target';
import { createTempTable } from './temp-table';

/** Conflicting values reported per key (the count of all of them is exact). */
const SHOWN = 5;

export async function findUniqueConflicts(
  source: Source,
  client: ClientBase,
  plans: readonly TablePlan[],
  batchSize: number,
  onTable?: (table: string) => void,
  /** Counts the keys the source was found to hold unique itself. */
  heldKeys: { n: number } = { n: 0 },
): Promise<UniqueConflict[]> {
  const conflicts: UniqueConflict[] = [];
  for (const plan of plans) {
    // A key with a column the source does not fill is filled by its default (a sequence, a uuid).
    let keys = plan.target.uniqueKeys.filter((k) => k.uses.every((c) => plan.columns.some((p) => p.name === c)));
    if (!keys.length) continue;
    onTable?.(plan.target.name);
    // Values the target takes unchanged (a PostgreSQL source, same types) are grouped where they are.
    if (canFindDuplicates(source)) {
      const direct = keys.filter(
        (k) =>
          k.plain &&
          k.columns.every((c) =>
            isPassThrough(
              plan,
              plan.columns.findIndex((p) => p.name === c),
            ),
          ),
      );
      for (const key of direct) {
        const sourceColumns = key.columns.map((c) => plan.sourceColumns[plan.columns.findIndex((p) => p.name === c)]);
        for (const d of await source.duplicateKeys(plan.source.name, sourceColumns, key.nullsNotDistinct, SHOWN)) {
          conflicts.push({
            table: plan.target.name,
            constraint: key.name,
            columns: key.columns,
            values: d.values,
            rows: d.rows,
          });
        }
      }
      keys = keys.filter((k) => !direct.includes(k));
      if (!keys.length) continue;
    }
    const held = await heldBySource(source, plan, keys);
    heldKeys.n += held.size;
    keys = keys.filter((k) => !held.has(k));
    if (!keys.length) continue;
    const positions = [...new Set(keys.flatMap((k) => k.uses))].map((c) => plan.columns.findIndex((p) => p.name === c));
    const temp = 'orion_copy_keys';
    await client.query('BEGIN');
    try {
      await createTempTable(
        client,
        // The target's column names, so that an index's expressions and predicate read it as they read the table.
        `CREATE TEMPORARY TABLE ${temp} (${positions.map((p) => `${q(plan.columns[p].name)} ${plan.columns[p].type}`).join(', ')}) ON COMMIT DROP`,
        'the unique pre-check',
      );
      try {
        await copyIn(client, `COPY ${temp} FROM STDIN`, keyLines(source, plan, positions, batchSize));
      } catch (err: any) {
        // A key value the column refuses (too long for its varchar(n)): named by its row, read again.
        const line = typeof err?.where === 'string' ? /COPY [^,]+, line (\d+)/.exec(err.where) : null;
        if (!line) throw err;
        const found = await nthRow(source, plan, positions, Number(line[1]), batchSize);
        throw explainCopyError(err, plan, () => found);
      }
      for (const key of keys) {
        const cols = key.expressions;
        const where = [
          ...(key.nullsNotDistinct ? [] : cols.map((c) => `${c} IS NOT NULL`)),
          ...(key.predicate ? [`(${key.predicate})`] : []),
        ];
        const { rows } = await client.query({
          text: `SELECT ${cols.map((c) => `(${c})::text`).join(', ')}, count(*)::bigint FROM ${temp}
                  ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                  GROUP BY ${cols.join(', ')} HAVING count(*) > 1 ORDER BY count(*) DESC, 1 LIMIT ${SHOWN}`,
          rowMode: 'array',
        });
        for (const r of rows) {
          conflicts.push({
            table: plan.target.name,
            constraint: key.name,
            columns: key.columns,
            values: r.slice(0, cols.length),
            rows: Number(r[cols.length]),
          });
        }
      }
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return conflicts;
}

/** The key columns read by keyLines, and the primary key columns read beside them to name a row. */
function readColumns(plan: TablePlan, positions: readonly number[]) {
  const named = (plan.keyIndexes ?? []).filter((i) => i >= 0 && !positions.includes(i));
  const columns = [...positions, ...named].map((p) => plan.sourceColumns[p]);
  /** A row as read, widened to the plan's columns (those not read are NULL). */
  const widen = (row: readonly SourceValue[]) =>
    plan.columns.map((_, c) =>
      positions.includes(c)
        ? row[positions.indexOf(c)]
        : named.includes(c)
          ? row[positions.length + named.indexOf(c)]
          : null,
    );
  return { columns, widen };
}

/** The `n`th row (from 1) keyLines read, widened to the plan's columns. */
async function nthRow(
  source: Source,
  plan: TablePlan,
  positions: readonly number[],
  n: number,
  batchSize: number,
): Promise<{ row: SourceValue[]; number: number } | undefined> {
  const { columns, widen } = readColumns(plan, positions);
  let seen = 0;
  for await (const batch of source.batches(plan.source, columns, batchSize, null)) {
    if (seen + batch.rows.length >= n) return { row: widen(batch.rows[n - seen - 1]), number: n };
    seen += batch.rows.length;
  }
  return undefined;
}

async function* keyLines(
  source: Source,
  plan: TablePlan,
  positions: readonly number[],
  batchSize: number,
): AsyncIterable<string> {
  // The primary key is read too (when not a key column here), so that a value that does not convert is named by it.
  const { columns, widen } = readColumns(plan, positions);
  let rowNumber = 0;
  for await (const batch of source.batches(plan.source, columns, batchSize, null)) {
    let text = '';
    for (const row of batch.rows) {
      rowNumber++;
      let line = '';
      for (let i = 0; i < positions.length; i++) {
        let v: string | null;
        try {
          v = plan.converters[positions[i]](row[i]);
        } catch (err) {
          if (!(err instanceof ConversionProblem)) throw err;
          throw new ConversionError(
            plan.target.name,
            describeKey(plan, widen(row), rowNumber),
            plan.columns[positions[i]].name,
            `${err.message} (target type ${plan.columns[positions[i]].type})`,
          );
        }
        line += i === 0 ? copyField(v) : `\t${copyField(v)}`;
      }
      text += `${line}\n`;
    }
    yield text;
  }
}

/** Target types whose text, in the form the converter leaves as it is, is one value per spelling. */
function oneSpellingPerValue(column: TargetColumn): UnchangedKind | null {
  if (column.isArray) return null;
  if (column.baseType === 'uuid') return 'uuid';
  if (column.baseType === 'text' && column.deterministic) return 'text';
  // varchar(n) strips trailing spaces beyond n ('ab' and 'ab ' are one value in varchar(2)), so its
  // values are unchanged only when none is longer than n; a domain's length is not known here.
  if (column.baseType === 'varchar' && column.deterministic) {
    if (column.type === 'character varying') return 'text';
    const n = /^character varying\((\d+)\)$/.exec(column.type);
    return n ? { maxLength: Number(n[1]) } : null;
  }
  if (column.baseType === 'int2' || column.baseType === 'int4' || column.baseType === 'int8') return column.baseType;
  return null;
}

/**
 * Keys the source already holds unique (a SQLite unique index on some of the key's columns) whose
 * values all reach the target unchanged: distinct in the source, so distinct in the target, and the
 * target need not group them. "Unchanged" is asked of the source in one pass (source.ts says what
 * each kind admits): values of the one storage class the target type spells one way, as the
 * converter leaves them, since SQLite calls 1 and '1' distinct where the target would not, and two
 * spellings of one uuid or instant are distinct there too. Any other value, or one that does not
 * convert, leaves the key to the grouping (which also names a value that does not convert).
 */
async function heldBySource(source: Source, plan: TablePlan, keys: readonly UniqueKey[]): Promise<Set<UniqueKey>> {
  if (!source.unchangedColumns) return new Set();
  const index = (c: string) => plan.columns.findIndex((p) => p.name === c);
  const unique = plan.source.uniqueColumns ?? [];
  const candidates = keys.filter(
    (k) =>
      k.plain &&
      !k.nullsNotDistinct &&
      k.columns.every((c) => oneSpellingPerValue(plan.columns[index(c)])) &&
      unique.some((u) => u.every((s) => k.columns.some((c) => plan.sourceColumns[index(c)] === s))),
  );
  if (!candidates.length) return new Set();
  const positions = [...new Set(candidates.flatMap((k) => k.columns))].map(index);
  const unchanged = await source.unchangedColumns(
    plan.source.name,
    positions.map((p) => ({ name: plan.sourceColumns[p], kind: oneSpellingPerValue(plan.columns[p])! })),
  );
  return new Set(candidates.filter((k) => k.columns.every((c) => unchanged[positions.indexOf(index(c))])));
}
