/**
 * What dbmate and goose share: one `V_name.sql` per migration holding both directions between
 * marker comments. Each tool supplies its markers (dbmate.ts, goose.ts).
 */
import { readFileSync } from 'node:fs';
import { BadInputError } from '../errors';
import { type MigrationScript, scriptFromText, sha256 } from '../scripts';
import { hasSql, keepLines, lines } from './sections';
import type { FolderEntry, MigrationDraft } from './types';
import { NAME } from './types';

export const SINGLE_FILE = /^(\d+)_(.+)\.sql$/;

const peeked = new Map<string, string>();
/** The file's text, read once for detection and again (from here) for reading. */
export function peek(path: string): string {
  let text = peeked.get(path);
  if (text === undefined) {
    text = readFileSync(path, 'latin1'); // detection only needs ASCII markers; readScript checks UTF-8
    peeked.set(path, text);
  }
  return text;
}

/** One marker line, as a tool's parser recognises it. */
export interface Marker {
  readonly kind: 'up' | 'down' | 'ignore' | 'no-transaction';
  /** For up/down: the part runs outside a transaction. */
  readonly noTransaction?: boolean;
}

export interface SingleFileTool {
  readonly tool: string;
  /** The marker on this line, undefined for SQL or an ordinary comment; throws for one orion cannot honour. */
  marker(line: string, lineNumber: number, file: string): Marker | undefined;
}

export function readSingleFiles(
  tool: SingleFileTool,
  entries: readonly FolderEntry[],
  errors: Error[],
): MigrationDraft[] {
  const drafts: MigrationDraft[] = [];
  for (const entry of entries) {
    try {
      drafts.push(readOne(tool, entry));
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      errors.push(err);
    }
  }
  return drafts;
}

function readOne(tool: SingleFileTool, entry: FolderEntry): MigrationDraft {
  const file = entry.name;
  const m = SINGLE_FILE.exec(file)!;
  if (!NAME.test(m[2]))
    throw new BadInputError(
      'bad migration file name: the name after the version may use letters, digits, "_", "." and "-"',
      {
        file,
      },
    );
  const bytes = readFileSync(entry.path);
  peeked.delete(entry.path);
  const text = bytes.toString('utf8');
  const all = lines(text);
  const parts: { kind: 'up' | 'down'; start: number; noTransaction: boolean }[] = [];
  let fileNoTransaction = false;
  const blank = new Set<number>();
  for (let i = 0; i < all.length; i++) {
    const marker = tool.marker(all[i].replace(/\r$/, ''), i + 1, file);
    if (!marker) {
      if (parts.length === 0 && hasSql(all[i]))
        throw new BadInputError(`SQL before the ${tool.tool} "up" marker: it belongs to no direction`, {
          file,
          line: i + 1,
        });
      continue;
    }
    blank.add(i);
    if (marker.kind === 'no-transaction') fileNoTransaction = true;
    else if (marker.kind === 'up' || marker.kind === 'down') {
      if (parts.some((p) => p.kind === marker.kind))
        throw new BadInputError(`a second ${tool.tool} "${marker.kind}" marker`, { file, line: i + 1 });
      parts.push({ kind: marker.kind, start: i + 1, noTransaction: Boolean(marker.noTransaction) });
    }
  }
  const up = parts.find((p) => p.kind === 'up');
  if (!up) throw new BadInputError(`no ${tool.tool} "up" marker in this file`, { file });
  const kept = all.map((l, i) => (blank.has(i) ? '' : l));
  const script = (part: (typeof parts)[number]): MigrationScript | undefined => {
    const next = parts.filter((p) => p.start > part.start).map((p) => p.start - 1);
    const end = next.length ? Math.min(...next) : kept.length;
    const body = keepLines(kept, part.start, end);
    if (part.kind === 'down' && !hasSql(body)) return undefined; // an empty down: not reversible
    return scriptFromText(file, body, { noTransaction: part.noTransaction || fileNoTransaction });
  };
  const down = parts.find((p) => p.kind === 'down');
  return {
    version: BigInt(m[1]),
    label: m[1],
    name: m[2],
    source: `${m[1]}_${m[2]}`,
    checksum: sha256(bytes),
    up: script(up)!,
    down: down && script(down),
    files: [file],
  };
}
