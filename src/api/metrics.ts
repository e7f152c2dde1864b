/**
 * The API's Prometheus metrics, registered once in the shared registry (several servers in one process, as in
 * tests, share them).
 */
import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '../observability/metrics.js';

/**
 * Answers of the active-version fast path (routes/active.ts), tallied in plain numbers on the hot path — a
 * labelled `inc`/`observe` per request cost ~5% of its throughput — and folded into
 * modelgate_api_requests_total when Prometheus scrapes. They are not timed: they are answered synchronously
 * from memory, so the duration histogram covers the route's cache misses and every other route.
 */
export const activeFastPathTally: Record<'200' | '304' | '404' | '503', number> = { '200': 0, '304': 0, '404': 0, '503': 0 };
export const ACTIVE_ROUTE = '/v1/models/:model/active';

export const httpRequests = new Counter({
  name: 'modelgate_api_requests_total',
  help: 'HTTP requests answered, by route and status code',
  labelNames: ['route', 'status'] as const,
  registers: [metricsRegistry],
  collect() {
    for (const status of Object.keys(activeFastPathTally) as Array<keyof typeof activeFastPathTally>) {
      const n = activeFastPathTally[status];
      if (!n) continue;
      activeFastPathTally[status] = 0;
      this.inc({ route: ACTIVE_ROUTE, status }, n);
    }
  },
});

export const httpDuration = new Histogram({
  name: 'modelgate_api_request_duration_seconds',
  help: 'Time to answer an HTTP request, by route',
  labelNames: ['route'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export const webhookDeliveries = new Counter({
  name: 'modelgate_webhook_deliveries_total',
  help: 'Webhook deliveries by sender and outcome (accepted, duplicate, ignored, rejected, failed)',
  labelNames: ['source', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const webhookEvents = new Counter({
  name: 'modelgate_webhook_events_total',
  help: 'Verified webhook events by sender and event name (e.g. model_version.created, model_version_alias.created)',
  labelNames: ['source', 'event'] as const,
  registers: [metricsRegistry],
});

export const slackActions = new Counter({
  name: 'modelgate_slack_actions_total',
  help: 'Slack interactions by action and outcome',
  labelNames: ['action', 'outcome'] as const,
  registers: [metricsRegistry],
});

export const reconcileRuns = new Counter({
  name: 'modelgate_reconcile_runs_total',
  help: 'Reconciliation passes by outcome (ok, failed)',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

export const reconcileStarted = new Counter({
  name: 'modelgate_reconcile_started_total',
  help: 'Lifecycles the reconciliation loop started because no webhook had',
  registers: [metricsRegistry],
});
