/**
 * The snapshot port on a local server: a snapshot is `CREATE DATABASE <snap> TEMPLATE <db>`, and a
 * restore swaps databases by rename — the failed one is kept, as RDS keeps the failed instance.
 */
import { createHash } from 'node:crypto';
import type { ClientBase } from 'pg';
import { quoteIdent as q } from '../engine/db';
import type { RestoreState, RestoreStatus, SnapshotInfo, SnapshotPort, SnapshotState } from '../lifecycle/ports';

/** Database names are limited to 63 bytes; a snapshot id maps to one deterministically. */
export function snapshotDatabaseName(id: string): string {
  return id.replace(/-/g, '_').slice(0, 63);
}

export class TemplateDatabaseSnapshots implements SnapshotPort {
  /**
   * @param admin a superuser (or CREATEDB) connection to another database of the same server
   * @param database the database the snapshots are of
   */
  constructor(
    private readonly admin: ClientBase,
    private readonly database: string,
  ) {}

  async ensure(id: string, tags: Readonly<Record<string, string>>): Promise<SnapshotState> {
    const name = snapshotDatabaseName(id);
    if (await this.exists(name)) return 'available';
    await this.disconnectOthers(this.database);
    await this.admin.query(`CREATE DATABASE ${q(name)} TEMPLATE ${q(this.database)}`);
    await this.admin.query(
      `COMMENT ON DATABASE ${q(name)} IS ${this.admin.escapeLiteral(JSON.stringify({ snapshotOf: this.database, id, createdAt: new Date().toISOString(), ...tags }))}`,
    );
    return 'available';
  }

  async list(): Promise<SnapshotInfo[]> {
    const { rows } = await this.admin.query(
      `SELECT shobj_description(oid, 'pg_database') AS meta FROM pg_database WHERE shobj_description(oid, 'pg_database') LIKE '{%'`,
    );
    return rows
      .map((r) => safeJson(r.meta))
      .filter((m) => m?.snapshotOf === this.database && typeof m.id === 'string')
      .map((m) => ({ id: m.id as string, createdAt: new Date(m.createdAt) }));
  }

  async delete(id: string): Promise<void> {
    await this.admin.query(`DROP DATABASE IF EXISTS ${q(snapshotDatabaseName(id))}`);
  }

  async restore(id: string, reason: string): Promise<RestoreState> {
    const snapshot = snapshotDatabaseName(id);
    const failed = this.keptAs(id);
    if (!(await this.exists(failed))) {
      await this.disconnectOthers(this.database);
      await this.admin.query(`ALTER DATABASE ${q(this.database)} RENAME TO ${q(failed)}`);
      await this.admin.query(
        `COMMENT ON DATABASE ${q(failed)} IS ${this.admin.escapeLiteral(JSON.stringify({ failedDeployOf: this.database, snapshot: id, reason }))}`,
      );
    }
    if (!(await this.exists(this.database))) {
      await this.admin.query(`CREATE DATABASE ${q(this.database)} TEMPLATE ${q(snapshot)}`);
      await this.admin.query(`COMMENT ON DATABASE ${q(this.database)} IS NULL`);
    }
    return 'done';
  }

  async restoreStatus(id: string): Promise<RestoreStatus> {
    const { rows } = await this.admin.query(
      `SELECT shobj_description(oid, 'pg_database') AS meta FROM pg_database WHERE datname = $1`,
      [this.keptAs(id)],
    );
    if (rows.length === 0) return { state: 'none' };
    const meta = safeJson(rows[0].meta);
    return { state: (await this.exists(this.database)) ? 'done' : 'in-progress', reason: meta?.reason };
  }

  /** The failed database keeps a name derived from the snapshot, so a retry finds it. */
  keptAs(id: string): string {
    return `${this.database.slice(0, 46)}_failed_${createHash('sha256').update(id).digest('hex').slice(0, 8)}`;
  }

  private async exists(name: string): Promise<boolean> {
    return (await this.admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rows.length > 0;
  }

  /** Copying or renaming a database needs it idle; locally we may end other sessions. */
  private async disconnectOthers(database: string): Promise<void> {
    await this.admin.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
  }
}

function safeJson(text: string | null): any {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
