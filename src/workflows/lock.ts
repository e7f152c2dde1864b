/**
 * One per model: grants the right to change the model's Production version to one lifecycle at a time.
 * MLflow's own archive_existing_versions does not lock, so two approvals at the same moment could both end in
 * Production without this.
 *
 * Each grant carries a fencing token (monotonic per model) that is written to the registered model's
 * `modelgate.lock_token` tag before the holder hears of it; Production-changing activities refuse any other
 * token. A lease that runs out is revoked to its holder, and the next grant's token makes the old one stale,
 * so a stalled holder that wakes up later cannot be a second writer.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  acquireLockSignal,
  lockGrantedSignal,
  lockRevokedSignal,
  lockStateQuery,
  releaseLockSignal,
  type LockRequest,
  HISTORY_BUDGET,
} from './definitions.js';
import type { LockActivities } from '../activities/lock.js';
import { PATCHES } from './patches.js';
import { budgetReached } from './waits.js';

export interface LockInput {
  model: string;
  queue?: LockRequest[];
  /** The last token granted; absent on a fresh start, when it is rebuilt from MLflow. */
  token?: number;
  /** The grant still held when the previous run continued as new (PATCHES.boundedLock), with its lease's end. */
  holder?: Holder;
  /** Continue as new at this many events (default HISTORY_BUDGET, or when the server suggests it); tests set it low. */
  historyBudget?: number;
}

/** A holder that never releases (its workflow was terminated) loses the lock after this long. */
const DEFAULT_LEASE_MS = 6 * 60 * 60 * 1000;
/** An idle lock completes; the next request starts a new run through signal-with-start. */
const IDLE_MS = 10 * 60 * 1000;
const GRANTS_PER_RUN = 200;

const fence = proxyActivities<Pick<LockActivities, 'nextFenceToken'>>({
  startToCloseTimeout: '30s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' },
});

type Holder = LockRequest & { token?: number; grantedAt?: string; /** epoch ms the lease runs out */ leaseUntil?: number };

export async function modelProductionLock(input: LockInput): Promise<void> {
  const queue: LockRequest[] = [...(input.queue ?? [])];
  let holder: Holder | undefined = input.holder;
  let token = input.token;

  setHandler(acquireLockSignal, (req) => {
    // Activities retry and waiting lifecycles re-request, so the same request can arrive many times.
    if (holder?.requestId === req.requestId || queue.some((q) => q.requestId === req.requestId)) return;
    queue.push(req);
  });
  setHandler(releaseLockSignal, ({ requestId, token: released }) => {
    // A release names its grant's token: a late release of a revoked grant must not free a newer one.
    if (holder?.requestId === requestId && (released === undefined || holder.token === undefined || released === holder.token)) holder = undefined;
    else if (released === undefined) {
      const i = queue.findIndex((q) => q.requestId === requestId);
      if (i >= 0) queue.splice(i, 1);
    }
  });
  setHandler(lockStateQuery, () => ({ holder, queue, token }));

  // Waiting lifecycles re-request every few minutes while a holder holds the lock for hours: without this the
  // history of one long lease grows with every waiter's request (older runs keep their path through replay).
  const bounded = patched(PATCHES.boundedLock);
  // A step before the budget, so no run ends past it (runs started before the patch: at the budget).
  const headroom = bounded && patched(PATCHES.budgetHeadroom);
  const overBudget = () => bounded && (workflowInfo().continueAsNewSuggested || budgetReached(workflowInfo().historyLength, input.historyBudget ?? HISTORY_BUDGET, headroom));
  const rollOver = async (): Promise<never> => {
    await condition(allHandlersFinished);
    return continueAsNew<typeof modelProductionLock>({
      model: input.model, queue, ...(token !== undefined ? { token } : {}), ...(holder ? { holder } : {}),
      ...(input.historyBudget !== undefined ? { historyBudget: input.historyBudget } : {}),
    });
  };

  /** Until the holder releases or its lease runs out (then it is revoked); continues as new over budget. */
  const watch = async (granted: Holder, leaseMs: number): Promise<void> => {
    const released = await condition(() => holder !== granted || overBudget(), bounded ? Math.max(1, (granted.leaseUntil ?? Date.now() + leaseMs) - Date.now()) : leaseMs);
    if (holder !== granted) return;
    if (released) await rollOver();
    log.error('lock lease expired; revoking', { requester: granted.workflowId, token: granted.token });
    holder = undefined;
    if (granted.token !== undefined) {
      try {
        await getExternalWorkflowHandle(granted.workflowId).signal(lockRevokedSignal, { requestId: granted.requestId, token: granted.token });
      } catch (err) {
        log.warn('revoked holder is gone', { requester: granted.workflowId, error: String(err) });
      }
    }
  };

  // The previous run continued as new while this grant was held: the same lease goes on.
  if (input.holder) await watch(input.holder, input.holder.leaseMs ?? DEFAULT_LEASE_MS);

  for (let grants = 0; grants < GRANTS_PER_RUN && !workflowInfo().continueAsNewSuggested && !overBudget(); grants++) {
    const busy = await condition(() => queue.length > 0, IDLE_MS);
    // Completing with a signal in flight is safe: the server rejects the completion and replays with it.
    if (!busy) {
      await condition(allHandlersFinished);
      return;
    }
    const next = queue.shift()!;
    const leaseMs = next.leaseMs ?? DEFAULT_LEASE_MS;
    let granted: Holder = next;
    if (patched(PATCHES.fencedLock)) {
      // Written to MLflow before the holder hears of it: from here on, every earlier token is stale.
      // Workflow time in ms, above the last token: unique without reading MLflow first, also across lock runs
      // (the check is equality, so only a reused value could let a stale holder through).
      token = await fence.nextFenceToken({ model: input.model, token: Math.max((token ?? 0) + 1, Date.now()) });
      granted = { ...next, token, grantedAt: new Date().toISOString(), ...(bounded ? { leaseUntil: Date.now() + leaseMs } : {}) };
    }
    holder = granted;
    try {
      await getExternalWorkflowHandle(next.workflowId).signal(lockGrantedSignal, {
        requestId: next.requestId,
        ...(granted.token !== undefined ? { token: granted.token, leaseMs } : {}),
      });
    } catch (err) {
      log.warn('lock requester is gone; skipping', { requester: next.workflowId, error: String(err) });
      holder = undefined;
      continue;
    }
    await watch(granted, leaseMs);
  }
  await rollOver();
}
