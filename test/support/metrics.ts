/** Reading this process's Prometheus registry in tests (in-process workers and servers record into it). */
import { metricsRegistry } from '../../src/observability/metrics.js';

interface Sample {
  metricName?: string;
  value: number;
  labels: Record<string, string | number>;
}

/**
 * The value of one series, 0 while it has none: a counter's count, or with `part: 'count'` how many
 * observations a histogram has. Labels not named are not compared.
 */
export async function metricValue(name: string, labels: Record<string, string>, part?: 'count'): Promise<number> {
  const metric = metricsRegistry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name} in the registry`);
  const { values } = (await metric.get()) as { values: Sample[] };
  const row = values.find(
    (x) => (part ? x.metricName === `${name}_${part}` : true) && Object.entries(labels).every(([k, v]) => x.labels[k] === v),
  );
  return row?.value ?? 0;
}
