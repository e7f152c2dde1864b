/**
 * Prometheus settings of the worker: where canary analysis queries run (docs/policy.md, `deployment.canary`).
 * Optional: a worker without it runs everything but canaries, whose first measurement then fails with
 * PrometheusNotConfigured. The worker builds the client once with createPrometheusClient.
 */
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { PrometheusClient, type PrometheusQuerier } from '../prometheus/client.js';

const shape = {
  /** Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090. Unset: no canary analysis. */
  // Checked below rather than by zod: parseEnv quotes a refused value, and this one might hold a password.
  MODELGATE_PROMETHEUS_URL: z.string().optional(),
  /** Bearer token for Prometheus (a secret), when it sits behind an authenticating proxy. */
  MODELGATE_PROMETHEUS_TOKEN: z.string().min(1).optional(),
  /** Bound on one analysis query (1000–60000 ms). */
  MODELGATE_PROMETHEUS_TIMEOUT_MS: z.coerce.number().int().min(1000).max(60_000).default(5000),
};

export interface PrometheusConfig {
  url?: string;
  token?: string;
  timeoutMs: number;
}

export function loadPrometheusConfig(env: NodeJS.ProcessEnv = process.env): PrometheusConfig {
  const c = parseEnv(shape, env);
  if (c.MODELGATE_PROMETHEUS_URL) {
    let u: URL;
    try {
      u = new URL(c.MODELGATE_PROMETHEUS_URL);
    } catch {
      throw new ConfigError('MODELGATE_PROMETHEUS_URL: expected an http(s) URL such as http://prometheus:9090');
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new ConfigError(`MODELGATE_PROMETHEUS_URL: expected an http(s) URL (got scheme ${u.protocol.replace(/:$/, '').slice(0, 20)})`);
    }
    // The URL appears in logs and error messages; credentials belong in the token.
    if (u.username || u.password) throw new ConfigError('MODELGATE_PROMETHEUS_URL: must not carry credentials; set MODELGATE_PROMETHEUS_TOKEN');
    if (u.search || u.hash) throw new ConfigError('MODELGATE_PROMETHEUS_URL: must be a base URL without ?query or #fragment');
  }
  if (c.MODELGATE_PROMETHEUS_TOKEN && !c.MODELGATE_PROMETHEUS_URL) {
    throw new ConfigError('MODELGATE_PROMETHEUS_TOKEN: set without MODELGATE_PROMETHEUS_URL');
  }
  return { url: c.MODELGATE_PROMETHEUS_URL, token: c.MODELGATE_PROMETHEUS_TOKEN, timeoutMs: c.MODELGATE_PROMETHEUS_TIMEOUT_MS };
}

/** The client for a loaded config, or undefined when no URL is set. */
export function createPrometheusClient(cfg: PrometheusConfig): PrometheusQuerier | undefined {
  return cfg.url ? new PrometheusClient({ url: cfg.url, token: cfg.token, timeoutMs: cfg.timeoutMs }) : undefined;
}
