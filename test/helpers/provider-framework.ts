/**
 * The CDK Provider framework as its runtime behaves (aws-cdk-lib custom-resources provider-framework:
 * runtime/framework.ts, cfn-response.ts safeHandler, and the waiter state machine):
 * - onEvent's answer is merged into the event every isComplete gets (createResponseEvent);
 * - isComplete returning IsComplete false is a Retry (with Data: an error); the waiter's Retry on
 *   States.ALL runs it again up to MaxAttempts times, then onTimeout answers FAILED "Operation timed out";
 * - anything isComplete throws (a FunctionError, a Lambda timeout included) is answered FAILED at once,
 *   with the error message as the reason: there is no second poll;
 * - a failed Create gets the marker physical id, so its Delete is ignored.
 */
export interface Handlers<E, C> {
  onEvent(event: E): Promise<{ PhysicalResourceId?: string; Data?: Record<string, unknown> }>;
  isComplete(event: E, context: C): Promise<{ IsComplete: boolean; Data?: Record<string, unknown> }>;
}

export interface ProviderAnswer {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason: string;
  readonly PhysicalResourceId?: string;
  readonly Data?: Record<string, unknown>;
  /** isComplete invocations made. */
  readonly polls: number;
}

export const CREATE_FAILED_PHYSICAL_ID_MARKER = 'AWSCDK::CustomResourceProviderFramework::CREATE_FAILED';

export async function provider<E extends { RequestType: string; PhysicalResourceId?: string; RequestId?: string }, C>(
  handlers: Handlers<E, C>,
  event: E,
  context: C,
  waiter: { maxAttempts: number },
): Promise<ProviderAnswer> {
  const failed = (reason: string, polls: number, physicalId?: string): ProviderAnswer => ({
    Status: 'FAILED',
    Reason: reason,
    PhysicalResourceId:
      physicalId ??
      event.PhysicalResourceId ??
      (event.RequestType === 'Create' ? CREATE_FAILED_PHYSICAL_ID_MARKER : undefined),
    polls,
  });
  let answer: Awaited<ReturnType<Handlers<E, C>['onEvent']>>;
  try {
    answer = (await handlers.onEvent(event)) ?? {};
  } catch (err) {
    return failed((err as Error).message, 0);
  }
  const physicalId =
    answer.PhysicalResourceId ?? (event.RequestType === 'Create' ? event.RequestId : event.PhysicalResourceId);
  const resourceEvent = { ...event, ...answer, PhysicalResourceId: physicalId } as E;
  // The first attempt, then up to MaxAttempts retries.
  for (let polls = 1; polls <= waiter.maxAttempts + 1; polls++) {
    let result: Awaited<ReturnType<Handlers<E, C>['isComplete']>>;
    try {
      result = await handlers.isComplete(resourceEvent, context);
    } catch (err) {
      return failed((err as Error).message, polls, event.RequestType === 'Create' ? undefined : physicalId);
    }
    if (!result.IsComplete) {
      if (result.Data && Object.keys(result.Data).length > 0)
        return failed('"Data" is not allowed if "IsComplete" is "False"', polls, physicalId);
      continue;
    }
    return {
      Status: 'SUCCESS',
      Reason: 'SUCCESS',
      PhysicalResourceId: physicalId,
      Data: { ...answer.Data, ...result.Data },
      polls,
    };
  }
  return failed('Operation timed out', waiter.maxAttempts + 1, physicalId);
}
