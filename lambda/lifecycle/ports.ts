/**
 * The two ports the deploy lifecycle runs against. The Lambda implements them with RDS and
 * Secrets Manager (lambda/aws), `orion-db up` with the embedded PostgreSQL (lambda/local).
 * Every method is idempotent: the Lambda may call it again after a timeout or a retry.
 */

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

export interface SecretsPort {
  /** The master user (creates databases and roles, runs migrations through SET ROLE). */
  master(): Promise<Credentials>;
  /**
   * The application's current credentials. With multi-user rotation the username alternates
   * between the app role and its `_clone`; the secret is the source of truth for both.
   */
  app(): Promise<Credentials>;
}

export type SnapshotState = 'available' | 'creating';
/**
 * `manual`: this port does not restore on this server (a shared server it did not start, where it
 * may not end other sessions); `keptAs` says where the backup is and how to restore it.
 */
export type RestoreState = 'done' | 'in-progress' | 'manual';

/** What a snapshot restore of this deploy has left behind, read from durable facts. */
export interface RestoreStatus {
  readonly state: 'none' | 'in-progress' | 'done';
  /** Why it was restored (the migration failure), as given to `restore`. */
  readonly reason?: string;
}

export interface SnapshotInfo {
  readonly id: string;
  readonly createdAt: Date;
  /** Still being taken (no creation time yet): never pruned. */
  readonly creating?: boolean;
}

export interface SnapshotPort {
  /** Starts the snapshot `id` of the database, or finds the one a previous attempt started. */
  ensure(id: string, tags: Readonly<Record<string, string>>): Promise<SnapshotState>;
  /**
   * Pre-migration snapshots of this database that `ensure` made, told by a mark `ensure` leaves (on RDS
   * a tag), never by name alone: the prune deletes what this returns. Any order.
   */
  list(): Promise<SnapshotInfo[]>;
  delete(id: string): Promise<void>;
  /**
   * Replaces the database with the snapshot's copy, keeping the failed one under another name for
   * inspection. Resumes a restore already under way. `reason` is kept with it (see restoreStatus).
   */
  restore(id: string, reason: string): Promise<RestoreState>;
  /** Whether a restore from snapshot `id` was started, and how far it got. */
  restoreStatus(id: string): Promise<RestoreStatus>;
  /** Where the failed database is kept after a restore from `id` (or, after `manual`, the backup), for people. */
  keptAs(id: string): string;
}
