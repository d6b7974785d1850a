/**
 * Opening connections. The password in a URL never appears in any message.
 */
import { Client } from 'pg';
import { ConnectionError } from './errors';

export interface ConnectOptions {
  /** Shown in pg_stat_activity, and so in "lock held by" messages. */
  readonly applicationName?: string;
  /** @default 10 000 ms */
  readonly connectTimeoutMs?: number;
  /**
   * How long the client waits for any answer to a query before giving the connection up (pg's
   * query_timeout): a socket gone silent (a hard failover) would otherwise hang until the process dies.
   * Set it above every statement_timeout. @default none
   */
  readonly queryTimeoutMs?: number;
  /** Used instead of the URL's password (e.g. one read from a secret). */
  readonly password?: string;
}

export async function connect(url: string, options: ConnectOptions = {}): Promise<Client> {
  if (!URL.canParse(url) || !/^postgres(ql)?:$/.test(new URL(url).protocol))
    throw new ConnectionError('invalid database URL: expected postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  let client: Client;
  try {
    client = new Client({
      // pg lets the URL win over a separate `password` option, so it goes into the URL.
      connectionString: options.password !== undefined ? withPassword(url, options.password) : url,
      application_name: options.applicationName ?? 'orion-db',
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      // The kernel probes an idle connection, so a peer that vanished is noticed on a quiet socket too.
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      ...(options.queryTimeoutMs !== undefined
        ? { query_timeout: Math.max(1, Math.floor(options.queryTimeoutMs)) }
        : {}),
    });
  } catch (err: any) {
    throw new ConnectionError(`invalid database URL ${redactUrl(url)}: ${scrub(err.message, url)}`);
  }
  // A dropped connection is reported by the query that was running; don't let it crash the process.
  // A session the server ends while no query runs is told only here: remembered for sessionEndedByServer.
  client.on('error', (err) => {
    if (isSessionEndedByServer(err)) endedByServer.add(client);
  });
  // Always: a query may carry its own read timeout (query_timeout), with or without the connection's.
  closeOnReadTimeout(client);
  try {
    await client.connect();
  } catch (err: any) {
    await client.end().catch(() => {});
    const network = networkProblem(err);
    if (network)
      throw new ConnectionError(`could not connect to ${hostPort(url)}: ${network} (${redactUrl(url)})`, err.code);
    throw new ConnectionError(
      `could not connect to ${redactUrl(url)}: ${scrub(err.message ?? String(err), url)}`,
      err.code,
    );
  }
  return client;
}

const endedByServer = new WeakSet<Client>();

/** The server ended the session: FATAL 57P01 admin_shutdown (pg_terminate_backend, a shutdown), 57P02 crash_shutdown. */
export function isSessionEndedByServer(err: unknown): boolean {
  const e = err as { severity?: unknown; code?: unknown };
  return e?.severity === 'FATAL' && (e.code === '57P01' || e.code === '57P02');
}

/**
 * Whether the server ended this session itself (FATAL 57P01 or 57P02: pg_terminate_backend, a
 * shutdown) while no query was running; the next query then fails only with "not queryable".
 */
export function sessionEndedByServer(client: Client): boolean {
  return endedByServer.has(client);
}

/**
 * pg gives up a query that got no answer but keeps the connection, so every later query (a ROLLBACK, the
 * ledger's bookkeeping, the lock's release) would queue behind the silent one and wait its own timeout:
 * minutes each in the Lambda. The first read timeout destroys the socket, and the rest fail at once.
 */
function closeOnReadTimeout(client: Client): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise)
      result.catch((err) => {
        // pg's own words for its read timeout; a server error (one with a code) never closes the socket.
        if ((err as Error)?.message === 'Query read timeout' && !(err as { code?: unknown })?.code)
          (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      });
    return result;
  };
}

/** A network failure in words (the server never answered), or undefined for a server's refusal. */
function networkProblem(err: { code?: string; message?: string }): string | undefined {
  const words: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the server running, on this port?)',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'the host name could not be resolved (DNS), try again',
    ECONNRESET: 'the connection was reset',
    ETIMEDOUT: 'the connection timed out',
    EHOSTUNREACH: 'the host is unreachable',
    ENETUNREACH: 'the network is unreachable',
  };
  if (err.code && words[err.code]) return words[err.code];
  if (/timeout expired|connection timeout/i.test(err.message ?? '')) return 'no answer within the connect timeout';
  return undefined;
}

function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    return '<unparseable database URL>';
  }
}

/**
 * Ends a connection that may be dead: a polite end waits for the server's goodbye, which a silent
 * socket never sends, so after `waitMs` the socket is destroyed.
 */
export async function closeQuietly(client: Client, waitMs = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ended = client.end().catch(() => {});
  const late = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      resolve();
    }, waitMs);
  });
  await Promise.race([ended, late]);
  clearTimeout(timer);
}

/** Not reachable (yet): no DNS answer, nothing listening, no route, a timeout, or the server starting up. */
const UNREACHABLE = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '57P03', // cannot_connect_now: starting up or shutting down
]);

export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof ConnectionError)) return false;
  return UNREACHABLE.has(err.code ?? '') || /timeout expired|connection timeout|no answer within/i.test(err.message);
}

/**
 * `connect`, tried again while the server is unreachable, for at most `retryForMs`: after an RDS
 * instance is renamed into place its endpoint's DNS name takes minutes to resolve again. Any other
 * error (a wrong password, a missing database) fails at once; so does the last unreachable one.
 */
export async function connectWhenReachable(
  url: string,
  options: ConnectOptions & { readonly retryForMs: number; readonly intervalMs?: number },
): Promise<Client> {
  const deadline = Date.now() + options.retryForMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await connect(url, options);
    } catch (err) {
      const wait = Math.min(options.intervalMs ?? 5_000, deadline - Date.now());
      if (!isUnreachable(err)) throw err;
      if (wait <= 0) {
        if (attempt === 1) throw err;
        throw new ConnectionError(
          `${(err as ConnectionError).message} (unreachable for ${Math.round(options.retryForMs / 1000)} s, ${attempt} attempts)`,
          (err as ConnectionError).code,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

/** The URL with its password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable database URL>';
  }
}

/** Removes the URL's password from a message, in case a driver echoes it. */
export function scrub(message: string, url: string): string {
  try {
    const password = decodeURIComponent(new URL(url).password);
    return password ? message.split(password).join('***') : message;
  } catch {
    return message;
  }
}

/** The database name in a URL, or undefined. */
export function databaseOf(url: string): string | undefined {
  try {
    return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || undefined;
  } catch {
    return undefined;
  }
}

/** The same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = '/' + encodeURIComponent(database);
  return u.toString();
}

function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.toString();
}

/** The same server and database as another user, with no password in the URL. */
export function withUser(url: string, user: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = '';
  return u.toString();
}

/** Quotes an identifier for SQL (the value must already be validated). */
export function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** `"schema"."name"`, or `"name"` when the parser found no schema. */
export function quoteQualified(schema: string | undefined, name: string): string {
  return (schema ? quoteIdent(schema) + '.' : '') + quoteIdent(name);
}
