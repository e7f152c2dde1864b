/**
 * Temporal SDK runtime metrics (workflow/activity task latencies, schedule-to-start, slots, pollers, sticky cache)
 * come from the SDK's native core, not from prom-client: core serves them on its own Prometheus endpoint. The
 * runtime is a process-wide singleton that must be configured before the first NativeConnection or Worker is
 * created, so the worker calls this first thing at start.
 */
import { DefaultLogger, Runtime, type RuntimeOptions } from '@temporalio/worker';
import type { Logger } from './log.js';

type PinoLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const SDK_LEVEL = { fatal: 'ERROR', error: 'ERROR', warn: 'WARN', info: 'INFO', debug: 'DEBUG', trace: 'TRACE', silent: 'ERROR' } as const;

export interface TemporalMetricsOptions {
  /** host:port for core's Prometheus endpoint (scrape http://<bindAddress>/metrics). Undefined: nothing installed. */
  bindAddress?: string;
  /** MODELGATE_LOG_LEVEL, applied to the SDK's own log lines too. */
  logLevel?: PinoLevel;
  /** Passed to Runtime.install (e.g. [] when the caller handles SIGINT/SIGTERM itself). */
  shutdownSignals?: RuntimeOptions['shutdownSignals'];
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
 * Install the SDK runtime — the process-wide singleton — with the configured log level and, when bindAddress is
 * given, a Prometheus exporter. Counters get the `_total` suffix and durations are in
 * seconds, so the series follow Prometheus naming next to modelgate's own (`temporal_workflow_task_execution_latency_seconds`…).
 * Throws a one-line error when a runtime already exists (called after a Worker/NativeConnection was created).
 */
export function installTemporalRuntimeMetrics(opts: TemporalMetricsOptions = {}): TemporalMetricsResult {
  const base: RuntimeOptions = {
    ...(opts.logLevel ? { logger: new DefaultLogger(SDK_LEVEL[opts.logLevel]) } : {}),
    ...(opts.shutdownSignals ? { shutdownSignals: opts.shutdownSignals } : {}),
  };
  if (!opts.bindAddress) {
    Runtime.install(base);
    return { installed: false };
  }
  try {
    Runtime.install({
      ...base,
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
