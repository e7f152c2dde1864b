/**
 * The process's Prometheus registry. Every metric modelgate exposes (worker and API) is registered here so
 * one `/metrics` endpoint serves them all.
 */
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import type { Outcome, Stage } from '../workflows/definitions.js';

export const metricsRegistry = new Registry();
// Node's process metrics under modelgate_ (modelgate_process_cpu_seconds_total, modelgate_nodejs_heap_size_used_bytes…).
collectDefaultMetrics({ register: metricsRegistry, prefix: 'modelgate_' });

// ---- lifecycle metrics, recorded by activities (workflow code cannot touch a registry: it replays) ----
const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const lifecycleOutcomes = new Counter({
  name: 'modelgate_promotions_total',
  help: 'Lifecycle results by outcome: promoted (entered Production) or how the lifecycle ended',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

export const stageDuration = new Histogram({
  name: 'modelgate_stage_duration_seconds',
  help: 'Time a model version spent in a stage (None, Staging, Production) before leaving it',
  labelNames: ['stage'] as const,
  buckets: [1, 10, MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR, 12 * HOUR, DAY, 3 * DAY, 7 * DAY, 30 * DAY, 90 * DAY],
  registers: [metricsRegistry],
});

export const approvalWait = new Histogram({
  name: 'modelgate_approval_wait_seconds',
  help: 'Time from entering Staging to the approval decision (approved, rejected or expired)',
  labelNames: ['decision'] as const,
  buckets: [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 4 * HOUR, 12 * HOUR, DAY, 3 * DAY, 7 * DAY, 14 * DAY],
  registers: [metricsRegistry],
});

export const rolloutDuration = new Histogram({
  name: 'modelgate_rollout_duration_seconds',
  help: 'Time from merge (or Production change) to the new version serving, by result (ready, failed, timeout)',
  labelNames: ['result'] as const,
  buckets: [5, 15, 30, MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR],
  registers: [metricsRegistry],
});

export const externalErrors = new Counter({
  name: 'modelgate_external_errors_total',
  help: 'Failed calls to external systems, by system (mlflow, github, git, kubernetes, argocd, slack, temporal, modelgate-api)',
  labelNames: ['system'] as const,
  registers: [metricsRegistry],
});

/**
 * Active-version lookups, tallied in plain numbers on the hot path (a labelled `inc` hashes its labels on every
 * call) and copied into the counter when Prometheus scrapes.
 */
export const activeRequestTally = { hit: 0, revalidate: 0, miss: 0, stale: 0, unavailable: 0 };

export const activeRequests = new Counter({
  name: 'modelgate_active_requests_total',
  help: 'Active-version lookups by result: hit, revalidate (served while refreshing), miss (waited for MLflow), stale (last-known-good), unavailable',
  labelNames: ['result'] as const,
  registers: [metricsRegistry],
  collect() {
    this.reset();
    for (const [result, n] of Object.entries(activeRequestTally)) if (n) this.inc({ result }, n);
  },
});

export const activeUpstreamReads = new Counter({
  name: 'modelgate_active_upstream_reads_total',
  help: 'MLflow read sequences made by the active-version cache, by outcome (found, none, error)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

/** Keeps label values few and printable: a caller passing free text must not create unbounded series. */
function label(value: string): string {
  const v = value.toLowerCase().replace(/[^a-z0-9_.-]+/g, '_').slice(0, 40);
  return v || 'unknown';
}

/** `promoted` when a version enters Production; the Outcome when a lifecycle ends. */
export function recordOutcome(outcome: Outcome | 'promoted'): void {
  lifecycleOutcomes.inc({ outcome: label(outcome) });
}

/** Call when a version leaves `stage`, with the time it spent there. */
export function observeStageDuration(stage: Stage, ms: number): void {
  if (Number.isFinite(ms) && ms >= 0) stageDuration.observe({ stage: label(stage) }, ms / 1000);
}

export function observeApprovalWait(ms: number, decision: 'approved' | 'rejected' | 'expired' = 'approved'): void {
  if (Number.isFinite(ms) && ms >= 0) approvalWait.observe({ decision }, ms / 1000);
}

export function observeRolloutDuration(ms: number, result: 'ready' | 'failed' | 'timeout' = 'ready'): void {
  if (Number.isFinite(ms) && ms >= 0) rolloutDuration.observe({ result }, ms / 1000);
}

export type ExternalSystem = 'mlflow' | 'github' | 'git' | 'kubernetes' | 'argocd' | 'slack' | 'temporal' | 'modelgate-api' | (string & {});

export function countExternalError(system: ExternalSystem): void {
  externalErrors.inc({ system: label(system) });
}

/** ms between two ISO timestamps (e.g. from the lifecycle state's timeline); undefined when either is missing. */
export function msBetween(fromIso: string | undefined, toIso: string | undefined): number | undefined {
  if (!fromIso || !toIso) return undefined;
  const d = Date.parse(toIso) - Date.parse(fromIso);
  return Number.isFinite(d) ? d : undefined;
}
