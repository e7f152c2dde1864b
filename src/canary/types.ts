/**
 * The shared vocabulary of progressive rollout (issue #14): the resolved `deployment.canary` policy, the input
 * and result of one analysis measurement, and the verdicts of the pure judgement. Plain data and pure constants
 * only: workflow code imports this module. Stable interface between the analysis half (src/canary/, the
 * Prometheus client, the `measureCanary` activity) and the rollout half (the workflow steps): add, don't rename.
 */

/**
 * One analysis metric, Argo Rollouts style. The workflow takes one measurement every `intervalMs` through the
 * `measureCanary` activity and judges the list so far with `judgeMetric` after each one.
 */
export interface CanaryMetric {
  /** Unique within the policy; names the metric in the timeline, audit and notifications. */
  name: string;
  /**
   * PromQL with `{{version}}` (the MLflow version number) and `{{revision}}` (the KServe revision serving the
   * canary, when known) placeholders. The values are escaped for a PromQL label matcher's double-quoted string.
   */
  query: string;
  /** Condition over `result` (the query's scalar value), e.g. `result < 0.05`; see src/canary/condition.ts. */
  successCondition: string;
  /**
   * Optional. When given, a measurement is failed only when this holds; one that meets neither condition is
   * inconclusive. Without it, a measurement that does not meet the success condition is failed.
   */
  failureCondition?: string;
  /** Time between two measurements (≥ 1 s). */
  intervalMs: number;
  /** Measurements (errors excluded) after which the metric succeeds, barring the limits below. ≥ 1. */
  count: number;
  /** The metric fails when failed measurements > failureLimit (default 0: the first failure fails it). */
  failureLimit: number;
  /** The metric is inconclusive when inconclusive measurements > inconclusiveLimit (default 0). */
  inconclusiveLimit: number;
  /**
   * The metric is inconclusive when consecutive errors (Prometheus unreachable, 5xx, a bad result) >
   * consecutiveErrorLimit (default 4, as in Argo). An error never counts towards `count`.
   */
  consecutiveErrorLimit: number;
}

export interface CanaryStep {
  /** Percent of traffic sent to the new version at this step, 1..100; strictly increasing, the last is 100. */
  percent: number;
  /** Wait after the split is served and before the analysis starts (a soak), in ms; 0 = start at once. */
  pauseMs: number;
}

/** `deployment.canary` resolved (docs/policy.md). */
export interface CanaryPolicy {
  steps: CanaryStep[];
  /** Analysed at every step; all must succeed for the step to pass. At least one. */
  metrics: CanaryMetric[];
  /** Optional wait at 100% after the last analysis passed (no analysis runs in it) before Production, in ms. */
  finalSoakMs?: number;
  /**
   * How each later step reaches the base branch: `direct` (default) a commit of modelgate's own on it, falling
   * back to a branch + merge when the host refuses (a protected base); `pull-request` always the latter.
   */
  commit?: 'direct' | 'pull-request';
}

/** Input of one `measureCanary` activity call: one sample of one metric. */
export interface MeasureCanaryInput {
  model: string;
  version: number;
  /** The KServe revision that serves the canary (latestReadyRevision), when the split reported it. */
  revision?: string;
  /** Index of the step in CanaryPolicy.steps. */
  step: number;
  /** The step's traffic percent (for the record; queries may not need it). */
  percent: number;
  metric: CanaryMetric;
  /** 0-based index of this sample within the step's analysis of this metric. */
  sampleIndex: number;
}

export type MeasurementPhase = 'successful' | 'failed' | 'inconclusive' | 'error';

/** One sample, as recorded in history, the timeline and the audit. Never carries a secret. */
export interface Measurement {
  /** CanaryMetric.name. */
  metric: string;
  /** The query's scalar value, when there was one (NaN/±Inf are not JSON: absent, described in `message`). */
  value?: number;
  phase: MeasurementPhase;
  /** Why it is inconclusive or an error (a one-line reason), or the condition that decided it. */
  message?: string;
  /** When the sample was taken (ISO 8601). */
  at: string;
  /** The rendered query that was run (placeholders filled in), so the audit shows what failed. */
  query?: string;
  /** sampleIndex of the input, echoed. */
  sampleIndex?: number;
}

/** Verdict on one metric's or one step's measurements so far. */
export type MetricVerdict = 'running' | 'successful' | 'failed' | 'inconclusive';

/** Counts that explain a verdict (for the timeline, the audit and the notification of an inconclusive pause). */
export interface MetricTally {
  successful: number;
  failed: number;
  inconclusive: number;
  error: number;
  consecutiveErrors: number;
}

/** Failure types of the canary activities (ApplicationFailure.type, nonRetryable). */
export const CanaryFailureTypes = {
  /** A canary policy is in force but the worker has no MODELGATE_PROMETHEUS_URL. */
  PrometheusNotConfigured: 'PrometheusNotConfigured',
  /** The metric in the input is not a valid one (a bad condition): the policy loader should have refused it. */
  InvalidCanaryMetric: 'InvalidCanaryMetric',
} as const;

/** The activities of src/activities/canary.ts (createCanaryActivities); one Prometheus query per call. */
export interface CanaryActivities {
  /** One sample: render the query, run it, classify the value. Prometheus trouble → phase 'error', not a throw. */
  measureCanary(input: MeasureCanaryInput): Promise<Measurement>;
}

/** The pure judgement (src/canary/judge.ts); signatures here so both halves agree. */
export type JudgeMetric = (metric: CanaryMetric, measurements: readonly Measurement[]) => MetricVerdict;
export type JudgeStep = (
  metrics: readonly CanaryMetric[],
  measurementsByMetric: Readonly<Record<string, readonly Measurement[]>>,
) => MetricVerdict;

/** One metric's part of a step's analysis, for the timeline, the audit and a rollback's outcome. */
export interface MetricAnalysis {
  metric: string;
  verdict: MetricVerdict;
  tally: MetricTally;
  /** The samples that decided a failed or inconclusive verdict (values, messages, rendered queries). */
  decisive: Measurement[];
  /** The last sample's value, when it had one (a healthy metric's latest reading). */
  lastValue?: number;
}

/** The analysis of one step: its verdict and each metric's (src/canary/summary.ts). */
export interface StepAnalysis {
  step: number;
  percent: number;
  verdict: MetricVerdict;
  metrics: MetricAnalysis[];
  /** One line for a notification or the outcome's reason, e.g. `error-rate failed: 0.31, 0.42 (result < 0.05)`. */
  summary: string;
}
