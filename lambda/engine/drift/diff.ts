/**
 * The differences between two catalogs (catalog.ts): what the migrations produce (expected) and what
 * the database is (actual). An object missing from one side is one drift; its columns, grants and
 * indexes are not reported again. Where bringing the database back is safe (nothing it holds is
 * lost: no table or column is dropped), the drift carries the SQL that would do it.
 */
import type { Catalog, CatalogEntry, ColumnDetail, DriftKind, EnumDetail, GrantDetail } from './catalog';
import { type DriftException, matchesException } from './exceptions';

export interface Drift {
  readonly kind: DriftKind;
  /** The object, as catalog.ts names it (`public.users.email`, `table public.users to orion_app_rw`). */
  readonly object: string;
  /** The migrations' definition; null when the migrations do not produce the object. */
  readonly expected: string | null;
  /** The database's; null when the object is missing from it. */
  readonly actual: string | null;
  /** SQL that would bring the database back to the migrations' state, where that is safe. */
  readonly fix?: string;
}

/** The order drift is reported in. */
export const KIND_ORDER: readonly DriftKind[] = [
  'extension',
  'schema',
  'enum',
  'domain',
  'sequence',
  'table',
  'column',
  'constraint',
  'index',
  'view',
  'function',
  'trigger',
  'rls',
  'policy',
  'owner',
  'grant',
  'default_privilege',
];

export function diffCatalogs(expected: Catalog, actual: Catalog, exceptions: readonly DriftException[] = []): Drift[] {
  const gone = new Set<string>();
  for (const key of expected.entries.keys()) if (!actual.entries.has(key)) gone.add(key);
  for (const key of actual.entries.keys()) if (!expected.entries.has(key)) gone.add(key);
  const underGone = (e: CatalogEntry) => {
    for (let p = e.parent; p; ) {
      if (gone.has(p)) return true;
      p = (expected.entries.get(p) ?? actual.entries.get(p))?.parent;
    }
    return false;
  };
  const drift: Drift[] = [];
  for (const [key, want] of expected.entries) {
    const have = actual.entries.get(key);
    if (!have) {
      if (!underGone(want)) drift.push(withFix(want, undefined));
    } else if (want.definition !== have.definition) {
      drift.push(withFix(want, have));
    }
  }
  for (const [key, have] of actual.entries) {
    if (!expected.entries.has(key) && !underGone(have)) drift.push(withFix(undefined, have));
  }
  return drift
    .filter((d) => !exceptions.some((x) => matchesException(x, d)))
    .sort((a, b) => KIND_ORDER.indexOf(a.kind) - KIND_ORDER.indexOf(b.kind) || (a.object < b.object ? -1 : 1));
}

function withFix(want: CatalogEntry | undefined, have: CatalogEntry | undefined): Drift {
  const e = (want ?? have)!;
  const statements = fixStatements(want, have).filter(Boolean);
  return {
    kind: e.kind,
    object: e.object,
    expected: want?.definition ?? null,
    actual: have?.definition ?? null,
    ...(statements.length ? { fix: statements.map((s) => `${s};`).join('\n') } : {}),
  };
}

function fixStatements(want: CatalogEntry | undefined, have: CatalogEntry | undefined): string[] {
  const detail = (want ?? have)!.detail;
  if (detail?.type === 'grant')
    return grantFix(want?.detail as GrantDetail | undefined, have?.detail as GrantDetail | undefined);
  if (!have) return want!.create ? [want!.create] : [];
  if (!want) return have.drop ? [have.drop] : [];
  switch (want.kind) {
    case 'column':
      return columnFix(want.detail as ColumnDetail, have.detail as ColumnDetail);
    case 'enum':
      return enumFix(want.detail as EnumDetail, have.detail as EnumDetail);
    case 'constraint':
      // Only its validation differs: validate it (the database keeps it NOT VALID).
      if (have.definition === `${want.definition} NOT VALID` && want.alter) return [want.alter];
      break;
    case 'owner':
    case 'sequence':
    case 'extension':
    case 'view':
    case 'function':
      if (want.alter) return [want.alter];
      break;
  }
  // Dropped and made again: only what holds no data and nothing else depends on.
  return REMADE.includes(want.kind) && want.create && have.drop ? [have.drop, want.create] : [];
}

const REMADE: readonly DriftKind[] = ['constraint', 'index', 'trigger', 'rls', 'policy', 'view'];

/** Default and NOT NULL can be set back; a changed type, identity, generation or collation cannot, safely. */
function columnFix(want: ColumnDetail, have: ColumnDetail): string[] {
  if (want.dataType !== have.dataType || want.rest !== have.rest) return [];
  const alter = `ALTER TABLE ${want.table} ALTER COLUMN ${want.column}`;
  const out: string[] = [];
  if (want.default !== have.default)
    out.push(want.default === null ? `${alter} DROP DEFAULT` : `${alter} SET DEFAULT ${want.default}`);
  if (want.notNull !== have.notNull) out.push(`${alter} ${want.notNull ? 'SET' : 'DROP'} NOT NULL`);
  return out;
}

/** Labels the database lacks are added in place; a removed or reordered label cannot be put back safely. */
function enumFix(want: EnumDetail, have: EnumDetail): string[] {
  const present = new Set(have.labels);
  const kept = want.labels.filter((l) => present.has(l));
  if (kept.length !== have.labels.length || kept.some((l, i) => l !== have.labels[i])) return [];
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  return want.labels.flatMap((label, i) => {
    if (present.has(label)) return [];
    const position =
      i > 0 ? ` AFTER ${lit(want.labels[i - 1])}` : want.labels.length > 1 ? ` BEFORE ${lit(want.labels[1])}` : '';
    return [`ALTER TYPE ${want.name} ADD VALUE ${lit(label)}${position}`];
  });
}

const OPTION = ' WITH GRANT OPTION';

/** GRANT what is missing and REVOKE what is extra, grant options included. */
function grantFix(want: GrantDetail | undefined, have: GrantDetail | undefined): string[] {
  const d = (want ?? have)!;
  const parse = (privileges: readonly string[] = []) =>
    new Map(privileges.map((p) => [p.replace(OPTION, ''), p.endsWith(OPTION)] as const));
  const wanted = parse(want?.privileges);
  const held = parse(have?.privileges);
  const grant: string[] = [];
  const grantWithOption: string[] = [];
  const revoke: string[] = [];
  const revokeOption: string[] = [];
  for (const [p, option] of wanted) {
    if (!held.has(p)) (option ? grantWithOption : grant).push(p);
    else if (option && !held.get(p)) grantWithOption.push(p);
  }
  for (const [p, option] of held) {
    if (!wanted.has(p)) revoke.push(p);
    else if (option && !wanted.get(p)) revokeOption.push(p);
  }
  const privs = (list: string[]) => list.map((p) => (d.column ? `${p} (${d.column})` : p)).join(', ');
  const stmt = (verb: string, list: string[]) => {
    if (list.length === 0) return '';
    const to = verb.startsWith('GRANT') ? 'TO' : 'FROM';
    const body = `${verb} ${privs(list)} ON ${d.target} ${to} ${d.grantee}`;
    if (!d.defaults) return body;
    const scope = `FOR ROLE ${d.defaults.forRole}${d.defaults.inSchema ? ` IN SCHEMA ${d.defaults.inSchema}` : ''}`;
    return `ALTER DEFAULT PRIVILEGES ${scope} ${body}`;
  };
  return [
    stmt('REVOKE', revoke),
    stmt('REVOKE GRANT OPTION FOR', revokeOption),
    stmt('GRANT', grant),
    grantWithOption.length ? `${stmt('GRANT', grantWithOption)}${OPTION}` : '',
  ];
}
