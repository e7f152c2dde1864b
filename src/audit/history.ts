/**
 * `modelgate history`: every promotion, rejection, expiry and rollback, from Temporal visibility list queries on
 * the lifecycle's search attributes (ModelName, Approver, ModelgateOutcome). One row per lifecycle run: a
 * re-promotion or rollback is a new run of the version's workflow id, marked with its request and reason.
 * Versions whose lifecycle Temporal no longer has (deleted, past retention) are answered from the `modelgate.*`
 * tags the lifecycle wrote into MLflow, and say so.
 */
import { stageOf } from '../mlflow/stages.js';
import { TAG } from '../mlflow/tags.js';
import type { MlflowRegistry, ModelVersion } from '../mlflow/types.js';
import { LIFECYCLE_WORKFLOW } from '../workflows/definitions.js';
import { mlflowLiteral } from './collect.js';
import { queryLiteral } from './temporal.js';
import type { LifecycleReader, RunRequest, VisibilityRow } from './types.js';
import { foldContinued } from './runs.js';

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
  runId: string | null;
  /** A run that is not the version's first: again or rollback, with its reason. */
  request: RunRequest | null;
  /** `mlflow-tags`: Temporal has no record of this lifecycle; the row is rebuilt from the version's tags. */
  source: 'temporal' | 'mlflow-tags';
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
    case 'lock_wait_timed_out':
      return { event: 'expiry', detail: 'approved; the Production lock was not granted in time' };
    case 'manual_merge_timed_out':
      return { event: 'expiry', detail: 'approved; the pull request was not merged by a person in time' };
    case 'manual_revert_timed_out':
      return { event: 'rollback', detail: 'rollout failed; the revert was not merged by a person in time' };
  }
  if (row.status === 'RUNNING') {
    if (row.stage === 'Production') return { event: 'promotion', detail: 'in Production' };
    return { event: 'in_progress', detail: `in ${row.stage ?? 'None'}, lifecycle running` };
  }
  return { event: 'aborted', detail: `lifecycle ${row.status.toLowerCase()} without an outcome` };
}

function withRequest(detail: string, q: RunRequest | null | undefined): string {
  if (!q) return detail;
  return `${q.kind === 'rollback' ? 'rollback' : 'promoted again'}${q.by ? ` by ${q.by}` : ''} (${q.reason}); ${detail}`;
}

/** Newest first: by start time (a lifecycle starts when its version is registered), then version. */
export function toHistoryEntries(rows: VisibilityRow[], requests: Map<string, RunRequest> = new Map()): HistoryEntry[] {
  return rows
    .map((row): HistoryEntry => {
      const { event, detail } = classify(row);
      const request = requests.get(row.runId) ?? null;
      return {
        model: row.model ?? null,
        version: row.version ?? null,
        event: request?.kind === 'rollback' && event === 'promotion' ? 'rollback' : event,
        detail: withRequest(detail, request),
        outcome: row.outcome ?? null,
        stage: row.stage ?? null,
        approvers: row.approvers,
        status: row.status,
        startedAt: row.startTime,
        closedAt: row.closeTime ?? null,
        workflowId: row.workflowId,
        runId: row.runId,
        request,
        source: 'temporal',
      };
    })
    .sort(newestFirst);
}

function newestFirst(a: HistoryEntry, b: HistoryEntry): number {
  return b.startedAt.localeCompare(a.startedAt) || (b.version ?? 0) - (a.version ?? 0);
}

/** A lifecycle Temporal has no record of, from the tags it wrote on the version (stage from the tag, not MLflow stages). */
export function entryFromTags(v: ModelVersion): HistoryEntry {
  const t = v.tags;
  // The stage as recorded: MLflow's own while stages are served, else modelgate's tag (stageOf).
  const recorded = stageOf(v);
  const stage = recorded === 'None' && t[TAG.stage] === undefined ? null : recorded;
  const outcome = t[TAG.outcome] ?? null;
  const approvers = (t[TAG.approvedBy] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const row: VisibilityRow = {
    workflowId: t[TAG.workflowId] ?? '', runId: '', type: LIFECYCLE_WORKFLOW, status: outcome ? 'COMPLETED' : stage === 'Production' ? 'RUNNING' : 'UNKNOWN',
    startTime: new Date(v.creation_timestamp).toISOString(), model: v.name, version: v.version, approvers,
    ...(stage ? { stage } : {}), ...(outcome ? { outcome } : {}),
  };
  const c = row.status === 'UNKNOWN' ? { event: 'in_progress' as const, detail: `in ${stage ?? 'None'}, no outcome recorded` } : classify(row);
  return {
    model: v.name, version: v.version, event: c.event, detail: `${c.detail} (from MLflow tags: Temporal has no record)`,
    outcome, stage, approvers, status: 'NOT_IN_TEMPORAL', startedAt: row.startTime, closedAt: t[TAG.archivedAt] ?? null,
    workflowId: row.workflowId, runId: null, request: null, source: 'mlflow-tags',
  };
}

export type HistoryRegistry = Pick<MlflowRegistry, 'searchModelVersions'>;

/** MLflow search for the versions a lifecycle tagged, by model and/or approver (approver matched exactly afterwards). */
export function mlflowHistoryFilter(f: HistoryFilter): string {
  const parts = [`tags.\`${TAG.workflowId}\` LIKE 'modelgate/%'`];
  if (f.model) parts.unshift(`name = ${mlflowLiteral(f.model)}`);
  if (f.approver) {
    if (/[%_'"]/.test(f.approver)) throw new Error(`approver ${JSON.stringify(f.approver)} cannot be searched in MLflow tags (quotes, % or _)`);
    parts.push(`tags.\`${TAG.approvedBy}\` LIKE '%${f.approver}%'`);
  }
  return parts.join(' AND ');
}

async function taggedVersions(mlflow: HistoryRegistry, f: HistoryFilter, max: number): Promise<ModelVersion[]> {
  const out: ModelVersion[] = [];
  let pageToken: string | undefined;
  do {
    const page = await mlflow.searchModelVersions({ filter: mlflowHistoryFilter(f), maxResults: Math.min(200, max - out.length), pageToken });
    out.push(...page.items);
    pageToken = page.nextPageToken;
  } while (pageToken && out.length < max);
  return out.filter((v) => {
    if (f.model && v.name !== f.model) return false;
    if (f.approver && !(v.tags[TAG.approvedBy] ?? '').split(',').map((x) => x.trim()).includes(f.approver)) return false;
    if (f.outcome && v.tags[TAG.outcome] !== f.outcome) return false;
    return true;
  });
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

export interface HistoryOptions {
  limit?: number;
  /** Where lifecycles Temporal no longer has are looked up (by their modelgate.* tags). */
  mlflow?: HistoryRegistry;
  /** Receives a line when a source could not be read (the history is then partial). */
  note?: (line: string) => void;
}

export async function listHistory(reader: LifecycleReader, filter: HistoryFilter, opts: HistoryOptions = {}): Promise<HistoryEntry[]> {
  const limit = opts.limit ?? 1000;
  // A lifecycle that continued as new is one entry (its newest run), not one per run.
  const rows = foldContinued(await reader.list(historyQuery(filter), { limit }));
  // Which runs are re-promotions or rollbacks: the request each run was started with.
  const requests = new Map<string, RunRequest>();
  if (reader.request) {
    const read = await mapLimit(rows, 8, async (r) => [r.runId, await reader.request!(r.workflowId, r.runId).catch(() => undefined)] as const);
    for (const [runId, q] of read) if (q) requests.set(runId, q);
  }
  const entries = toHistoryEntries(rows, requests);
  if (opts.mlflow) {
    try {
      const known = new Set(rows.map((r) => r.workflowId));
      const candidates = (await taggedVersions(opts.mlflow, filter, limit)).filter((v) => !known.has(v.tags[TAG.workflowId]));
      // Not in this answer may still be in Temporal (past the limit, other search attributes): ask for each.
      const absent = await mapLimit(candidates, 8, async (v) => ((await reader.list(`WorkflowId = ${queryLiteral(v.tags[TAG.workflowId], 'workflow id')}`, { limit: 1 })).length ? null : v));
      for (const v of absent) if (v) entries.push(entryFromTags(v));
    } catch (err) {
      opts.note?.(`MLflow could not be searched for lifecycles Temporal no longer has: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return entries.sort(newestFirst).slice(0, limit);
}
