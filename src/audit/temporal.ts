/**
 * LifecycleReader over a Temporal client: visibility list queries on modelgate's search attributes, and a
 * lifecycle's state — the workflow result when it has closed (read from history, no worker needed), else the
 * `state` query, bounded by a deadline so an audit never hangs on a worker that is down.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import {
  APPROVER,
  lifecycleWorkflowId,
  MODEL_NAME,
  MODEL_STAGE,
  MODEL_VERSION,
  OUTCOME,
  stateQuery,
  type LifecycleState,
} from '../workflows/definitions.js';
import type { LifecycleReader, VisibilityRow } from './types.js';

export function toVisibilityRow(info: WorkflowExecutionInfo): VisibilityRow {
  const sa = info.typedSearchAttributes;
  const version = sa.get(MODEL_VERSION);
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    type: info.type,
    status: info.status.name,
    startTime: info.startTime.toISOString(),
    ...(info.closeTime ? { closeTime: info.closeTime.toISOString() } : {}),
    ...(sa.get(MODEL_NAME) !== undefined ? { model: sa.get(MODEL_NAME) } : {}),
    ...(version !== undefined ? { version: Number(version) } : {}),
    ...(sa.get(MODEL_STAGE) !== undefined ? { stage: sa.get(MODEL_STAGE) } : {}),
    approvers: sa.get(APPROVER) ?? [],
    ...(sa.get(OUTCOME) !== undefined ? { outcome: sa.get(OUTCOME) } : {}),
  };
}

export interface TemporalReaderOptions {
  /** Deadline of one state read; default 5 s. */
  stateTimeoutMs?: number;
}

export function temporalLifecycleReader(client: Client, opts: TemporalReaderOptions = {}): LifecycleReader {
  const timeoutMs = opts.stateTimeoutMs ?? 5_000;
  return {
    async list(query, { limit = 1000 } = {}) {
      const rows: VisibilityRow[] = [];
      for await (const info of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
        rows.push(toVisibilityRow(info));
        if (rows.length >= limit) break;
      }
      return rows;
    },

    async state(model, version): Promise<LifecycleState | null> {
      const handle = client.workflow.getHandle(lifecycleWorkflowId(model, version));
      try {
        return await client.withDeadline(Date.now() + timeoutMs, async () => {
          const desc = await handle.describe();
          if (desc.status.name === 'COMPLETED') return (await handle.result()) as LifecycleState;
          return await handle.query(stateQuery);
        });
      } catch {
        // No such lifecycle, no worker to answer the query, deadline passed: the caller falls back to MLflow tags.
        return null;
      }
    },
  };
}

/**
 * A visibility query literal. Temporal's list filter has no documented escape, so a value that needs one is
 * refused rather than guessed at.
 */
export function queryLiteral(value: string, what: string): string {
  if (/[\\\n\r]/.test(value) || (value.includes("'") && value.includes('"'))) {
    throw new Error(`${what} ${JSON.stringify(value)} cannot be used in a Temporal visibility query (quotes of both kinds or a backslash)`);
  }
  return value.includes("'") ? `"${value}"` : `'${value}'`;
}
