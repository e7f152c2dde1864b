/**
 * The dry run's only Temporal access: describe the version's lifecycle and ask its state query. Neither can
 * change a workflow (no start, signal, update, cancel); a query of a closed lifecycle is answered by replay on a
 * worker, and a deadline keeps a dry run from hanging when no worker answers.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { lifecycleWorkflowId, stateQuery } from '../workflows/definitions.js';
import type { LifecycleView } from './compute.js';

export function lifecycleView(client: Client, queryTimeoutMs = 5_000): (model: string, version: number) => Promise<LifecycleView | undefined> {
  return async (model, version) => {
    const handle = client.workflow.getHandle(lifecycleWorkflowId(model, version));
    let status: LifecycleView['status'];
    try {
      const d = await handle.describe();
      status = d.status.name === 'RUNNING' ? 'running' : 'ended';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw err;
    }
    const state = await client.withDeadline(Date.now() + queryTimeoutMs, () => handle.query(stateQuery)).catch(() => undefined);
    return { status, ...(state ? { state } : {}) };
  };
}
