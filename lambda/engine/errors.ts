/**
 * Typed errors of the migration engine. Each carries the data a caller needs to
 * report it (file, line, SQLSTATE) and the process exit code the CLI maps it to.
 */

/** Where in the migrations folder a problem is. */
export interface SourcePosition {
  readonly file?: string;
  readonly line?: number;
  readonly column?: number;
}

/** One entry of a report's `errors` array. */
export interface ErrorEntry extends SourcePosition {
  readonly sqlstate?: string;
  readonly message: string;
  /** The server's DETAIL (which key, which row): it may hold the table's data, so the CLI shows it and the custom resource does not. */
  readonly detail?: string;
}

export abstract class OrionError extends Error {
  /** 1 = a migration or verification failed, 2 = bad input (nothing ran), 3 = lock not acquired. */
  abstract readonly exitCode: 1 | 2 | 3;
  abstract toEntries(): ErrorEntry[];
}

/** Something in the input (files, flags, config) is wrong; nothing was run. */
export class BadInputError extends OrionError {
  readonly exitCode = 2 as const;
  constructor(
    readonly detail: string,
    readonly position: SourcePosition = {},
  ) {
    super(formatPosition(position) + detail);
    this.name = 'BadInputError';
  }
  toEntries(): ErrorEntry[] {
    return [{ ...this.position, message: this.detail }];
  }
}

/**
 * A revert needs a down script the ledger does not hold. Distinct from other bad input (a stored script
 * the parser rejects): a caller may choose another way back for this one.
 */
export class NoDownScriptError extends BadInputError {
  constructor(
    detail: string,
    readonly versions: readonly bigint[],
  ) {
    super(detail);
    this.name = 'NoDownScriptError';
  }
}

/** Several input problems found in one pass, so the user can fix them all at once. */
export class BadInputErrors extends OrionError {
  readonly exitCode = 2 as const;
  constructor(readonly errors: readonly BadInputError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.name = 'BadInputErrors';
  }
  toEntries(): ErrorEntry[] {
    return this.errors.flatMap((e) => e.toEntries());
  }
}

/** A statement failed on the server. */
export class MigrationFailedError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(
    readonly file: string,
    readonly line: number,
    readonly sqlstate: string | undefined,
    readonly serverMessage: string,
    options?: { cause?: unknown; detail?: string },
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${sqlstate ? `SQLSTATE ${sqlstate}: ` : ''}${serverMessage}`, options);
    this.name = 'MigrationFailedError';
    this.detail = options?.detail;
  }
  /** The server's DETAIL, kept out of `message` (see ErrorEntry). */
  readonly detail?: string;
  toEntries(): ErrorEntry[] {
    return [
      {
        file: this.file,
        line: this.line || undefined,
        sqlstate: this.sqlstate,
        message: this.serverMessage,
        detail: this.detail,
      },
    ];
  }
}

/**
 * The connection was lost while migrations ran and could not be used again to read the ledger: the
 * last batch may or may not have committed. Not "nothing ran" (exit 2): something may have.
 */
export class OutcomeUnknownError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(message: string) {
    super(message);
    this.name = 'OutcomeUnknownError';
  }
  toEntries(): ErrorEntry[] {
    return [{ message: this.message }];
  }
}

/** The advisory lock stayed held by another session until the deadline. */
export class LockTimeoutError extends OrionError {
  readonly exitCode = 3 as const;
  constructor(
    readonly waitedMs: number,
    readonly holder: { pid: number; applicationName: string } | undefined,
  ) {
    super(
      `could not acquire the migration lock within ${Math.round(waitedMs / 1000)}s: ` +
        (holder
          ? `held by pid ${holder.pid} (application_name "${holder.applicationName}")`
          : 'its holder is gone, try again'),
    );
    this.name = 'LockTimeoutError';
  }
  toEntries(): ErrorEntry[] {
    return [{ message: this.message }];
  }
}

/** The database could not be reached or refused the login; nothing was run. */
export class ConnectionError extends OrionError {
  readonly exitCode = 2 as const;
  /** Only a server's refusal has one; a network failure (ECONNREFUSED, …) is not a SQLSTATE. */
  readonly sqlstate?: string;
  constructor(
    message: string,
    /** The server's SQLSTATE or the network's error code (ECONNREFUSED, ENOTFOUND, …). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'ConnectionError';
    this.sqlstate = code && SQLSTATE.test(code) ? code : undefined;
  }
  toEntries(): ErrorEntry[] {
    return [{ sqlstate: this.sqlstate, message: this.message }];
  }
}

/** A post-condition of the deploy (the lockdown's checks, the restored version) does not hold. */
export class PostconditionFailedError extends OrionError {
  readonly exitCode = 1 as const;
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'PostconditionFailedError';
  }
  toEntries(): ErrorEntry[] {
    return this.problems.map((message) => ({ message }));
  }
}

/**
 * The server refused or failed a statement the deploy lifecycle sends itself (bootstrap, snapshot,
 * lockdown): one sentence naming the step, with the SQLSTATE — not a stack trace.
 */
export class ServerError extends OrionError {
  readonly exitCode = 1 as const;
  readonly sqlstate: string;
  constructor(
    readonly step: string,
    cause: { code: string; message?: string; detail?: string },
  ) {
    // DETAIL may hold row data (a duplicated token): never in the message, which becomes a
    // CloudFormation Reason or a log line; a separate field the CLI prints (see ErrorEntry).
    super(`${step} failed: SQLSTATE ${cause.code}: ${cause.message ?? 'unknown error'}`, { cause });
    this.name = 'ServerError';
    this.sqlstate = cause.code;
    this.detail = cause.detail;
  }
  /** The server's DETAIL, kept out of `message`. */
  readonly detail?: string;
  toEntries(): ErrorEntry[] {
    return [
      {
        sqlstate: this.sqlstate,
        message: this.message.replace(`SQLSTATE ${this.sqlstate}: `, ''),
        detail: this.detail,
      },
    ];
  }
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** A server error (one with a SQLSTATE) as a ServerError of `step`; anything else unchanged. */
export function asServerError(step: string, err: unknown): unknown {
  const code = (err as { code?: unknown })?.code;
  if (err instanceof OrionError || typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return err;
  return new ServerError(step, err as { code: string; message?: string; detail?: string });
}

export function formatPosition(p: SourcePosition): string {
  if (!p.file) return '';
  return `${p.file}${p.line ? `:${p.line}${p.column ? `:${p.column}` : ''}` : ''}: `;
}

/** Any thrown value as report entries; unknown errors keep only their message. */
export function toErrorEntries(err: unknown): ErrorEntry[] {
  if (err instanceof OrionError) return err.toEntries();
  const e = err as { message?: unknown; code?: unknown };
  return [
    {
      sqlstate: typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : undefined,
      message: String(e?.message ?? err),
    },
  ];
}
