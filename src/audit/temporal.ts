/**
 * LifecycleReader over a Temporal client: visibility list queries on modelgate's search attributes, and a
 * lifecycle's state — the workflow result when it has closed (read from history, no worker needed), else the
 * `state` query, bounded by a deadline so an audit never hangs on a worker that is down.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  APPROVER,
  lifecycleWorkflowId,
  MODEL_NAME,
  MODEL_STAGE,
  MODEL_VERSION,
  OUTCOME,
  stateQuery,
  type LifecycleInput,
  type LifecycleState,
} from '../workflows/definitions.js';
import type { LifecycleReader, LifecycleRun, RunRequest, VisibilityRow } from './types.js';
import { foldContinued } from './runs.js';

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
      return runState(lifecycleWorkflowId(model, version));
    },

    async runs(model, version): Promise<LifecycleRun[]> {
      const workflowId = lifecycleWorkflowId(model, version);
      const rows: VisibilityRow[] = [];
      for await (const info of client.workflow.list({ query: `WorkflowId = ${queryLiteral(workflowId, 'workflow id')}` })) rows.push(toVisibilityRow(info));
      // Runs that continued as new are one run of the story: fold each chain into the run that went on.
      const folded = foldContinued(rows).sort((a, b) => a.startTime.localeCompare(b.startTime));
      return Promise.all(
        folded.map(async (r): Promise<LifecycleRun> => {
          const state = await runState(workflowId, r.runId);
          const request = state ? state.request : (await startInput(client, workflowId, r.runId))?.request;
          return {
            workflowId, runId: r.runId, status: r.status, startTime: r.startTime,
            ...(r.closeTime ? { closeTime: r.closeTime } : {}),
            ...(state?.outcome ?? r.outcome ? { outcome: state?.outcome ?? r.outcome } : {}),
            ...(request ? { request } : {}),
            ...(r.continuedRuns ? { continuedAsNew: r.continuedRuns } : {}),
            state,
          };
        }),
      );
    },

    async request(workflowId, runId): Promise<RunRequest | undefined> {
      return (await startInput(client, workflowId, runId))?.request;
    },
  };

  /** A run's state: its result when completed (from history, no worker needed), else the `state` query. */
  async function runState(workflowId: string, runId?: string): Promise<LifecycleState | null> {
    const handle = client.workflow.getHandle(workflowId, runId);
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
  }
}

/** The input a run was started with (its first history event), null when the run is not in Temporal. */
export async function startInput(client: Client, workflowId: string, runId?: string): Promise<LifecycleInput | null> {
  try {
    const res = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId, ...(runId ? { runId } : {}) },
      maximumPageSize: 1,
    });
    const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    return payload ? defaultPayloadConverter.fromPayload<LifecycleInput>(payload) : null;
  } catch {
    return null;
  }
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
