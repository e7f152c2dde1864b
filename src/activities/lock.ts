/**
 * The Production lock's side effects. The lifecycle cannot signal-with-start another workflow itself, so asking
 * the per-model lock workflow for the lock goes through an activity; repeating it is harmless (the lock dedupes
 * by requestId), and it is also how a terminated lock workflow is rebuilt: the next request starts a new one.
 * The lock workflow in turn writes each grant's fencing token to the registered model before granting.
 */
import type { Client } from '@temporalio/client';
import { acquireLockSignal, LOCK_WORKFLOW, lockWorkflowId, type LockRequest } from '../workflows/definitions.js';
import type { MlflowRegistry } from '../mlflow/types.js';
import { TAG_MODEL } from '../mlflow/tags.js';
import { toActivityError } from '../mlflow/errors.js';

export interface LockDeps {
  client: Pick<Client, 'workflow'>;
  taskQueue: string;
  mlflow: Pick<MlflowRegistry, 'getRegisteredModel' | 'setRegisteredModelTag'>;
}

/** The fencing token MLflow holds for a model (0 when none was ever written). */
export function fenceTokenOf(tags: Record<string, string>): number {
  const n = Number(tags[TAG_MODEL.lockToken]);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
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

    /**
     * Records the grant's token on the registered model before the holder hears of it, so a holder never holds
     * a token MLflow does not have; from then on every earlier grant's token is stale.
     */
    async nextFenceToken({ model, after, token: given }: { model: string; after?: number; token?: number }): Promise<number> {
      try {
        // The lock names the token (workflow time); lock runs of the release before asked for last + 1.
        const token = given ?? (after ?? fenceTokenOf((await deps.mlflow.getRegisteredModel(model)).tags)) + 1;
        await deps.mlflow.setRegisteredModelTag(model, TAG_MODEL.lockToken, String(token));
        return token;
      } catch (err) {
        throw toActivityError(err);
      }
    },
  };
}

export type LockActivities = ReturnType<typeof createLockActivities>;
