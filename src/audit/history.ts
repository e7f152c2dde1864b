/**
 * `modelgate history`: every promotion, rejection, expiry and rollback, from Temporal visibility list queries on
 * the lifecycle's search attributes (ModelName, Approver, ModelgateOutcome). One row per lifecycle (= version).
 */
import { LIFECYCLE_WORKFLOW } from '../workflows/definitions.js';
import { queryLiteral } from './temporal.js';
import type { LifecycleReader, VisibilityRow } from './types.js';

export type HistoryEvent = 'promotion' | 'rejection' | 'expiry' | 'rollback' | 'registration_failed' | 'in_progress' | 'aborted';

export interface HistoryEntry {
  model: string | null;
  version: number | null;
  event: HistoryEvent;
  /** One line: what happened and where the version is now. */
  detail: string;
  outcome: string | null;
  stage: string | null;
  approvers: string[];
  /** Temporal's execution status. */
  status: string;
  startedAt: string;
  closedAt: string | null;
  workflowId: string;
}

export interface HistoryFilter {
  model?: string;
  approver?: string;
  outcome?: string;
}

export function historyQuery(f: HistoryFilter): string {
  if (!f.model && !f.approver) throw new Error('history needs a model or --approver');
  const parts = [`WorkflowType = ${queryLiteral(LIFECYCLE_WORKFLOW, 'workflow type')}`];
  if (f.model) parts.push(`ModelName = ${queryLiteral(f.model, 'model name')}`);
  // Approver is a KeywordList: `=` matches when the list contains the value.
  if (f.approver) parts.push(`Approver = ${queryLiteral(f.approver, 'approver')}`);
  if (f.outcome) parts.push(`ModelgateOutcome = ${queryLiteral(f.outcome, 'outcome')}`);
  return parts.join(' AND ');
}

export function classify(row: VisibilityRow): { event: HistoryEvent; detail: string } {
  switch (row.outcome) {
    case 'superseded':
      return { event: 'promotion', detail: 'was Production; superseded' };
    case 'retired':
      return { event: 'promotion', detail: 'was Production; retired' };
    case 'rolled_back':
      return { event: 'rollback', detail: 'rollout failed; rolled back' };
    case 'rejected':
      return { event: 'rejection', detail: `rejected${row.approvers.length ? ` (approvals before: ${row.approvers.join(', ')})` : ''}` };
    case 'rejected_by_evaluation':
      return { event: 'rejection', detail: 'failed the evaluation gate' };
    case 'expired':
      return { event: 'expiry', detail: 'approval window expired' };
    case 'registration_failed':
      return { event: 'registration_failed', detail: 'MLflow registration failed' };
  }
  if (row.status === 'RUNNING') {
    if (row.stage === 'Production') return { event: 'promotion', detail: 'in Production' };
    return { event: 'in_progress', detail: `in ${row.stage ?? 'None'}, lifecycle running` };
  }
  return { event: 'aborted', detail: `lifecycle ${row.status.toLowerCase()} without an outcome` };
}

/** Newest first: by start time (a lifecycle starts when its version is registered), then version. */
export function toHistoryEntries(rows: VisibilityRow[]): HistoryEntry[] {
  return rows
    .map((row): HistoryEntry => {
      const { event, detail } = classify(row);
      return {
        model: row.model ?? null,
        version: row.version ?? null,
        event,
        detail,
        outcome: row.outcome ?? null,
        stage: row.stage ?? null,
        approvers: row.approvers,
        status: row.status,
        startedAt: row.startTime,
        closedAt: row.closeTime ?? null,
        workflowId: row.workflowId,
      };
    })
    .sort((a, b) => b.startedAt.localeCompare(a.startedAt) || (b.version ?? 0) - (a.version ?? 0));
}

export async function listHistory(reader: LifecycleReader, filter: HistoryFilter, opts: { limit?: number } = {}): Promise<HistoryEntry[]> {
  return toHistoryEntries(await reader.list(historyQuery(filter), { limit: opts.limit ?? 1000 }));
}
