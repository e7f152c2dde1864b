/**
 * The fencing check of Production-changing registry activities. The lock workflow grants the Production lock
 * with a monotonic token and records it on the registered model (tag modelgate.lock_token); a holder whose
 * grant was taken back (lease expired, lock reset) still carries its old token, and must not write.
 */
import { ApplicationFailure } from '@temporalio/common';
import { TAG_MODEL } from '../mlflow/tags.js';
import type { RegisteredModel } from '../mlflow/types.js';
import { FailureTypes } from '../workflows/definitions.js';

export interface Fence {
  token: number;
  /** Epoch ms the grant's lease ends for its holder: an attempt that runs later (a stalled worker) refuses. */
  until?: number;
}

/** Before any read: an attempt that runs after its grant's lease (a paused or partitioned worker) never writes. */
export function checkLease(model: string, fence: Fence, now = Date.now()): void {
  if (fence.until === undefined || now < fence.until) return;
  throw ApplicationFailure.create({
    type: FailureTypes.StaleFence,
    nonRetryable: true,
    message: `${model}: the lease of Production lock grant ${fence.token} ran out before this attempt ran; not changing Production`,
  });
}

/** Throws StaleFence (non-retryable) unless the model's recorded token is exactly `fence.token`. */
export function checkFence(rm: RegisteredModel, fence: Fence): void {
  const recorded = rm.tags[TAG_MODEL.lockToken];
  const current = recorded !== undefined && /^\d+$/.test(recorded.trim()) ? Number(recorded.trim()) : undefined;
  if (current === fence.token) return;
  const found = recorded === undefined ? 'no lock token' : `lock token ${JSON.stringify(recorded)}`;
  throw ApplicationFailure.create({
    type: FailureTypes.StaleFence,
    nonRetryable: true,
    message: `${rm.name}: the registered model has ${found} (tag ${TAG_MODEL.lockToken}) but this change holds token ${fence.token}: another holder owns the Production lock`,
  });
}
