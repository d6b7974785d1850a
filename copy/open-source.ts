/**
 * Opens a source by its kind; each reader is loaded only when used (better-sqlite3 is a native module).
 */
import type { Source, SourceSpec } from './source';

export async function openSource(spec: SourceSpec): Promise<Source> {
  if (spec.kind === 'sqlite') return (await import('./sqlite-source')).openSqlite(spec.path);
  return (await import('./pg-source')).openPostgresSource(spec.url);
}
