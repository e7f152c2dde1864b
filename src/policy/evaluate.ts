/**
 * The evaluation gate: a pure function of the policy, the candidate run's metrics and tags, and the current
 * Production version's metrics. No I/O and no clock, so an activity can call it and a test can pin every
 * boundary; the activity that gathers the inputs lives elsewhere.
 */
import type { EvaluationResult, MetricCheck } from '../workflows/definitions.js';
import type { Comparator, EvaluationPolicy, MetricThreshold, RegressionRule } from './types.js';

export interface EvaluationCandidate {
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export interface EvaluationBaseline {
  version: number;
  metrics: Record<string, number>;
}

/**
 * Regression checks subtract two doubles (0.9 - 0.88 is 0.020000000000000018), so a drop equal to the
 * tolerance as written must not fail on representation noise. Thresholds compare the logged value with
 * the written one directly and need no slack.
 */
const RELATIVE_SLACK = 1e-9;

export function evaluate(
  policy: EvaluationPolicy,
  candidate: EvaluationCandidate,
  baseline?: EvaluationBaseline,
): EvaluationResult {
  const checks: MetricCheck[] = [
    ...policy.thresholds.map((t) => thresholdCheck(t, candidate.metrics)),
    ...policy.requiredTags.map((tag) => tagCheck(tag, candidate.tags)),
    ...policy.noRegression.map((r) => regressionCheck(r, candidate.metrics, baseline)),
  ];

  // Only the metrics the gate looked at: the result goes into workflow history and onto version tags.
  const looked = new Set([...policy.thresholds.map((t) => t.metric), ...policy.noRegression.map((r) => r.metric)]);
  const result: EvaluationResult = {
    passed: checks.every((c) => c.passed),
    checks,
    reasons: checks.filter((c) => !c.passed).map((c) => c.detail),
    candidateMetrics: pick(candidate.metrics, looked),
  };
  if (baseline) {
    result.baselineVersion = baseline.version;
    result.baselineMetrics = pick(baseline.metrics, new Set(policy.noRegression.map((r) => r.metric)));
  }
  return result;
}

function thresholdCheck(t: MetricThreshold, metrics: Record<string, number>): MetricCheck {
  const rule = `${t.metric} ${t.op} ${t.value}`;
  const actual = valueOf(metrics, t.metric);
  if (actual === undefined) {
    return { rule, passed: false, detail: `metric ${t.metric} not logged on the run` };
  }
  const passed = compare(actual, t.op, t.value);
  return {
    rule,
    passed,
    ...finite(actual),
    detail: passed ? `${t.metric} = ${actual}, meets ${t.op} ${t.value}` : `${t.metric} = ${actual}, needs ${t.op} ${t.value}`,
  };
}

function compare(actual: number, op: Comparator, value: number): boolean {
  switch (op) {
    case '>=':
      return actual >= value;
    case '>':
      return actual > value;
    case '<=':
      return actual <= value;
    case '<':
      return actual < value;
    case '==':
      return actual === value;
  }
}

function tagCheck(tag: string, tags: Record<string, string>): MetricCheck {
  const rule = `tag ${tag} is set`;
  const value = Object.prototype.hasOwnProperty.call(tags, tag) ? tags[tag] : undefined;
  if (value === undefined) return { rule, passed: false, detail: `tag ${tag} not set on the run` };
  if (value.trim() === '') return { rule, passed: false, detail: `tag ${tag} is empty on the run` };
  return { rule, passed: true, detail: `tag ${tag} = ${JSON.stringify(value)}` };
}

function regressionCheck(
  r: RegressionRule,
  metrics: Record<string, number>,
  baseline: EvaluationBaseline | undefined,
): MetricCheck {
  const rule = `no regression of ${r.metric} beyond ${r.tolerance}`;
  const actual = valueOf(metrics, r.metric);
  if (!baseline) {
    return { rule, passed: true, ...finite(actual), detail: 'no Production version to compare' };
  }
  const base = valueOf(baseline.metrics, r.metric);
  if (base === undefined || Number.isNaN(base)) {
    return {
      rule,
      passed: true,
      ...finite(actual),
      detail: `Production v${baseline.version} has no ${r.metric} to compare`,
    };
  }
  if (actual === undefined) {
    return { rule, passed: false, detail: `metric ${r.metric} not logged on the run (Production v${baseline.version} has ${base})` };
  }
  if (Number.isNaN(actual)) {
    return { rule, passed: false, detail: `${r.metric} = NaN cannot be compared with Production v${baseline.version}'s ${base}` };
  }
  // How much worse the candidate is, in the metric's units (negative = better).
  const worse = r.direction === 'higher_is_better' ? base - actual : actual - base;
  const slack = RELATIVE_SLACK * Math.max(1, Math.abs(base), Math.abs(actual));
  const passed = !(worse - r.tolerance > slack);
  const side = r.direction === 'higher_is_better' ? 'below' : 'above';
  return {
    rule,
    passed,
    ...finite(actual),
    detail: passed
      ? `${r.metric} = ${actual} vs Production v${baseline.version} ${base} (tolerance ${r.tolerance})`
      : `${r.metric} = ${actual} is ${side} Production v${baseline.version}'s ${base} by more than ${r.tolerance}`,
  };
}

/** Own properties only, so a metric named `constructor` or `toString` is not found on the prototype. */
function valueOf(metrics: Record<string, number>, name: string): number | undefined {
  if (!Object.prototype.hasOwnProperty.call(metrics, name)) return undefined;
  const v = metrics[name];
  return typeof v === 'number' ? v : undefined;
}

/** NaN and ±Infinity become null in JSON payloads, so they stay out of the recorded numbers (details say them). */
function finite(v: number | undefined): { actual?: number } {
  return v !== undefined && Number.isFinite(v) ? { actual: v } : {};
}

function pick(metrics: Record<string, number>, names: Set<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of [...names].sort()) {
    const v = valueOf(metrics, n);
    if (v !== undefined && Number.isFinite(v)) out[n] = v;
  }
  return out;
}
