/** "It does not exist" is an answer, not a failure, for the describe calls that look before they act. */

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
