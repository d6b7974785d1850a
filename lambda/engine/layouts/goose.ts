/**
 * goose: `V_name.sql` with `-- +goose Up` and `-- +goose Down`; `StatementBegin`/`StatementEnd`
 * only group statements for goose's own splitter (orion splits with PostgreSQL's parser, so they are
 * dropped); `-- +goose NO TRANSACTION` runs both directions outside a transaction. Annotations are
 * case-insensitive and start their line (goose's internal/sqlparser).
 */
import { BadInputError } from '../errors';
import { peek, readSingleFiles, SINGLE_FILE, type SingleFileTool } from './single-file';
import type { Layout } from './types';

const ANNOTATION = /^--\s*\+goose\s+(.*?)\s*$/i;
const DETECT = /^--\s*\+goose\s+up\b/im;

const tool: SingleFileTool = {
  tool: 'goose',
  marker(line, lineNumber, file) {
    const m = ANNOTATION.exec(line);
    if (!m) return undefined;
    switch (m[1].toLowerCase().replace(/\s+/g, ' ')) {
      case 'up':
        return { kind: 'up' };
      case 'down':
        return { kind: 'down' };
      case 'statementbegin':
      case 'statementend':
        return { kind: 'ignore' };
      case 'no transaction':
        return { kind: 'no-transaction' };
      default:
        // ENVSUB substitutes environment variables into the SQL: orion runs files exactly as written.
        throw new BadInputError(
          `goose annotation "${m[1]}" is not supported (orion-db runs the file as written; known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION)`,
          { file, line: lineNumber },
        );
    }
  },
};

export const goose: Layout = {
  name: 'goose',
  claims: (e) =>
    !e.isDirectory && SINGLE_FILE.test(e.name) && !/\.(up|down)\.sql$/.test(e.name) && DETECT.test(peek(e.path)),
  read: (entries, errors) => readSingleFiles(tool, entries, errors),
};
