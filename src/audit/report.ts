/**
 * The audit answers as pure functions over what was read (MLflow versions and runs, lifecycle state, serving
 * facts), so each rule is unit-testable without a server; collect.ts does the reading.
 */
import { stageOf } from '../mlflow/stages.js';
import { registrantsOf } from '../workflows/transitions.js';
import { ALIAS, TAG } from '../mlflow/tags.js';
import type { ModelVersion, Run } from '../mlflow/types.js';
import type { LifecycleState } from '../workflows/definitions.js';
import { productionAt } from './timeline.js';
import type { AuditReport, CanaryAudit, LifecycleRun, MetricDiffRow, ProductionInterval, ServingFacts } from './types.js';

export interface AuditInput {
  model: string;
  generatedAt: string;
  subject: ModelVersion;
  subjectReason: AuditReport['subject'];
  run: Run | null;
  storageUri: string | null;
  production: ModelVersion | null;
  state: LifecycleState | null;
  /** Temporal's status of the subject's lifecycle (RUNNING, COMPLETED…), when known. */
  lifecycleStatus?: string;
  previous: { version: number | null; source: 'workflow' | 'mlflow-tags' | 'timeline'; run: Run | null } | null;
  intervals: ProductionInterval[];
  at?: string;
  manifest?: ServingFacts | null;
  notes?: string[];
  /** Every run of the subject's lifecycle, oldest first. */
  runs?: LifecycleRun[];
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/** Union of metric names, sorted; delta when both sides have the metric. */
export function metricDiff(current: Record<string, number>, previous: Record<string, number> | null): MetricDiffRow[] {
  const keys = [...new Set([...Object.keys(current), ...Object.keys(previous ?? {})])].sort();
  return keys.map((metric) => {
    const c = metric in current ? current[metric] : null;
    const p = previous && metric in previous ? previous[metric] : null;
    return { metric, current: c, previous: p, delta: c !== null && p !== null ? round(c - p) : null };
  });
}

/** Float noise (0.93 − 0.91 = 0.020000000000000018) would look like data in a ticket. */
function round(n: number): number {
  return Number.parseFloat(n.toPrecision(12));
}

/** Run tags that say what data trained the model. */
export function dataLineage(run: Run | null): { tags: Record<string, string>; params: Record<string, string> } {
  const tags: Record<string, string> = {};
  for (const k of Object.keys(run?.tags ?? {}).sort()) {
    if (k.startsWith('data.') || k.startsWith('training.')) tags[k] = run!.tags[k]!;
  }
  const params: Record<string, string> = {};
  for (const k of Object.keys(run?.params ?? {}).sort()) params[k] = run!.params[k]!;
  return { tags, params };
}

/** Approvals from the lifecycle (who, when, how) when it can be read; else what the lifecycle wrote into MLflow. */
export function approvalFacts(version: ModelVersion, state: LifecycleState | null): AuditReport['approval'] {
  const tags = version.tags;
  if (state && state.approvals.length) {
    return {
      source: 'workflow',
      approvals: state.approvals.map((a) => ({
        by: a.by, at: a.at, via: a.via,
        ...(a.comment ? { comment: a.comment } : {}),
        ...(a.verified !== undefined ? { verified: a.verified } : {}),
        ...(a.round !== undefined ? { round: a.round } : {}),
      })),
      approvedAt: state.approvals[state.approvals.length - 1].at,
      registrants: registrantsOf(state),
      pullRequest: {
        url: state.pullRequest?.url ?? tags[TAG.prUrl] ?? null,
        mergeSha: state.pullRequest?.mergeSha ?? tags[TAG.mergeSha] ?? null,
        mergedBy: state.pullRequest?.mergedBy ?? null,
      },
      promotedAt: state.promotedAt ?? tags[TAG.promotedAt] ?? null,
    };
  }
  const by = (tags[TAG.approvedBy] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const approvedAt = tags[TAG.approvedAt] ?? null;
  return {
    source: by.length ? 'mlflow-tags' : 'none',
    // The tag keeps one time, that of the approval that completed the quorum.
    approvals: by.map((b) => ({ by: b })),
    approvedAt,
    registrants: null,
    pullRequest: { url: tags[TAG.prUrl] ?? null, mergeSha: tags[TAG.mergeSha] ?? null, mergedBy: null },
    promotedAt: state?.promotedAt ?? tags[TAG.promotedAt] ?? null,
  };
}

export function buildAuditReport(input: AuditInput): AuditReport {
  const { subject, run, state } = input;
  const notes = [...(input.notes ?? [])];
  const productionVersion = input.production?.version ?? null;
  let manifest: AuditReport['serving']['manifest'] = null;
  if (input.manifest) {
    const served = input.manifest.storageUri;
    // Compare with what the Production version should serve, whichever version is audited.
    const expected = productionVersion === subject.version ? input.storageUri : (input.production?.tags[TAG.storageUri] ?? null);
    const agrees = served && expected ? served.replace(/\/+$/, '') === expected.replace(/\/+$/, '') : null;
    manifest = { ...input.manifest, agrees };
    if (agrees === false) notes.push(`the manifest serves ${served}, but MLflow's Production version records ${expected}`);
  }
  if (!run && subject.run_id) notes.push(`run ${subject.run_id} of version ${subject.version} could not be read`);
  const previousMetrics = input.previous?.run?.metrics ?? null;
  if (input.previous?.version != null && !input.previous.run) notes.push(`the run of previous version ${input.previous.version} could not be read`);
  return {
    model: input.model,
    version: subject.version,
    generatedAt: input.generatedAt,
    subject: input.subjectReason,
    serving: {
      productionVersion,
      subjectIsServing: productionVersion === subject.version,
      storageUri: input.storageUri,
      // Tags and aliases first: they are written whether or not the MLflow server still has stages.
      stage: subject.aliases.includes(ALIAS.production) ? 'Production' : stageOf(subject),
      aliases: [...subject.aliases].sort(),
      manifest,
    },
    metrics: finite(run?.metrics ?? {}),
    training: {
      runId: subject.run_id ?? null,
      runName: run?.run_name ?? null,
      experimentId: run?.experiment_id ?? null,
      startedAt: iso(run?.start_time),
      endedAt: iso(run?.end_time),
      user: run?.user_id ?? run?.tags['mlflow.user'] ?? null,
      status: run?.status ?? null,
    },
    data: dataLineage(run),
    approval: approvalFacts(subject, state),
    comparison: {
      previousVersion: input.previous?.version ?? null,
      source: input.previous?.source ?? null,
      rows: input.previous?.version != null ? metricDiff(finite(run?.metrics ?? {}), finite(previousMetrics ?? {})) : [],
    },
    productionAt: input.at ? { at: input.at, version: productionAt(input.intervals, input.at) } : null,
    productionHistory: input.intervals,
    lifecycle: state
      ? { workflowId: state.workflowId, status: input.lifecycleStatus ?? null, stage: state.stage, phase: state.phase, outcome: state.outcome ?? null }
      : subject.tags[TAG.workflowId]
        ? { workflowId: subject.tags[TAG.workflowId], status: input.lifecycleStatus ?? null, stage: null, phase: null, outcome: subject.tags[TAG.outcome] ?? null }
        : null,
    runs: (input.runs ?? []).map((r) => ({
      runId: r.runId, status: r.status, startTime: r.startTime, closeTime: r.closeTime ?? null, outcome: r.outcome ?? null, request: r.request ?? null,
    })),
    canary: canaryAudit(state),
    notes,
  };
}

function finite(m: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(m).sort()) if (Number.isFinite(m[k])) out[k] = m[k]!;
  return out;
}

/** The canary of the subject's lifecycle as the audit shows it (analysis results per step), or null. */
export function canaryAudit(state: LifecycleState | null): CanaryAudit | null {
  const c = state?.canary;
  if (!c) return null;
  const pause = c.pause;
  return {
    status: c.status,
    previousRevision: c.previousRevision ?? null,
    steps: c.steps.map((st) => {
      const names = [...new Set(st.measurements.map((m) => m.metric))];
      return {
        step: st.step,
        percent: st.percent,
        commit: st.commit?.sha || null,
        revision: st.revision ?? null,
        servedAt: st.servedAt ?? null,
        verdict: st.verdict ?? null,
        metrics: names.map((metric) => {
          const ms = st.measurements.filter((m) => m.metric === metric);
          return { metric, query: ms.find((m) => m.query)?.query ?? null, values: ms.map((m) => (m.value === undefined ? null : m.value)), phases: ms.map((m) => m.phase) };
        }),
      };
    }),
    // Only the latest pause is kept in state; earlier ones are in the timeline.
    pauses: pause ? [{ id: pause.id, step: pause.step, reason: pause.reason, decision: pause.decision?.kind ?? null, by: pause.decision?.by ?? null, at: pause.decision?.at ?? null }] : [],
    failure: c.failure ? { reason: c.failure.reason } : null,
    rollback: c.rollback ? { commit: c.rollback.sha, previousServing: c.rollback.previousServing ?? null } : null,
  };
}
