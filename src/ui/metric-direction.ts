/**
 * Which way is better for a metric, as the model's own policy says it: a no-regression rule's direction, else a
 * threshold's comparator (`accuracy >= 0.9`: higher; `latency_ms <= 50`: lower). Unknown metrics get no colour
 * on the page: a higher latency must not show as an improvement.
 */
import type { EvaluationPolicy } from '../policy/types.js';

export type Direction = 'higher' | 'lower' | 'unknown';

export function metricDirection(policy: EvaluationPolicy | undefined, metric: string): Direction {
  const rule = policy?.noRegression.find((r) => r.metric === metric);
  if (rule) return rule.direction === 'higher_is_better' ? 'higher' : 'lower';
  const ops = new Set((policy?.thresholds ?? []).filter((t) => t.metric === metric).map((t) => t.op));
  const higher = ops.has('>=') || ops.has('>');
  const lower = ops.has('<=') || ops.has('<');
  if (higher && !lower) return 'higher';
  if (lower && !higher) return 'lower';
  return 'unknown';
}

/** The class of a delta (candidate − serving): better, worse, or neither when equal or the direction is unknown. */
export function deltaClass(direction: Direction, delta: number): 'pass' | 'fail' | 'muted' {
  if (delta === 0 || direction === 'unknown') return 'muted';
  return (delta > 0) === (direction === 'higher') ? 'pass' : 'fail';
}
