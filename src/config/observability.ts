/**
 * Settings of metrics export. The Temporal SDK's own metrics (workflow task latency, activity schedule-to-start,
 * poller and slot gauges…) come from its native core and are served by core on their own Prometheus endpoint.
 */
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';

const shape = {
  /** host:port where the worker's Temporal SDK runtime serves Prometheus metrics (/metrics). Unset: not exported. */
  MODELGATE_TEMPORAL_METRICS_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').optional(),
  /**
   * host:port where a worker running apart from the API serves modelgate's own metrics (/metrics). Unset: not
   * served by the worker (with `npm start` the API's /metrics already shows them: one process, one registry).
   */
  MODELGATE_METRICS_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').optional(),
};

export interface ObservabilityConfig {
  temporalMetricsAddress?: string;
  metricsAddress?: string;
}

export function loadObservabilityConfig(env: NodeJS.ProcessEnv = process.env): ObservabilityConfig {
  const c = parseEnv(shape, env);
  if (c.MODELGATE_METRICS_ADDRESS && c.MODELGATE_METRICS_ADDRESS === c.MODELGATE_TEMPORAL_METRICS_ADDRESS) {
    throw new ConfigError(`MODELGATE_METRICS_ADDRESS: must differ from MODELGATE_TEMPORAL_METRICS_ADDRESS (both ${c.MODELGATE_METRICS_ADDRESS})`);
  }
  return { temporalMetricsAddress: c.MODELGATE_TEMPORAL_METRICS_ADDRESS, metricsAddress: c.MODELGATE_METRICS_ADDRESS };
}
