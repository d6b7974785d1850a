/**
 * Deliberate differences, listed in `orion-drift.json` beside the migrations:
 *
 *   { "ignore": [ { "kind": "index", "object": "public.*_reporting_idx", "reason": "added by the analytics team" } ] }
 *
 * `object` is matched whole, `*` standing for any characters; `kind` (optional) is one drift kind.
 * Anything else in the file is an error naming it: a typo must not silently hide drift.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BadInputError } from '../errors';
import type { DriftKind } from './catalog';

export const EXCEPTIONS_FILE = 'orion-drift.json';

export interface DriftException {
  readonly kind?: DriftKind;
  readonly object: string;
  readonly reason?: string;
}

const KINDS: readonly DriftKind[] = [
  'schema',
  'table',
  'column',
  'constraint',
  'index',
  'sequence',
  'view',
  'function',
  'trigger',
  'enum',
  'domain',
  'extension',
  'rls',
  'policy',
  'owner',
  'grant',
  'default_privilege',
];

/** The exceptions in `dir`/orion-drift.json; none when the file does not exist. */
export async function loadExceptions(dir: string): Promise<DriftException[]> {
  const file = join(dir, EXCEPTIONS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err: any) {
    if (err?.code === 'ENOENT') return [];
    throw new BadInputError(`cannot read ${file}: ${err?.message ?? err}`, { file });
  }
  return parseExceptions(text, file);
}

export function parseExceptions(text: string, file: string): DriftException[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err: any) {
    throw new BadInputError(`${file} is not valid JSON: ${err.message}`, { file });
  }
  const fail = (what: string) => {
    throw new BadInputError(`${file}: ${what}`, { file });
  };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) fail('expected an object like {"ignore": [...]}');
  for (const key of Object.keys(doc as object)) if (key !== 'ignore') fail(`unknown key "${key}" (only "ignore")`);
  const list = (doc as { ignore?: unknown }).ignore ?? [];
  if (!Array.isArray(list)) fail('"ignore" must be an array');
  return (list as unknown[]).map((item, i) => {
    const where = `ignore[${i}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item))
      fail(`${where} must be an object with "object" (and optionally "kind", "reason")`);
    const x = item as Record<string, unknown>;
    for (const key of Object.keys(x))
      if (!['kind', 'object', 'reason'].includes(key)) fail(`${where}: unknown key "${key}" (kind, object, reason)`);
    if (typeof x.object !== 'string' || x.object === '') fail(`${where}: "object" must be a non-empty string`);
    if (x.kind !== undefined && !KINDS.includes(x.kind as DriftKind))
      fail(`${where}: unknown kind ${JSON.stringify(x.kind)} (one of ${KINDS.join(', ')})`);
    if (x.reason !== undefined && typeof x.reason !== 'string') fail(`${where}: "reason" must be a string`);
    return {
      kind: x.kind as DriftKind | undefined,
      object: x.object as string,
      reason: x.reason as string | undefined,
    };
  });
}

export function matchesException(x: DriftException, d: { kind: DriftKind; object: string }): boolean {
  if (x.kind && x.kind !== d.kind) return false;
  const pattern = new RegExp(`^${x.object.split('*').map(escapeRegExp).join('.*')}$`);
  return pattern.test(d.object);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
