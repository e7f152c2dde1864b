/**
 * Temporal SDK runtime metrics (workflow/activity task latencies, schedule-to-start, slots, pollers, sticky cache)
 * come from the SDK's native core, not from prom-client: core serves them on its own Prometheus endpoint. The
 * runtime is a process-wide singleton that must be configured before the first NativeConnection or Worker is
 * created, so the worker calls this first thing at start.
 */
import { Runtime } from '@temporalio/worker';
import type { Logger } from './log.js';

export interface TemporalMetricsOptions {
  /** host:port for core's Prometheus endpoint (scrape http://<bindAddress>/metrics). Undefined: nothing installed. */
  bindAddress?: string;
  /** Added to every series, e.g. { service: 'modelgate-worker' }. */
  globalTags?: Record<string, string>;
  logger?: Logger;
}

export interface TemporalMetricsResult {
  installed: boolean;
  /** Where to scrape, when installed. */
  url?: string;
}

/**
 * Install the SDK runtime with a Prometheus exporter. Counters get the `_total` suffix and durations are in
 * seconds, so the series follow Prometheus naming next to modelgate's own (`temporal_workflow_task_execution_latency_seconds`…).
 * Throws a one-line error when a runtime already exists (called after a Worker/NativeConnection was created).
 */
export function installTemporalRuntimeMetrics(opts: TemporalMetricsOptions = {}): TemporalMetricsResult {
  if (!opts.bindAddress) return { installed: false };
  try {
    Runtime.install({
      telemetryOptions: {
        metrics: {
          metricPrefix: 'temporal_',
          ...(opts.globalTags ? { globalTags: opts.globalTags } : {}),
          prometheus: { bindAddress: opts.bindAddress, countersTotalSuffix: true, useSecondsForDurations: true, unitSuffix: true },
        },
      },
    });
  } catch (err) {
    throw new Error(
      `Temporal runtime metrics: cannot install on ${opts.bindAddress}: ${err instanceof Error ? err.message : String(err)} ` +
        '(call installTemporalRuntimeMetrics before creating any Worker or NativeConnection)',
    );
  }
  opts.logger?.info({ temporalMetrics: `http://${opts.bindAddress}/metrics` }, 'Temporal SDK metrics exported');
  return { installed: true, url: `http://${opts.bindAddress}/metrics` };
}
