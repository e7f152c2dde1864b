/**
 * The record of a step's analysis: each metric's verdict, tally and deciding samples, and one line saying why —
 * what the timeline, the audit ("metrics in the audit: the analysis results per step") and a rollback's outcome
 * carry. Pure: the workflow builds it from its recorded measurements.
 */
import { decisive, judgeMetric, judgeStep, tally } from './judge.js';
import type { CanaryMetric, Measurement, MetricAnalysis, StepAnalysis } from './types.js';

function own(by: Readonly<Record<string, readonly Measurement[]>>, name: string): readonly Measurement[] {
  return Object.prototype.hasOwnProperty.call(by, name) ? by[name] : [];
}

function shown(m: Measurement): string {
  if (m.value !== undefined) return String(Number(m.value.toPrecision(4)));
  return m.phase === 'error' ? 'error' : 'no value';
}

function line(metric: CanaryMetric, a: MetricAnalysis): string {
  if (a.verdict === 'failed') return `${metric.name} failed: ${a.decisive.map(shown).join(', ')} (success: ${metric.successCondition})`;
  if (a.verdict === 'inconclusive') {
    const why = a.decisive.at(-1)?.message;
    return `${metric.name} inconclusive${why ? `: ${why}` : ''}`;
  }
  return `${metric.name} ${a.verdict}${a.lastValue !== undefined ? ` (last ${String(Number(a.lastValue.toPrecision(4)))})` : ''}`;
}

export function summarizeStep(
  step: number,
  percent: number,
  metrics: readonly CanaryMetric[],
  measurementsByMetric: Readonly<Record<string, readonly Measurement[]>>,
): StepAnalysis {
  const parts: MetricAnalysis[] = metrics.map((metric) => {
    const ms = own(measurementsByMetric, metric.name);
    const verdict = judgeMetric(metric, ms);
    const lastValue = [...ms].reverse().find((m) => m.value !== undefined)?.value;
    return { metric: metric.name, verdict, tally: tally(ms), decisive: decisive(ms, verdict), ...(lastValue !== undefined ? { lastValue } : {}) };
  });
  const verdict = judgeStep(metrics, measurementsByMetric);
  // The line leads with what decided the step: failed metrics, then inconclusive ones, else all of them.
  const deciding = parts.filter((p) => p.verdict === verdict && (verdict === 'failed' || verdict === 'inconclusive'));
  const shownParts = deciding.length ? deciding : parts;
  const summary = `step ${step + 1} (${percent}%): ${shownParts.map((p) => line(metrics.find((m) => m.name === p.metric)!, p)).join('; ')}`;
  return { step, percent, verdict, metrics: parts, summary };
}
