/**
 * The schema of one database as plain, comparable entries, read from pg_catalog in a dozen queries
 * (one per kind of object, never one per object). Every entry has a text `definition`: two databases
 * agree on an object exactly when the texts are equal. Names are rendered with quote_ident under
 * `search_path = pg_catalog`, so every type and function in a definition is schema-qualified and
 * the text does not depend on the session. Role names are compared by name.
 *
 * Left out: pg_catalog, information_schema, pg_toast and temporary schemas; objects that belong to
 * an extension (pg_depend deptype 'e'); Orion's ledger and the ledgers of other migration tools.
 */
import type { ClientBase } from 'pg';
import { quoteIdent } from '../db';

export type DriftKind =
  | 'schema'
  | 'table'
  | 'column'
  | 'constraint'
  | 'index'
  | 'sequence'
  | 'view'
  | 'function'
  | 'trigger'
  | 'enum'
  | 'domain'
  | 'extension'
  | 'rls'
  | 'policy'
  | 'owner'
  | 'grant'
  | 'default_privilege';

export interface CatalogEntry {
  readonly kind: DriftKind;
  /** How drift names it: `public.users`, `public.users.email`, `table public.users to orion_app_rw`. */
  readonly object: string;
  /** Comparable text: equal text, no drift. */
  readonly definition: string;
  /** Key of the entry this one belongs to: not reported on its own when that one is missing or unexpected. */
  readonly parent?: string;
  /** SQL that creates the object as it is here, drops it, or brings an existing one to this state (when safe). */
  readonly create?: string;
  readonly drop?: string;
  readonly alter?: string;
  /** What fix SQL of grants and columns needs. */
  readonly detail?: GrantDetail | ColumnDetail | EnumDetail;
}

export interface GrantDetail {
  readonly type: 'grant';
  /** `TABLE public.t`, `SCHEMA s`, `FUNCTION f(integer)`, `DATABASE d`, or for default privileges `FOR ROLE r IN SCHEMA s|TABLES`. */
  readonly target: string;
  readonly grantee: string;
  /** `SELECT` or `SELECT WITH GRANT OPTION`, sorted. */
  readonly privileges: readonly string[];
  readonly column?: string;
  readonly defaults?: { readonly forRole: string; readonly inSchema?: string; readonly on: string };
}

export interface ColumnDetail {
  readonly type: 'column';
  readonly table: string;
  readonly column: string;
  readonly dataType: string;
  readonly notNull: boolean;
  readonly default: string | null;
  readonly rest: string;
}

export interface EnumDetail {
  readonly type: 'enum';
  readonly name: string;
  readonly labels: readonly string[];
}

export interface Catalog {
  /** Keyed by `${kind} ${object}`. */
  readonly entries: ReadonlyMap<string, CatalogEntry>;
}

export interface ReadCatalogOptions {
  /** Only these schemas. @default every schema but the system's */
  readonly schemas?: readonly string[];
  /** Role names to report under another name (a scratch database's roles as the live ones). */
  readonly roleNames?: ReadonlyMap<string, string>;
  /** The database name used in fix SQL (a scratch database reports the live one's). @default current_database() */
  readonly databaseName?: string;
  /**
   * Grantees whose ACL entries are not read. A replay's migrations may grant to the live roles by name;
   * in the scratch database their stand-ins carry what the lockdown leaves, so those entries would only
   * be counted twice (or, for the app role, whose direct grants the lockdown revokes, wrongly).
   */
  readonly ignoreGrantees?: ReadonlySet<string>;
}

/** Tables no migration makes: Orion's ledger and other tools' ledgers, in any schema. */
export const IGNORED_TABLES: readonly string[] = [
  'orion_schema_history',
  'schema_migrations',
  'goose_db_version',
  'flyway_schema_history',
  '_prisma_migrations',
  '__diesel_schema_migrations',
  '_sqlx_migrations',
  'pgmigrations',
];

export function entryKey(kind: DriftKind, object: string): string {
  return `${kind} ${object}`;
}

const SCOPE = `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND ($1::text[] IS NULL OR n.nspname = ANY($1))`;
const notExtensionMember = (catalog: string, oid: string) =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;
/** The privileges of an ACL (or the object type's defaults when it is null), per grantee. */
const aclJson = (acl: string, type: string, owner: string) =>
  `(SELECT coalesce(json_agg(json_build_array(CASE WHEN a.grantee = 0 THEN '-' ELSE pg_get_userbyid(a.grantee) END,
                                             a.privilege_type, a.is_grantable)), '[]')
      FROM aclexplode(coalesce(${acl}, acldefault(${type}, ${owner}))) a)`;

const RELATION_WORDS: Record<string, { word: string; kind: DriftKind }> = {
  r: { word: 'TABLE', kind: 'table' },
  p: { word: 'TABLE', kind: 'table' },
  f: { word: 'FOREIGN TABLE', kind: 'table' },
  v: { word: 'VIEW', kind: 'view' },
  m: { word: 'MATERIALIZED VIEW', kind: 'view' },
  S: { word: 'SEQUENCE', kind: 'sequence' },
};

/**
 * Reads the catalog. Runs in one read-only REPEATABLE READ transaction with `search_path = pg_catalog`
 * (set locally: the session's own settings are left as they were).
 */
export async function readCatalog(client: ClientBase, options: ReadCatalogOptions = {}): Promise<Catalog> {
  const entries = new Map<string, CatalogEntry>();
  const role = (name: string) => (name === '-' || name === '0' ? 'PUBLIC' : (options.roleNames?.get(name) ?? name));
  const aclGrantee = (name: string) => (options.ignoreGrantees?.has(name) ? undefined : role(name));
  const roleSql = (name: string) => (name === 'PUBLIC' ? 'PUBLIC' : quoteIdent(name));
  const add = (e: CatalogEntry) => entries.set(entryKey(e.kind, e.object), e);
  const params = [options.schemas ? [...options.schemas] : null];
  const q = async (sql: string) => (await client.query(sql, sql.includes('$1') ? params : [])).rows;

  const grants = (
    target: string,
    objectName: string,
    parent: string,
    acl: [string, string, boolean][],
    skip?: string,
  ) => {
    for (const [grantee, privileges] of groupAcl(acl, aclGrantee)) {
      if (grantee === skip) continue;
      add({
        kind: 'grant',
        object: `${objectName} to ${grantee}`,
        definition: privileges.join(', '),
        parent,
        detail: { type: 'grant', target, grantee: roleSql(grantee), privileges },
      });
    }
  };
  const owner = (what: string, word: string, name: string, parent: string, rawOwner: string) => {
    const o = role(rawOwner);
    add({
      kind: 'owner',
      object: `${what} ${name}`,
      definition: o,
      parent,
      alter: `ALTER ${word} ${name} OWNER TO ${roleSql(o)}`,
    });
  };

  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SET LOCAL search_path = pg_catalog`);
    const database = options.databaseName ?? (await client.query('SELECT current_database() AS d')).rows[0].d;

    // The database's privileges (not its owner's: the database is not something migrations make).
    const [db] = await q(
      `SELECT pg_get_userbyid(datdba) AS owner, ${aclJson('datacl', "'d'", 'datdba')} AS acl FROM pg_database WHERE datname = current_database()`,
    );
    grants(`DATABASE ${quoteIdent(database)}`, 'database', '', db.acl, role(db.owner));

    for (const r of await q(
      `SELECT quote_ident(n.nspname) AS name, pg_get_userbyid(n.nspowner) AS owner, ${aclJson('n.nspacl', "'n'", 'n.nspowner')} AS acl
         FROM pg_namespace n WHERE ${SCOPE} AND ${notExtensionMember('pg_namespace', 'n.oid')}`,
    )) {
      const key = entryKey('schema', r.name);
      add({
        kind: 'schema',
        object: r.name,
        definition: 'schema',
        create: `CREATE SCHEMA ${r.name}`,
        drop: `DROP SCHEMA ${r.name}`,
      });
      owner('schema', 'SCHEMA', r.name, key, r.owner);
      grants(`SCHEMA ${r.name}`, `schema ${r.name}`, key, r.acl);
    }

    const ignored = new Set<string>();
    const relations = await q(
      `SELECT c.oid::text, format('%I.%I', n.nspname, c.relname) AS name, c.relname, c.relkind, c.relpersistence,
              c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) AS owner,
              ${aclJson('c.relacl', `(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END)::"char"`, 'c.relowner')} AS acl,
              CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partkey,
              CASE WHEN c.relispartition THEN (SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_inherits i
                     JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                    WHERE i.inhrelid = c.oid) || ' ' || pg_get_expr(c.relpartbound, c.oid) END AS partition_of,
              CASE WHEN c.relkind IN ('v', 'm') THEN rtrim(pg_get_viewdef(c.oid), ';') END AS viewdef,
              array_to_string(c.reloptions, ', ') AS options
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S') AND ${SCOPE} AND ${notExtensionMember('pg_class', 'c.oid')}`,
    );
    const relationKey = new Map<string, string>();
    for (const r of relations) {
      const { kind } = RELATION_WORDS[r.relkind];
      if (kind === 'table' && IGNORED_TABLES.includes(r.relname)) {
        ignored.add(r.oid);
        continue;
      }
      relationKey.set(r.oid, entryKey(kind, r.name));
    }
    const sequences = await q(
      `SELECT s.seqrelid::text AS oid, format_type(s.seqtypid, NULL) AS type, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
              s.seqcache, s.seqcycle, d.refobjid::text AS owned_by_oid, d.deptype,
              (SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname) FROM pg_class t
                 JOIN pg_namespace tn ON tn.oid = t.relnamespace
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid WHERE t.oid = d.refobjid) AS owned_by
         FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
              AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        WHERE ${SCOPE}`,
    );
    const sequenceOf = new Map<string, any>();
    const identityOptions = new Map<string, string>();
    for (const s of sequences) {
      if (s.owned_by_oid && ignored.has(s.owned_by_oid)) {
        ignored.add(s.oid);
        relationKey.delete(s.oid);
      }
      sequenceOf.set(s.oid, s);
    }
    for (const r of relations) {
      if (ignored.has(r.oid)) continue;
      const { word, kind } = RELATION_WORDS[r.relkind];
      const key = entryKey(kind, r.name);
      const what = word.toLowerCase();
      if (kind === 'table') {
        const definition = [
          r.relkind === 'f' ? 'foreign table' : r.relkind === 'p' ? 'partitioned table' : 'table',
          r.relpersistence === 'u' ? 'unlogged' : '',
          r.partkey ? `partition by ${r.partkey}` : '',
          r.partition_of ? `partition of ${r.partition_of}` : '',
          r.options ? `with (${r.options})` : '',
        ]
          .filter(Boolean)
          .join(' ');
        add({ kind, object: r.name, definition });
        if (r.relrowsecurity || r.relforcerowsecurity) {
          add({
            kind: 'rls',
            object: r.name,
            definition: [r.relrowsecurity ? 'enabled' : 'disabled', r.relforcerowsecurity ? 'forced' : '']
              .filter(Boolean)
              .join(', '),
            parent: key,
            create: [
              r.relrowsecurity ? `ALTER TABLE ${r.name} ENABLE ROW LEVEL SECURITY` : '',
              r.relforcerowsecurity ? `ALTER TABLE ${r.name} FORCE ROW LEVEL SECURITY` : '',
            ]
              .filter(Boolean)
              .join('; '),
            drop: `ALTER TABLE ${r.name} DISABLE ROW LEVEL SECURITY; ALTER TABLE ${r.name} NO FORCE ROW LEVEL SECURITY`,
          });
        }
      } else if (kind === 'view') {
        const body = `${r.options ? ` WITH (${r.options})` : ''} AS\n${r.viewdef}`;
        const create = `CREATE ${word} ${r.name}${body}${r.relkind === 'm' ? ' WITH NO DATA' : ''}`;
        add({
          kind,
          object: r.name,
          definition: `${what}${body}`,
          create,
          alter: r.relkind === 'v' ? `CREATE OR REPLACE VIEW ${r.name}${body}` : undefined,
          drop: `DROP ${word} ${r.name}`,
        });
      } else {
        const s = sequenceOf.get(r.oid);
        const options =
          `AS ${s.type} INCREMENT BY ${s.seqincrement} MINVALUE ${s.seqmin} MAXVALUE ${s.seqmax} ` +
          `START WITH ${s.seqstart} CACHE ${s.seqcache} ${s.seqcycle ? 'CYCLE' : 'NO CYCLE'}`;
        if (s.deptype === 'i') {
          // An identity column's sequence is part of the column: its options are in the column's definition.
          identityOptions.set(s.owned_by, options);
          continue;
        }
        const ownedBy = s.owned_by ? ` OWNED BY ${s.owned_by}` : '';
        add({
          kind,
          object: r.name,
          definition: `${options}${ownedBy}`,
          create: `CREATE SEQUENCE ${r.name} ${options}${ownedBy}`,
          alter: `ALTER SEQUENCE ${r.name} ${options}`,
          // A serial column's sequence goes with its column (and a drop would lose its position).
          drop: s.deptype ? undefined : `DROP SEQUENCE ${r.name}`,
        });
      }
      owner(what, word, r.name, key, r.owner);
      grants(`${r.relkind === 'S' ? 'SEQUENCE' : 'TABLE'} ${r.name}`, `${what} ${r.name}`, key, r.acl);
    }

    for (const r of await q(
      `SELECT a.attrelid::text AS oid, format('%I.%I', n.nspname, c.relname) AS tbl, quote_ident(a.attname) AS col,
              format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull, a.attidentity, a.attgenerated,
              pg_get_expr(ad.adbin, ad.adrelid) AS def,
              CASE WHEN a.attcollation <> t.typcollation THEN format('%I.%I', cn.nspname, co.collname) END AS collation,
              CASE WHEN a.attacl IS NOT NULL THEN ${aclJson('a.attacl', "'r'", 'c.relowner')} END AS acl
         FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
         LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f') AND ${SCOPE}`,
    )) {
      const parent = relationKey.get(r.oid);
      if (!parent) continue;
      const object = `${r.tbl}.${r.col}`;
      const generated = r.attgenerated === 's';
      const rest = [
        r.collation ? `COLLATE ${r.collation}` : '',
        r.attidentity
          ? `GENERATED ${r.attidentity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (${identityOptions.get(object) ?? ''})`
          : '',
        generated ? `GENERATED ALWAYS AS (${r.def}) STORED` : '',
      ]
        .filter(Boolean)
        .join(' ');
      const dflt = generated ? null : r.def;
      const definition = [r.type, rest, r.attnotnull ? 'NOT NULL' : '', dflt !== null ? `DEFAULT ${dflt}` : '']
        .filter(Boolean)
        .join(' ');
      add({
        kind: 'column',
        object,
        definition,
        parent,
        // Adding a column is safe; dropping one loses its data, so no fix drops a column.
        create: `ALTER TABLE ${r.tbl} ADD COLUMN ${r.col} ${definition}`,
        detail: {
          type: 'column',
          table: r.tbl,
          column: r.col,
          dataType: r.type,
          notNull: r.attnotnull,
          default: dflt,
          rest,
        },
      });
      if (r.acl) {
        for (const [grantee, privileges] of groupAcl(r.acl, aclGrantee)) {
          add({
            kind: 'grant',
            object: `column ${object} to ${grantee}`,
            definition: privileges.join(', '),
            parent: entryKey('column', object),
            detail: { type: 'grant', target: `TABLE ${r.tbl}`, grantee: roleSql(grantee), privileges, column: r.col },
          });
        }
      }
    }

    for (const r of await q(
      `SELECT co.conrelid::text AS oid, format('%I.%I', n.nspname, c.relname) AS tbl, quote_ident(co.conname) AS name,
              pg_get_constraintdef(co.oid) AS def, co.convalidated
         FROM pg_constraint co JOIN pg_class c ON c.oid = co.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE co.conrelid <> 0 AND ${SCOPE}`,
    )) {
      const parent = relationKey.get(r.oid);
      if (!parent) continue;
      add({
        kind: 'constraint',
        object: `${r.tbl}.${r.name}`,
        definition: r.def,
        parent,
        create: `ALTER TABLE ${r.tbl} ADD CONSTRAINT ${r.name} ${r.def}`,
        alter: r.convalidated ? `ALTER TABLE ${r.tbl} VALIDATE CONSTRAINT ${r.name}` : undefined,
        drop: `ALTER TABLE ${r.tbl} DROP CONSTRAINT ${r.name}`,
      });
    }

    // Indexes that back a constraint are the constraint's.
    for (const r of await q(
      `SELECT i.indrelid::text AS oid, format('%I.%I', n.nspname, ic.relname) AS name, pg_get_indexdef(i.indexrelid) AS def,
              i.indisvalid
         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
        WHERE ${SCOPE} AND NOT EXISTS (SELECT 1 FROM pg_constraint co WHERE co.conindid = i.indexrelid
                                        AND co.conrelid = i.indrelid AND co.contype IN ('p', 'u', 'x'))`,
    )) {
      const parent = relationKey.get(r.oid);
      if (!parent) continue;
      add({
        kind: 'index',
        object: r.name,
        definition: r.indisvalid ? r.def : `${r.def} (INVALID)`,
        parent,
        create: r.indisvalid ? r.def : undefined,
        drop: `DROP INDEX ${r.name}`,
      });
    }

    for (const r of await q(
      `SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS name, p.prokind,
              CASE WHEN p.prokind = 'a' THEN 'aggregate returning ' || format_type(p.prorettype, NULL)
                   ELSE pg_get_functiondef(p.oid) END AS def,
              pg_get_userbyid(p.proowner) AS owner, ${aclJson('p.proacl', "'f'", 'p.proowner')} AS acl
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE ${SCOPE} AND ${notExtensionMember('pg_proc', 'p.oid')}`,
    )) {
      const word = r.prokind === 'p' ? 'PROCEDURE' : r.prokind === 'a' ? 'AGGREGATE' : 'FUNCTION';
      const key = entryKey('function', r.name);
      add({
        kind: 'function',
        object: r.name,
        definition: r.def.trim(),
        create: r.prokind === 'a' ? undefined : r.def.trim(),
        alter: r.prokind === 'a' ? undefined : r.def.trim(),
        drop: `DROP ${word} ${r.name}`,
      });
      owner(word.toLowerCase(), word, r.name, key, r.owner);
      grants(`${word === 'AGGREGATE' ? 'FUNCTION' : word} ${r.name}`, `${word.toLowerCase()} ${r.name}`, key, r.acl);
    }

    for (const r of await q(
      `SELECT t.tgrelid::text AS oid, format('%I.%I', n.nspname, c.relname) AS tbl, quote_ident(t.tgname) AS name,
              pg_get_triggerdef(t.oid) AS def, t.tgenabled
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND ${SCOPE}`,
    )) {
      const parent = relationKey.get(r.oid);
      if (!parent) continue;
      const state =
        { O: '', D: ' (disabled)', R: ' (enabled replica)', A: ' (enabled always)' }[r.tgenabled as 'O'] ?? '';
      add({
        kind: 'trigger',
        object: `${r.tbl}.${r.name}`,
        definition: r.def + state,
        parent,
        create: state ? undefined : r.def,
        alter:
          r.tgenabled === 'D'
            ? undefined
            : r.tgenabled === 'O'
              ? `ALTER TABLE ${r.tbl} ENABLE TRIGGER ${r.name}`
              : undefined,
        drop: `DROP TRIGGER ${r.name} ON ${r.tbl}`,
      });
    }

    for (const r of await q(
      `SELECT format('%I.%I', n.nspname, t.typname) AS name, t.typtype, pg_get_userbyid(t.typowner) AS owner,
              ${aclJson('t.typacl', "'T'", 't.typowner')} AS acl,
              (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid) AS labels,
              format_type(t.typbasetype, t.typtypmod) AS base, t.typnotnull, t.typdefault,
              CASE WHEN t.typcollation <> bt.typcollation THEN (SELECT format('%I.%I', cn.nspname, co.collname)
                     FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END AS collation,
              (SELECT string_agg(format('CONSTRAINT %I %s', co.conname, pg_get_constraintdef(co.oid)), ' ' ORDER BY co.conname)
                 FROM pg_constraint co WHERE co.contypid = t.oid) AS checks
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
        WHERE t.typtype IN ('e', 'd') AND ${SCOPE} AND ${notExtensionMember('pg_type', 't.oid')}`,
    )) {
      const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;
      if (r.typtype === 'e') {
        const labels: string[] = r.labels ?? [];
        const definition = `ENUM (${labels.map(literal).join(', ')})`;
        add({
          kind: 'enum',
          object: r.name,
          definition,
          create: `CREATE TYPE ${r.name} AS ${definition}`,
          drop: `DROP TYPE ${r.name}`,
          detail: { type: 'enum', name: r.name, labels },
        });
      } else {
        const definition = [
          r.base,
          r.collation ? `COLLATE ${r.collation}` : '',
          r.typdefault !== null ? `DEFAULT ${r.typdefault}` : '',
          r.typnotnull ? 'NOT NULL' : '',
          r.checks ?? '',
        ]
          .filter(Boolean)
          .join(' ');
        add({
          kind: 'domain',
          object: r.name,
          definition,
          create: `CREATE DOMAIN ${r.name} AS ${definition}`,
          drop: `DROP DOMAIN ${r.name}`,
        });
      }
      const kind = r.typtype === 'e' ? 'enum' : 'domain';
      const word = r.typtype === 'e' ? 'TYPE' : 'DOMAIN';
      owner(kind === 'enum' ? 'type' : 'domain', word, r.name, entryKey(kind, r.name), r.owner);
      grants(`${word} ${r.name}`, `${kind === 'enum' ? 'type' : 'domain'} ${r.name}`, entryKey(kind, r.name), r.acl);
    }

    for (const r of await q(
      `SELECT quote_ident(x.extname) AS name, x.extversion, quote_ident(n.nspname) AS schema
         FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace`,
    )) {
      add({
        kind: 'extension',
        object: r.name,
        definition: `version ${r.extversion} in schema ${r.schema}`,
        create: `CREATE EXTENSION ${r.name} WITH SCHEMA ${r.schema} VERSION '${r.extversion}'`,
        alter: `ALTER EXTENSION ${r.name} UPDATE TO '${r.extversion}'`,
        drop: `DROP EXTENSION ${r.name}`,
      });
    }

    for (const r of await q(
      `SELECT p.polrelid::text AS oid, format('%I.%I', n.nspname, c.relname) AS tbl, quote_ident(p.polname) AS name,
              p.polpermissive, p.polcmd, pg_get_expr(p.polqual, p.polrelid) AS qual,
              pg_get_expr(p.polwithcheck, p.polrelid) AS with_check,
              (SELECT array_agg(CASE WHEN r = 0 THEN '-' ELSE pg_get_userbyid(r)::text END) FROM unnest(p.polroles) r) AS roles
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${SCOPE}`,
    )) {
      const parent = relationKey.get(r.oid);
      if (!parent) continue;
      const cmd = { r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE', '*': 'ALL' }[r.polcmd as 'r'] ?? r.polcmd;
      const roles = (r.roles as string[]).map(role).sort().map(roleSql).join(', ');
      const definition =
        `AS ${r.polpermissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${cmd} TO ${roles}` +
        `${r.qual !== null ? ` USING (${r.qual})` : ''}${r.with_check !== null ? ` WITH CHECK (${r.with_check})` : ''}`;
      add({
        kind: 'policy',
        object: `${r.tbl}.${r.name}`,
        definition,
        parent,
        create: `CREATE POLICY ${r.name} ON ${r.tbl} ${definition}`,
        drop: `DROP POLICY ${r.name} ON ${r.tbl}`,
      });
    }

    for (const r of await q(
      `SELECT pg_get_userbyid(d.defaclrole) AS role, d.defaclobjtype AS type,
              CASE WHEN d.defaclnamespace = 0 THEN NULL ELSE quote_ident(n.nspname) END AS schema,
              ${aclJson('d.defaclacl', "'r'", 'd.defaclrole')} AS acl
         FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
        WHERE d.defaclnamespace = 0 OR (${SCOPE})`,
    )) {
      const on = { r: 'TABLES', S: 'SEQUENCES', f: 'FUNCTIONS', T: 'TYPES', n: 'SCHEMAS' }[r.type as 'r'] ?? r.type;
      const forRole = role(r.role);
      for (const [grantee, privileges] of groupAcl(r.acl, aclGrantee)) {
        add({
          kind: 'default_privilege',
          object: `for ${forRole}${r.schema ? ` in schema ${r.schema}` : ''} on ${on.toLowerCase()} to ${grantee}`,
          definition: privileges.join(', '),
          detail: {
            type: 'grant',
            target: on,
            grantee: roleSql(grantee),
            privileges,
            defaults: { forRole: roleSql(forRole), inSchema: r.schema ?? undefined, on },
          },
        });
      }
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
  return { entries };
}

/** ACL items (grantee, privilege, grantable) per grantee name, privileges sorted, each once. */
function groupAcl(acl: [string, string, boolean][], role: (name: string) => string | undefined): Map<string, string[]> {
  const byGrantee = new Map<string, Set<string>>();
  for (const [rawGrantee, privilege, grantable] of acl) {
    const grantee = role(rawGrantee);
    if (grantee === undefined) continue;
    const set = byGrantee.get(grantee) ?? new Set<string>();
    set.add(grantable ? `${privilege} WITH GRANT OPTION` : privilege);
    byGrantee.set(grantee, set);
  }
  return new Map([...byGrantee].map(([grantee, set]) => [grantee, [...set].sort()]));
}
