/**
 * Retries an AWS call on throttling, with exponential backoff and jitter. The SDK retries too, but
 * only inside `send`'s middleware; this also covers the quota errors RDS returns as plain faults.
 */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
]);

export interface RetryOptions {
  readonly attempts?: number;
  readonly baseDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export async function withThrottlingRetries<T>(call: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 6;
  const base = options.baseDelayMs ?? 200;
  const sleep = options.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  for (let n = 1; ; n++) {
    try {
      return await call();
    } catch (err: any) {
      if (n >= attempts || !THROTTLING.has(err?.name)) throw err;
      await sleep(base * 2 ** (n - 1) * (0.5 + Math.random() / 2));
    }
  }
}

export function isNotFound(err: any, ...names: string[]): boolean {
  return names.includes(err?.name) || err?.$metadata?.httpStatusCode === 404;
}

/** The call's result, or undefined when what it asked about does not exist. */
export async function unlessNotFound<T>(call: () => Promise<T>, fault: string): Promise<T | undefined> {
  try {
    return await call();
  } catch (err) {
    if (isNotFound(err, fault)) return undefined;
    throw err;
  }
}
