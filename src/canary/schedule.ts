/**
 * When the next measurement of each metric is due, for the workflow's timers: the first one when the step's
 * analysis starts, then `interval` after the previous one finished (as Argo: a slow query delays the next
 * sample instead of a burst of catch-up queries against a struggling Prometheus). Only metrics still running
 * are sampled. Pure over recorded data (the measurements' `at`), so replay computes the same timers.
 */
import { judgeMetric } from './judge.js';
import type { CanaryMetric, Measurement } from './types.js';

export interface SamplePlan {
  /** Metrics due now (at or before nowMs), in policy order. */
  due: CanaryMetric[];
  /** When the earliest not-yet-due running metric is due; undefined when nothing is left to sample. */
  nextAtMs?: number;
}

export function planSamples(
  metrics: readonly CanaryMetric[],
  measurementsByMetric: Readonly<Record<string, readonly Measurement[]>>,
  startedAtMs: number,
  nowMs: number,
): SamplePlan {
  const due: CanaryMetric[] = [];
  let nextAtMs: number | undefined;
  for (const metric of metrics) {
    const ms = Object.prototype.hasOwnProperty.call(measurementsByMetric, metric.name) ? measurementsByMetric[metric.name] : [];
    if (judgeMetric(metric, ms) !== 'running') continue;
    const last = ms.at(-1);
    const lastAt = last ? Date.parse(last.at) : Number.NaN;
    const at = last ? (Number.isFinite(lastAt) ? lastAt : startedAtMs) + metric.intervalMs : startedAtMs;
    if (at <= nowMs) due.push(metric);
    else nextAtMs = nextAtMs === undefined ? at : Math.min(nextAtMs, at);
  }
  return { due, ...(nextAtMs !== undefined ? { nextAtMs } : {}) };
}
