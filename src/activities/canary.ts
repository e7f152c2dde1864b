/**
 * Canary analysis, one measurement per activity call: render the metric's query for this version and
 * revision, run it once against Prometheus, classify the value by the metric's conditions. The workflow owns
 * the interval timers and the counting (src/canary/judge.ts), so a worker crash loses at most one sample and a
 * failing sample is acted on as soon as it is returned.
 *
 * Prometheus trouble (unreachable, timeout, 5xx, a refused query) is a measurement with phase `error`, not an
 * activity failure: the workflow counts consecutive errors against the metric's limit instead of the activity
 * retrying behind its back. Only a misconfiguration the workflow cannot wait out fails the activity.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { parseCondition, type Condition } from '../canary/condition.js';
import { QueryRenderError, renderQuery } from '../canary/query.js';
import { CanaryFailureTypes, type CanaryActivities, type CanaryMetric, type MeasureCanaryInput, type Measurement } from '../canary/types.js';
import { countExternalError } from '../observability/metrics.js';
import { PrometheusError, type InstantResult, type PrometheusQuerier } from '../prometheus/client.js';

export interface CanaryActivityDeps {
  /** MODELGATE_PROMETHEUS_URL's client; absent: every measurement fails with PrometheusNotConfigured. */
  prometheus?: PrometheusQuerier;
  now?: () => Date;
}

interface Compiled {
  success: Condition;
  failure?: Condition;
}

/** The input's conditions, parsed (the loader validated them; a history from elsewhere might not be). */
function compile(metric: CanaryMetric): Compiled {
  try {
    return {
      success: parseCondition(metric.successCondition),
      ...(metric.failureCondition !== undefined ? { failure: parseCondition(metric.failureCondition) } : {}),
    };
  } catch (err) {
    throw ApplicationFailure.create({
      type: CanaryFailureTypes.InvalidCanaryMetric,
      message: `canary metric ${JSON.stringify(metric.name)}: ${(err as Error).message}`,
      nonRetryable: true,
    });
  }
}

/** The one number a query must reduce to, or why there is none (→ inconclusive). */
function scalarOf(r: InstantResult): { value: number } | { why: string } {
  if (r.resultType === 'scalar') return { value: r.value };
  if (r.resultType === 'vector') {
    if (r.series.length === 0) return { why: 'no data: the query returned an empty vector' };
    if (r.series.length > 1) return { why: `the query returned ${r.series.length} series; aggregate it to one (e.g. sum(…))` };
    return { value: r.series[0].value };
  }
  return { why: `the query returned a ${r.resultType}; an instant vector or scalar is needed` };
}

function describeValue(v: number): string {
  return Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v);
}

/** successful / failed / inconclusive by the conditions; the failure condition, when given, is checked first. */
export function classify(metric: CanaryMetric, c: Compiled, value: number): Pick<Measurement, 'phase' | 'message'> {
  const shown = describeValue(value);
  if (c.failure?.test(value)) return { phase: 'failed', message: `result ${shown} meets failureCondition ${metric.failureCondition}` };
  if (c.success.test(value)) return { phase: 'successful', message: `result ${shown} meets successCondition ${metric.successCondition}` };
  if (c.failure) return { phase: 'inconclusive', message: `result ${shown} meets neither condition` };
  return { phase: 'failed', message: `result ${shown} does not meet successCondition ${metric.successCondition}` };
}

export function createCanaryActivities(deps: CanaryActivityDeps): CanaryActivities {
  const now = deps.now ?? (() => new Date());
  return {
    async measureCanary(input: MeasureCanaryInput): Promise<Measurement> {
      const { metric } = input;
      if (!deps.prometheus) {
        throw ApplicationFailure.create({
          type: CanaryFailureTypes.PrometheusNotConfigured,
          message: `model ${input.model} has a canary policy but this worker has no Prometheus (set MODELGATE_PROMETHEUS_URL)`,
          nonRetryable: true,
        });
      }
      const conditions = compile(metric);
      const base = { metric: metric.name, sampleIndex: input.sampleIndex };
      let query: string;
      try {
        query = renderQuery(metric.query, { version: input.version, ...(input.revision !== undefined ? { revision: input.revision } : {}) });
      } catch (err) {
        if (!(err instanceof QueryRenderError)) throw err;
        return { ...base, phase: 'inconclusive', message: `query not run: ${err.message}`, at: now().toISOString() };
      }
      let result: InstantResult;
      try {
        result = await deps.prometheus.query(query);
      } catch (err) {
        if (!(err instanceof PrometheusError)) throw err;
        countExternalError('prometheus');
        return { ...base, query, phase: 'error', message: err.message, at: now().toISOString() };
      }
      const at = now().toISOString();
      const scalar = scalarOf(result);
      if ('why' in scalar) return { ...base, query, phase: 'inconclusive', message: scalar.why, at };
      const verdict = classify(metric, conditions, scalar.value);
      // NaN and ±Inf are not JSON numbers: the message carries them.
      return { ...base, query, ...(Number.isFinite(scalar.value) ? { value: scalar.value } : {}), ...verdict, at };
    },
  };
}
