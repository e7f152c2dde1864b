/**
 * The lifecycle cannot signal-with-start another workflow itself, so asking the per-model lock workflow for
 * the Production lock goes through this activity. Repeating it is harmless: the lock dedupes by requestId.
 */
import type { Client } from '@temporalio/client';
import { acquireLockSignal, LOCK_WORKFLOW, lockWorkflowId, type LockRequest } from '../workflows/definitions.js';

export interface LockDeps {
  client: Pick<Client, 'workflow'>;
  taskQueue: string;
}

export function createLockActivities(deps: LockDeps) {
  return {
    async requestProductionLock({ model, request }: { model: string; request: LockRequest }): Promise<void> {
      await deps.client.workflow.signalWithStart(LOCK_WORKFLOW, {
        workflowId: lockWorkflowId(model),
        taskQueue: deps.taskQueue,
        args: [{ model }],
        signal: acquireLockSignal,
        signalArgs: [request],
        staticSummary: `Production lock of ${model}`,
      });
    },
  };
}

export type LockActivities = ReturnType<typeof createLockActivities>;
