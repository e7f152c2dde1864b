/**
 * Settings of metrics export. The Temporal SDK's own metrics (workflow task latency, activity schedule-to-start,
 * poller and slot gauges…) come from its native core and are served by core on their own Prometheus endpoint.
 */
import { z } from 'zod';
import { parseEnv } from '../config.js';

const shape = {
  /** host:port where the worker's Temporal SDK runtime serves Prometheus metrics (/metrics). Unset: not exported. */
  MODELGATE_TEMPORAL_METRICS_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').optional(),
};

export interface ObservabilityConfig {
  temporalMetricsAddress?: string;
}

export function loadObservabilityConfig(env: NodeJS.ProcessEnv = process.env): ObservabilityConfig {
  const c = parseEnv(shape, env);
  return { temporalMetricsAddress: c.MODELGATE_TEMPORAL_METRICS_ADDRESS };
}
