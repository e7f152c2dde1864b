/**
 * The API's Prometheus metrics, registered once in the shared registry (several servers in one process, as in
 * tests, share them).
 */
import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '../observability/metrics.js';

export const httpRequests = new Counter({
  name: 'modelgate_api_requests_total',
  help: 'HTTP requests answered, by route and status code',
  labelNames: ['route', 'status'] as const,
  registers: [metricsRegistry],
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
