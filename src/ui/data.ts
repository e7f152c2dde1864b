/**
 * What the pages show, read through the audit's readers (Temporal visibility + lifecycle states, MLflow
 * versions/runs) rather than readers of their own, so the page and `modelgate audit` never disagree.
 * Temporal or MLflow being unreachable is a note on the page, not an error page.
 */
import type { Client } from '@temporalio/client';
import { AuditError, collectAudit, mapLimit, type AuditDeps } from '../audit/collect.js';
import { queryLiteral, temporalLifecycleReader } from '../audit/temporal.js';
import type { AuditReport, LifecycleReader, ServingReader, VisibilityRow } from '../audit/types.js';
import { getState, ModelgateError } from '../client.js';
import { LIFECYCLE_WORKFLOW, type LifecycleState } from '../workflows/definitions.js';
import type { DryRun, DryRunReport } from '../dryrun/types.js';
import type { IdentityRef } from '../identity/types.js';

export interface UiData {
  client: Client;
  mlflow?: AuditDeps['mlflow'];
  serving?: ServingReader;
  dryRun?: DryRun;
  /** Defaults to the audit's Temporal reader over `client`. */
  lifecycles?: LifecycleReader;
}

export interface PendingItem {
  state: LifecycleState;
  /** When the version started waiting (deadline − expiry), ISO. */
  waitingSince?: string;
}

/** The most lifecycles one pending list reads (each is one state query). */
export const PENDING_LIMIT = 200;

function reader(d: UiData): LifecycleReader {
  return d.lifecycles ?? temporalLifecycleReader(d.client, { stateTimeoutMs: 3000 });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

export function waitingSince(s: LifecycleState): string | undefined {
  const deadline = s.approvalDeadline ? Date.parse(s.approvalDeadline) : NaN;
  const expires = s.policy?.approval.expiresAfterMs;
  if (!Number.isFinite(deadline) || !expires) return undefined;
  return new Date(deadline - expires).toISOString();
}

/** Running lifecycles awaiting approval, newest wait first; `model` filters. */
export async function readPending(d: UiData, model?: string): Promise<{ items: PendingItem[]; notes: string[] }> {
  const r = reader(d);
  let q = `WorkflowType = ${queryLiteral(LIFECYCLE_WORKFLOW, 'workflow type')} AND ExecutionStatus = 'Running'`;
  if (model) q += ` AND ModelName = ${queryLiteral(model, 'model name')}`;
  let rows: VisibilityRow[];
  try {
    rows = await r.list(q, { limit: PENDING_LIMIT });
  } catch (err) {
    return { items: [], notes: [`Temporal could not be read: ${message(err)}`] };
  }
  const states = await mapLimit(rows, 8, (row) => (row.model !== undefined && row.version !== undefined ? r.state(row.model, row.version) : Promise.resolve(null)));
  const items = states
    .filter((s): s is LifecycleState => !!s && s.phase === 'awaiting_approval')
    .map((state) => ({ state, waitingSince: waitingSince(state) }))
    .sort((a, b) => (b.waitingSince ?? '').localeCompare(a.waitingSince ?? '') || b.state.version - a.state.version);
  return { items, notes: [] };
}

export interface ModelView {
  model: string;
  /** The audit of what serves now; null with a note when nothing serves or MLflow is not configured. */
  serving: AuditReport | null;
  lifecycles: VisibilityRow[];
  notes: string[];
}

export async function readModel(d: UiData, model: string): Promise<ModelView> {
  const notes: string[] = [];
  let lifecycles: VisibilityRow[] = [];
  const r = reader(d);
  try {
    lifecycles = await r.list(`WorkflowType = ${queryLiteral(LIFECYCLE_WORKFLOW, 'workflow type')} AND ModelName = ${queryLiteral(model, 'model name')}`, { limit: 500 });
  } catch (err) {
    notes.push(`Temporal could not be read: ${message(err)}`);
  }
  let serving: AuditReport | null = null;
  if (!d.mlflow) notes.push('MLflow is not configured for the API: what serves cannot be shown');
  else {
    try {
      serving = await collectAudit({ mlflow: d.mlflow, lifecycles: r, serving: d.serving }, model);
    } catch (err) {
      notes.push(err instanceof AuditError ? err.message : `MLflow could not be read: ${message(err)}`);
    }
  }
  return { model, serving, lifecycles, notes };
}

export interface VersionView {
  model: string;
  version: number;
  state: LifecycleState | null;
  audit: AuditReport | null;
  dryRun: { report: DryRunReport } | { unavailable: string };
  /** The Production version before the one serving now, with its run's metrics (the comparison's third column). */
  previousServing: { version: number; metrics: Record<string, number> } | null;
  /** The serving version's run metrics (the comparison's second column), when another version serves. */
  servingMetrics?: { version: number; metrics: Record<string, number> } | null;
  notes: string[];
}

/** The version that served before the current Production one, from the audit's Production history. */
export function previousServingVersion(audit: AuditReport, self: number): number | null {
  const serving = audit.serving.productionVersion;
  const ended = audit.productionHistory.filter((i) => i.to && i.version !== serving && i.version !== self);
  ended.sort((a, b) => (b.to ?? '').localeCompare(a.to ?? ''));
  return ended[0]?.version ?? null;
}

async function runMetrics(mlflow: AuditDeps['mlflow'], model: string, version: number): Promise<Record<string, number> | null> {
  const v = await mlflow.getModelVersion(model, version);
  return v.run_id ? (await mlflow.getRun(v.run_id)).metrics : null;
}

export async function readVersion(d: UiData, model: string, version: number, caller: IdentityRef): Promise<VersionView> {
  const notes: string[] = [];
  const r = reader(d);
  const [state, audit, dryRun] = await Promise.all([
    getState(d.client, model, version).catch((err: unknown) => {
      if (err instanceof ModelgateError && err.code === 'not_found') notes.push(`no lifecycle was started for ${model} version ${version}`);
      else notes.push(`the lifecycle could not be read: ${message(err)}`);
      return null;
    }),
    d.mlflow
      ? collectAudit({ mlflow: d.mlflow, lifecycles: r, serving: d.serving }, model, { version }).catch((err: unknown) => {
          notes.push(err instanceof AuditError ? err.message : `MLflow could not be read: ${message(err)}`);
          return null;
        })
      : Promise.resolve(null),
    d.dryRun
      ? d.dryRun({ model, version, caller }).then(
          (report) => ({ report }),
          (err: unknown) => ({ unavailable: `dry run failed: ${message(err)}` }),
        )
      : Promise.resolve({ unavailable: 'dry run unavailable (not configured on this API)' }),
  ]);
  if (!d.mlflow) notes.push('MLflow is not configured for the API: run lineage and metrics cannot be shown');
  let previousServing: VersionView['previousServing'] = null;
  const prev = audit && d.mlflow ? previousServingVersion(audit, version) : null;
  if (prev !== null && d.mlflow) {
    const metrics = await runMetrics(d.mlflow, model, prev).catch(() => null);
    if (metrics) previousServing = { version: prev, metrics };
  }
  // The gate keeps the baseline's metrics only for regression rules: read the serving run's own.
  const servingV = (state?.recheck ?? state?.evaluation)?.baselineVersion ?? audit?.serving.productionVersion ?? null;
  let servingMetrics: VersionView['servingMetrics'] = null;
  if (servingV !== null && servingV !== undefined && servingV !== version && d.mlflow) {
    const metrics = await runMetrics(d.mlflow, model, servingV).catch(() => null);
    if (metrics) servingMetrics = { version: servingV, metrics };
  }
  return { model, version, state, audit, dryRun, previousServing, servingMetrics, notes };
}
