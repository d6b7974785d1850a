/**
 * The comparison `--baseline V` needs: the migrations up to V replayed into a scratch database and
 * its schema compared with the live one (the drift comparison, drift/). Owners, grants and default
 * privileges are not compared: adoption gives the objects to the owner role and the lockdown then
 * sets who may do what, so a hand-built database differs there by design.
 */
import type { Client, ClientBase } from 'pg';
import { type DriftException, diffCatalogs, readCatalog, replayReference } from '../drift';
import type { Migration } from '../files';
import type { SchemaDifference } from './index';

const NOT_COMPARED = new Set(['owner', 'grant', 'default_privilege']);

export interface BaselineComparerOptions {
  /** The live database. */
  readonly client: ClientBase;
  /** Connections to the server that hosts the scratch database (the live server). */
  readonly connectReference: (database?: string) => Promise<Client>;
  readonly exceptions?: readonly DriftException[];
  readonly log?: (line: string) => void;
}

export function baselineComparer(
  options: BaselineComparerOptions,
): (upTo: readonly Migration[]) => Promise<SchemaDifference[]> {
  return async (upTo) => {
    const { client } = options;
    const { rows } = await client.query('SELECT current_user AS u, current_database() AS d');
    const reference = await replayReference({
      connect: options.connectReference,
      migrations: upTo,
      connectingUserAs: rows[0].u,
      databaseName: rows[0].d,
      log: options.log,
    });
    const live = await readCatalog(client);
    return diffCatalogs(reference.catalog, live, options.exceptions).filter((d) => !NOT_COMPARED.has(d.kind));
  };
}
