/**
 * The pure judgement of canary analysis, Argo Rollouts semantics: after each measurement the workflow asks
 * whether the metric (and the step) is still running or has a verdict. Plain functions over recorded data, so
 * the workflow may call them (they are deterministic) and a replay reaches the same verdict.
 *
 * Per metric, in this order (as Argo's assessMetricStatus):
 *  1. failed > failureLimit → failed;
 *  2. inconclusive > inconclusiveLimit → inconclusive;
 *  3. consecutive errors > consecutiveErrorLimit → inconclusive (Argo's Error phase; a person decides);
 *  4. `count` measurements that are not errors → successful — unless none of them succeeded (all were
 *     tolerated failures or inconclusive), which is no evidence of health → inconclusive;
 *  5. otherwise running.
 * Unlike Argo, an error never counts towards `count`: a Prometheus outage must not run out the count and let
 * a version through unmeasured.
 */
import type { CanaryMetric, Measurement, MetricTally, MetricVerdict } from './types.js';

/** The counts behind a verdict. */
export function tally(measurements: readonly Measurement[]): MetricTally {
  const t: MetricTally = { successful: 0, failed: 0, inconclusive: 0, error: 0, consecutiveErrors: 0 };
  for (const m of measurements) {
    t[m.phase]++;
    t.consecutiveErrors = m.phase === 'error' ? t.consecutiveErrors + 1 : 0;
  }
  return t;
}

export function judgeMetric(metric: CanaryMetric, measurements: readonly Measurement[]): MetricVerdict {
  const t = tally(measurements);
  if (t.failed > metric.failureLimit) return 'failed';
  if (t.inconclusive > metric.inconclusiveLimit) return 'inconclusive';
  if (t.consecutiveErrors > metric.consecutiveErrorLimit) return 'inconclusive';
  if (t.successful + t.failed + t.inconclusive >= metric.count) return t.successful > 0 ? 'successful' : 'inconclusive';
  return 'running';
}

const SEVERITY: Record<MetricVerdict, number> = { successful: 0, running: 1, inconclusive: 2, failed: 3 };

/**
 * The step's verdict: the worst of its metrics' (failed > inconclusive > running > successful). A failed
 * metric ends the step at once even while others run: the reaction to a failing sample is immediate.
 * A metric with no measurements yet is running; an empty metric list is successful (nothing to analyse).
 */
export function judgeStep(
  metrics: readonly CanaryMetric[],
  measurementsByMetric: Readonly<Record<string, readonly Measurement[]>>,
): MetricVerdict {
  let worst: MetricVerdict = 'successful';
  for (const metric of metrics) {
    const own = Object.prototype.hasOwnProperty.call(measurementsByMetric, metric.name) ? measurementsByMetric[metric.name] : [];
    const v = judgeMetric(metric, own);
    if (SEVERITY[v] > SEVERITY[worst]) worst = v;
  }
  return worst;
}

/** Whether the metric still needs samples (the workflow's loop condition). */
export function needsMoreSamples(metric: CanaryMetric, measurements: readonly Measurement[]): boolean {
  return judgeMetric(metric, measurements) === 'running';
}

/**
 * The measurements that decided a failed or inconclusive verdict (for the outcome, the timeline and the page):
 * the failed ones, else the inconclusive ones, else the trailing errors.
 */
export function decisive(measurements: readonly Measurement[], verdict: MetricVerdict): Measurement[] {
  if (verdict === 'failed') return measurements.filter((m) => m.phase === 'failed');
  if (verdict !== 'inconclusive') return [];
  const inconclusive = measurements.filter((m) => m.phase === 'inconclusive');
  if (inconclusive.length) return inconclusive;
  const trailing: Measurement[] = [];
  for (let k = measurements.length - 1; k >= 0 && measurements[k].phase === 'error'; k--) trailing.unshift(measurements[k]);
  return trailing.length ? trailing : [...measurements];
}
