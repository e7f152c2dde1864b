/**
 * Why a lifecycle did not answer its state query, and whether a repeated lock-token write was one grant or
 * two — read from Temporal (describe + history), not from one query that may just have timed out under load.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { lifecycleWorkflowId, lockWorkflowId } from '../../src/workflows/definitions.js';

export interface StuckDiagnosis {
  /** `task-failing`: its workflow tasks fail or time out again and again (a real bug); `slow`: none did. */
  verdict: 'task-failing' | 'slow' | 'completed' | 'unknown';
  text: string;
  /** Its history as JSON (written next to the servers' data so a replay test can be made of it). */
  historyJson?: string;
}

const one = (s: string | null | undefined) => (s ?? '').split('\n')[0].slice(0, 200);

export async function diagnoseLifecycle(client: Client, model: string, version: number): Promise<StuckDiagnosis> {
  const handle = client.workflow.getHandle(lifecycleWorkflowId(model, version));
  const parts: string[] = [];
  let completed = false;
  try {
    const d = await client.withDeadline(Date.now() + 30_000, () => handle.describe());
    parts.push(`status ${d.status.name}, history ${d.historyLength} events`);
    completed = d.status.name === 'COMPLETED';
    const pwt = d.raw.pendingWorkflowTask;
    if (pwt) parts.push(`pending workflow task ${String(pwt.state)} attempt ${pwt.attempt ?? 1}`);
    for (const a of d.raw.pendingActivities ?? []) {
      parts.push(`pending activity ${a.activityType?.name ?? '?'} attempt ${a.attempt ?? 1}${a.lastFailure ? ` last failure: ${one(a.lastFailure.message)}` : ''}`);
    }
  } catch (err) {
    parts.push(`describe failed: ${one((err as Error).message)}`);
    return { verdict: 'unknown', text: parts.join('; ') };
  }
  let failed = 0;
  let timedOut = 0;
  const messages = new Map<string, number>();
  let historyJson: string | undefined;
  try {
    const history = await client.withDeadline(Date.now() + 60_000, () => handle.fetchHistory());
    historyJson = JSON.stringify(history);
    for (const e of history.events ?? []) {
      if (e.workflowTaskFailedEventAttributes) {
        failed++;
        const a = e.workflowTaskFailedEventAttributes;
        const m = `${String(a.cause)}: ${one(a.failure?.message)}`;
        messages.set(m, (messages.get(m) ?? 0) + 1);
      } else if (e.workflowTaskTimedOutEventAttributes) timedOut++;
    }
  } catch (err) {
    parts.push(`history failed: ${one((err as Error).message)}`);
  }
  parts.push(`WorkflowTaskFailed ${failed}, WorkflowTaskTimedOut ${timedOut}`);
  for (const [m, n] of messages) parts.push(`×${n} ${m}`);
  return { verdict: failed > 0 ? 'task-failing' : completed ? 'completed' : 'slow', text: parts.join('; '), ...(historyJson ? { historyJson } : {}) };
}

/** How many grants of `token` the model's lock workflow made: nextFenceToken activities scheduled with it. */
export async function grantsOfToken(client: Client, model: string, token: number): Promise<{ scheduled: number; attempts: number[] } | undefined> {
  try {
    let scheduled = 0;
    const attempts: number[] = [];
    const ids = new Map<string, string>();
    for await (const w of client.workflow.list({ query: `WorkflowId = '${lockWorkflowId(model)}'` })) ids.set(w.runId, w.workflowId);
    for (const [runId, workflowId] of ids) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      const tokenOf = new Map<string, number>();
      for (const e of history.events ?? []) {
        const s = e.activityTaskScheduledEventAttributes;
        if (s?.activityType?.name === 'nextFenceToken') {
          const input = s.input?.payloads?.[0] ? defaultPayloadConverter.fromPayload<{ token?: number }>(s.input.payloads[0]) : {};
          if (input.token === token) {
            scheduled++;
            tokenOf.set(String(e.eventId), token);
          }
        }
        const st = e.activityTaskStartedEventAttributes;
        if (st && tokenOf.has(String(st.scheduledEventId))) attempts.push(st.attempt ?? 1);
      }
    }
    return { scheduled, attempts };
  } catch {
    return undefined;
  }
}
