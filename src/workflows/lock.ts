/**
 * One per model: grants the right to change the model's Production version to one lifecycle at a time.
 * MLflow's own archive_existing_versions does not lock, so two approvals at the same moment could both end in
 * Production without this.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { acquireLockSignal, lockGrantedSignal, lockStateQuery, releaseLockSignal, type LockRequest } from './definitions.js';

export interface LockInput {
  model: string;
  queue?: LockRequest[];
}

/** A holder that never releases (its workflow was terminated) loses the lock after this long. */
const DEFAULT_LEASE_MS = 6 * 60 * 60 * 1000;
/** An idle lock completes; the next request starts a new run through signal-with-start. */
const IDLE_MS = 10 * 60 * 1000;
const GRANTS_PER_RUN = 200;

export async function modelProductionLock(input: LockInput): Promise<void> {
  const queue: LockRequest[] = [...(input.queue ?? [])];
  let holder: LockRequest | undefined;

  setHandler(acquireLockSignal, (req) => {
    // Activities retry, so the same request can arrive twice.
    if (holder?.requestId === req.requestId || queue.some((q) => q.requestId === req.requestId)) return;
    queue.push(req);
  });
  setHandler(releaseLockSignal, ({ requestId }) => {
    if (holder?.requestId === requestId) holder = undefined;
    else {
      const i = queue.findIndex((q) => q.requestId === requestId);
      if (i >= 0) queue.splice(i, 1);
    }
  });
  setHandler(lockStateQuery, () => ({ holder, queue }));

  for (let grants = 0; grants < GRANTS_PER_RUN && !workflowInfo().continueAsNewSuggested; grants++) {
    const busy = await condition(() => queue.length > 0, IDLE_MS);
    // Completing with a signal in flight is safe: the server rejects the completion and replays with it.
    if (!busy) return;
    const next = queue.shift()!;
    holder = next;
    try {
      await getExternalWorkflowHandle(next.workflowId).signal(lockGrantedSignal, { requestId: next.requestId });
    } catch (err) {
      log.warn('lock requester is gone; skipping', { requester: next.workflowId, error: String(err) });
      holder = undefined;
      continue;
    }
    const released = await condition(() => holder?.requestId !== next.requestId, next.leaseMs ?? DEFAULT_LEASE_MS);
    if (!released) {
      log.error('lock lease expired; releasing', { requester: next.workflowId });
      holder = undefined;
    }
  }
  await condition(allHandlersFinished);
  await continueAsNew<typeof modelProductionLock>({ model: input.model, queue });
}
