/** Test waits on top of the shared poller (src/util/poll.ts): on results or state, never on fixed sleeps. */
import type { WorkflowHandle } from '@temporalio/client';
import { pollUntil } from '../../src/util/poll.js';

/** Until `probe` returns a value (undefined = not yet); every 100 ms. */
export function eventually<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return pollUntil(what, probe, { intervalMs: 100, timeoutMs });
}

/** Until a condition on in-process state holds; polled tightly (the state changes on this event loop). */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await pollUntil(what, async () => (await probe()) || undefined, { intervalMs: 2, timeoutMs });
}

/**
 * Until the workflow has nothing in flight: no workflow task scheduled or running, no activity, child workflow
 * or Nexus operation pending (describe() reads the server's mutable state, written in the same transaction as
 * the history). From then on its history changes only when a timer fires or something outside sends to it, so
 * two reads of it can be compared without racing a workflow task.
 */
export function quiescent(handle: WorkflowHandle, timeoutMs = 30_000): Promise<void> {
  return pollUntil(
    `${handle.workflowId} with nothing in flight`,
    async () => {
      const { raw } = await handle.describe();
      const busy = !!raw.pendingWorkflowTask || !!raw.pendingActivities?.length || !!raw.pendingChildren?.length || !!raw.pendingNexusOperations?.length;
      return busy ? undefined : true;
    },
    { intervalMs: 50, timeoutMs },
  ).then(() => undefined);
}
