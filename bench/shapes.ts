/**
 * The migration histories the bench applies ("shapes"), each written in every contender's layout:
 * generated ones at any count, and a real Prisma history replayed as it is.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export type Format = 'orion' | 'dbmate' | 'node-pg-migrate' | 'postgres-migrations' | 'floor';

interface Step {
  /** Version and name as the history has them (generated: n and t<n>). */
  version: string;
  name: string;
  up: string;
  down: string;
}

export interface Shape {
  readonly id: string;
  readonly label: string;
  /** Counts this shape runs at (the first by `apply`, the rest by `scale`); a real history has its own. */
  readonly counts: readonly number[];
  /** Migrations before which a commit is needed (an enum value added earlier is used): the floor commits there too. */
  readonly commitBefore?: (n: number) => boolean;
  /** How many batch splits orion-db must report for `count` migrations (checked once per case). */
  readonly expectedSplits?: (count: number) => number;
  /** Tables the applied history leaves in `public`, other than the tools' ledgers. */
  readonly tables: (count: number) => number;
  /** The history's steps. */
  steps(count: number): Step[];
  /** The history's own folder, which orion-db reads as is once its engine knows the layout. */
  readonly nativeDir?: string;
}

const table = (n: number, columns: string) => `CREATE TABLE t_${n} (${columns});\n`;
const generated = (count: number, up: (n: number) => string): Step[] =>
  Array.from({ length: count }, (_, i) => ({
    version: String(i + 1),
    name: `t${i + 1}`,
    up: up(i + 1),
    down: `DROP TABLE t_${i + 1} CASCADE;\n`,
  }));

/** Every ENUM_EVERY-th migration adds an enum value that the next one inserts. */
const ENUM_EVERY = 20;

export const PRISMA_CORPUS = resolve(__dirname, '..', '..', 'shared', 'corpora', 'hoppscotch-prisma', 'migrations');

export const SHAPES: readonly Shape[] = [
  {
    id: 'ddl',
    label: 'DDL only (one CREATE TABLE per file)',
    counts: [300, 1000, 3000],
    tables: (count) => count,
    steps: (count) => generated(count, (n) => table(n, 'id bigint, note text')),
  },
  {
    id: 'insert',
    label: 'table with a primary key + INSERT per file',
    counts: [300, 1000, 3000],
    tables: (count) => count,
    steps: (count) =>
      generated(
        count,
        (n) => `${table(n, 'id bigint PRIMARY KEY, note text')}INSERT INTO t_${n} VALUES (1, 'row ${n}');\n`,
      ),
  },
  {
    id: 'index-fk',
    label: 'table + row + foreign key to the previous table + index per file',
    counts: [300, 1000],
    tables: (count) => count,
    steps: (count) =>
      generated(
        count,
        (n) =>
          table(n, 'id bigint PRIMARY KEY, parent_id bigint, note text') +
          `INSERT INTO t_${n} VALUES (1, ${n > 1 ? 1 : 'NULL'}, 'row ${n}');\n` +
          (n > 1
            ? `ALTER TABLE t_${n} ADD CONSTRAINT t_${n}_parent_fk FOREIGN KEY (parent_id) REFERENCES t_${n - 1} (id);\n`
            : '') +
          `CREATE INDEX t_${n}_parent_idx ON t_${n} (parent_id);\n`,
      ),
  },
  {
    id: 'function',
    label: 'table + PL/pgSQL trigger function + trigger + row per file',
    counts: [300, 1000],
    tables: (count) => count,
    steps: (count) =>
      generated(
        count,
        (n) =>
          table(n, 'id bigint PRIMARY KEY, note text, updated_at timestamptz') +
          `CREATE FUNCTION t_${n}_touch() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND\n$$;\n` +
          `CREATE TRIGGER t_${n}_touch BEFORE INSERT OR UPDATE ON t_${n} FOR EACH ROW EXECUTE FUNCTION t_${n}_touch();\n` +
          `INSERT INTO t_${n} (id, note) VALUES (1, 'row ${n}');\n`,
      ),
  },
  {
    id: 'enum',
    label: `enum value added every ${ENUM_EVERY} files and used by the next (split batches)`,
    counts: [300, 1000],
    commitBefore: (n) => n > 1 && (n - 1) % ENUM_EVERY === 0,
    expectedSplits: (count) => Math.floor((count - 1) / ENUM_EVERY),
    tables: (count) => count,
    steps: (count) =>
      generated(count, (n) => {
        const head = n === 1 ? `CREATE TYPE mood AS ENUM ('v_0');\n` : '';
        const create = head + table(n, 'id bigint PRIMARY KEY, m mood');
        if (n % ENUM_EVERY === 0) return `${create}ALTER TYPE mood ADD VALUE 'v_${n}';\n`;
        const label = n > 1 && (n - 1) % ENUM_EVERY === 0 ? `v_${n - 1}` : 'v_0';
        return `${create}INSERT INTO t_${n} VALUES (1, '${label}');\n`;
      }),
  },
  {
    id: 'prisma',
    label: 'hoppscotch Prisma history (21 migrations, 23 tables)',
    counts: [21],
    tables: () => 23,
    steps: () => prismaSteps(),
    nativeDir: PRISMA_CORPUS,
  },
];

/** The real history, in order; its migrations have no down scripts (Prisma writes none). */
function prismaSteps(): Step[] {
  if (!existsSync(PRISMA_CORPUS)) throw new Error(`${PRISMA_CORPUS} is missing: the prisma shape needs the corpus`);
  return readdirSync(PRISMA_CORPUS, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort()
    .map((dir) => {
      const m = /^(\d{14})_(.+)$/.exec(dir);
      if (!m) throw new Error(`${dir}: not a Prisma migration folder`);
      return {
        version: m[1],
        name: m[2],
        up: readFileSync(join(PRISMA_CORPUS, dir, 'migration.sql'), 'utf8'),
        down: '',
      };
    });
}

/**
 * Writes a shape's `count` migrations in a tool's layout; returns the folder (or, for the floor, the
 * one file: the concatenation, with BEGIN/COMMIT of its own where the shape must commit midway).
 */
export function writeMigrations(root: string, shape: Shape, format: Format, count: number): string {
  const dir = join(root, shape.id, `${format}-${count}`);
  const floorFile = join(dir, 'all.sql');
  if (existsSync(dir)) return format === 'floor' ? floorFile : dir;
  mkdirSync(dir, { recursive: true });
  const steps = shape.steps(count);
  const width = Math.max(6, String(count).length);
  const pad = (v: string) => v.padStart(width, '0');
  if (format === 'floor') {
    // psql -1 wraps the file in one transaction; a shape that must commit midway says so itself.
    let all = shape.commitBefore ? 'BEGIN;\n' : '';
    steps.forEach((s, i) => {
      if (shape.commitBefore?.(i + 1)) all += 'COMMIT;\nBEGIN;\n';
      all += s.up.endsWith('\n') ? s.up : `${s.up}\n`;
    });
    writeFileSync(floorFile, shape.commitBefore ? `${all}COMMIT;\n` : all);
    return floorFile;
  }
  steps.forEach((s, i) => {
    const file = `${pad(s.version)}_${s.name}`;
    if (format === 'orion') {
      writeFileSync(join(dir, `${file}.up.sql`), s.up);
      if (s.down) writeFileSync(join(dir, `${file}.down.sql`), s.down);
    } else if (format === 'dbmate') {
      writeFileSync(join(dir, `${file}.sql`), `-- migrate:up\n${s.up}\n-- migrate:down\n${s.down}`);
    } else if (format === 'node-pg-migrate') {
      writeFileSync(join(dir, `${file}.sql`), `-- Up Migration\n${s.up}\n-- Down Migration\n${s.down}`);
    } else {
      // postgres-migrations: ids 1, 2, 3…, and unique names (the Prisma history has one name twice)
      writeFileSync(join(dir, `${i + 1}_${file}.sql`), s.up);
    }
  });
  return dir;
}
