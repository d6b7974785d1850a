/**
 * Property: any mix of random hand changes to a deployed database is detected — every change shows up
 * as drift on the object it touched — and once they are undone, there is no drift again.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { adminQuery, migrationsDir } from '../helpers/db';
import { type DeployFixture, deployFixture } from '../helpers/deploy';
import { type DriftCheck, driftChecker, EVERY_KIND } from './helpers';

let fixture: DeployFixture;
let check: DriftCheck;
let serial = 0;

beforeAll(async () => {
  fixture = deployFixture();
  const dir = migrationsDir(EVERY_KIND);
  expect((await fixture.deploy(dir)).report.errors).toEqual([]);
  check = driftChecker(fixture, dir);
});

afterAll(async () => {
  await fixture?.cleanup();
});

interface Change {
  /** SQL as the owner role, and its undo. */
  readonly sql: string;
  readonly undo: string;
  /** A drift's object must contain this. */
  readonly object: string;
}

const TABLES = ['items', 'notes', 'billing.invoices'] as const;
const COLUMNS: Record<(typeof TABLES)[number], string[]> = {
  items: ['title', 'created_at'],
  notes: ['body', 'extra'],
  'billing.invoices': ['total'],
};
const PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'] as const;
const qualified = (t: string) => (t.includes('.') ? t : `public.${t}`);

const tableAndColumn = fc
  .constantFrom(...TABLES)
  .chain((t) => fc.constantFrom(...COLUMNS[t]).map((c) => [t, c] as const));

/** Each generator makes one hand change, with a fresh name where it creates something. */
const CHANGES: fc.Arbitrary<(n: number) => Change>[] = [
  tableAndColumn.map(([t, c]) => (n: number) => ({
    sql: `CREATE INDEX p${n}_idx ON ${t} (${c})`,
    undo: `DROP INDEX ${t.includes('.') ? 'billing.' : ''}p${n}_idx`,
    object: `p${n}_idx`,
  })),
  fc.tuple(tableAndColumn, fc.integer({ min: -1000, max: 1000 })).map(([[t, c], v]) => () => ({
    sql: `ALTER TABLE ${t} ALTER COLUMN ${c} SET DEFAULT ${c === 'created_at' ? `'epoch'` : c === 'extra' || c === 'total' ? v : `'${v}'`}`,
    undo: `ALTER TABLE ${t} ALTER COLUMN ${c} ${c === 'created_at' ? 'SET DEFAULT now()' : 'DROP DEFAULT'}`,
    object: `${qualified(t)}.${c}`,
  })),
  fc.tuple(fc.constantFrom(...TABLES), fc.constantFrom(...PRIVILEGES)).map(([t, p]) => () => ({
    sql: `GRANT ${p} ON ${t} TO PUBLIC`,
    undo: `REVOKE ${p} ON ${t} FROM PUBLIC`,
    object: `table ${qualified(t)} to PUBLIC`,
  })),
  fc.tuple(fc.constantFrom(...TABLES), fc.constantFrom('SELECT', 'INSERT', 'UPDATE', 'DELETE')).map(([t, p]) => () => ({
    sql: `REVOKE ${p} ON ${t} FROM "${fixture.roles.group}"`,
    undo: `GRANT ${p} ON ${t} TO "${fixture.roles.group}"`,
    object: `table ${qualified(t)} to ${fixture.roles.group}`,
  })),
  tableAndColumn.map(([t, c]) => (n: number) => ({
    sql: `ALTER TABLE ${t} ADD CONSTRAINT p${n}_check CHECK (${c} IS NOT NULL OR true)`,
    undo: `ALTER TABLE ${t} DROP CONSTRAINT p${n}_check`,
    object: `${qualified(t)}.p${n}_check`,
  })),
  fc.constantFrom('int', 'text', 'jsonb', 'uuid', 'numeric(5, 2)').map((type) => (n: number) => ({
    sql: `CREATE TABLE p${n}_table (x ${type})`,
    undo: `DROP TABLE p${n}_table`,
    object: `public.p${n}_table`,
  })),
  fc.tuple(fc.constantFrom(...TABLES), fc.constantFrom('int', 'text', 'boolean')).map(([t, type]) => (n: number) => ({
    sql: `ALTER TABLE ${t} ADD COLUMN p${n}_col ${type}`,
    undo: `ALTER TABLE ${t} DROP COLUMN p${n}_col`,
    object: `${qualified(t)}.p${n}_col`,
  })),
  fc.integer({ min: 2, max: 50 }).map((k) => () => ({
    sql: `ALTER SEQUENCE counter_seq INCREMENT BY ${k}`,
    undo: 'ALTER SEQUENCE counter_seq INCREMENT BY 1',
    object: 'public.counter_seq',
  })),
  fc.constantFrom(...TABLES).map((t) => () => ({
    sql: `ALTER TABLE ${t} FORCE ROW LEVEL SECURITY`,
    undo: `ALTER TABLE ${t} NO FORCE ROW LEVEL SECURITY`,
    object: qualified(t),
  })),
  fc.boolean().map((b) => (n: number) => ({
    sql: `CREATE POLICY p${n}_policy ON notes USING (${b})`,
    undo: `DROP POLICY p${n}_policy ON notes`,
    object: `public.notes.p${n}_policy`,
  })),
  fc.integer({ min: 0, max: 99 }).map((k) => (n: number) => ({
    sql: `CREATE FUNCTION p${n}_fn() RETURNS int LANGUAGE sql AS 'SELECT ${k}'`,
    undo: `DROP FUNCTION p${n}_fn()`,
    object: `public.p${n}_fn()`,
  })),
  fc.constantFrom(...PRIVILEGES).map((p) => () => ({
    sql: `ALTER DEFAULT PRIVILEGES GRANT ${p} ON TABLES TO PUBLIC`,
    undo: `ALTER DEFAULT PRIVILEGES REVOKE ${p} ON TABLES FROM PUBLIC`,
    object: 'on tables to PUBLIC',
  })),
  fc.constant((n: number) => ({
    sql: `CREATE SCHEMA p${n}_schema`,
    undo: `DROP SCHEMA p${n}_schema`,
    object: `p${n}_schema`,
  })),
  fc.constantFrom('a', 'zz', 'draft2').map((label) => (n: number) => ({
    sql: `CREATE TYPE p${n}_enum AS ENUM ('${label}')`,
    undo: `DROP TYPE p${n}_enum`,
    object: `public.p${n}_enum`,
  })),
];

test('random hand changes are each detected, and gone once undone', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(...CHANGES), { minLength: 1, maxLength: 3 }), async (makers) => {
      const changes = makers.map((make) => make(++serial));
      // Two changes of one kind on one object (a default set twice) are one drift: keep the first.
      const distinct = changes.filter((c, i) => changes.findIndex((o) => o.object === c.object) === i);
      const asOwner = (sql: string) =>
        adminQuery(`SET ROLE "${fixture.roles.owner}"; ${sql}`, [], fixture.roles.database);
      for (const c of distinct) await asOwner(c.sql);
      try {
        const { drift } = await check();
        for (const c of distinct)
          expect(drift.map((d) => d.object).filter((o) => o.includes(c.object))).not.toEqual([]);
      } finally {
        for (const c of [...distinct].reverse()) await asOwner(c.undo);
      }
      expect((await check()).drift).toEqual([]);
    }),
    { numRuns: 15, seed: Number(process.env.ORION_PROPERTY_SEED ?? Date.now() % 100000) },
  );
});
