/**
 * dbmate: `V_name.sql` with `-- migrate:up` and `-- migrate:down`, each optionally followed by
 * `transaction:false` (that part runs outside a transaction: orion's `-- orion:no-transaction`).
 * As dbmate's pkg/dbmate/migration.go parses them: `^--\s*migrate:(up|down)` then space-separated
 * `key:value` options.
 */
import { BadInputError } from '../errors';
import { peek, readSingleFiles, SINGLE_FILE, type SingleFileTool } from './single-file';
import type { Layout } from './types';

const MARKER = /^--\s*migrate:(up|down)(?:\s+(.*))?$/;
const DETECT = /^--\s*migrate:up\b/m;

const tool: SingleFileTool = {
  tool: 'dbmate',
  marker(line, lineNumber, file) {
    const m = MARKER.exec(line.trimEnd());
    if (!m) return undefined;
    let noTransaction = false;
    for (const option of (m[2] ?? '').split(/\s+/).filter(Boolean)) {
      if (option === 'transaction:false') noTransaction = true;
      else if (option !== 'transaction:true')
        throw new BadInputError(`unknown dbmate option "${option}" (known: transaction:false)`, {
          file,
          line: lineNumber,
        });
    }
    return { kind: m[1] as 'up' | 'down', noTransaction };
  },
};

export const dbmate: Layout = {
  name: 'dbmate',
  claims: (e) =>
    !e.isDirectory && SINGLE_FILE.test(e.name) && !/\.(up|down)\.sql$/.test(e.name) && DETECT.test(peek(e.path)),
  read: (entries, errors) => readSingleFiles(tool, entries, errors),
};
