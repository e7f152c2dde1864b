/**
 * Canary analysis against a real Prometheus (test/support/prometheus.ts) scraping the model-server stand-in
 * (test/support/model-server.ts) every second: the `measureCanary` activity, one sample per call, judged by
 * the pure judgement the workflow uses. Samples are taken after a fresh scrape (a wait on Prometheus's answer,
 * never a sleep), the way the workflow takes one per interval.
 * Skipped, with the reason printed, when the prometheus binary is missing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { createCanaryActivities } from '../src/activities/canary.js';
import { judgeMetric } from '../src/canary/judge.js';
import type { CanaryMetric, Measurement } from '../src/canary/types.js';
import { PrometheusClient } from '../src/prometheus/client.js';
import { startModelServer, type ModelServer } from './support/model-server.js';
import { prometheusMissing, startPrometheus, type PrometheusServer } from './support/prometheus.js';
import { unique } from './support/stack.js';
import { eventually } from './support/wait.js';

const missing = prometheusMissing();
if (missing) process.stdout.write(`# canary-analysis: skipped: ${missing}\n`);

const errorRate = (model: string, over: Partial<CanaryMetric> = {}): CanaryMetric => ({
  name: 'error-rate',
  query:
    `sum(rate(model_errors_total{model="${model}",version="{{version}}"}[5s]))` +
    ` / sum(rate(model_requests_total{model="${model}",version="{{version}}"}[5s]))`,
  successCondition: 'result < 0.05',
  intervalMs: 1000,
  count: 3,
  failureLimit: 1,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 2,
  ...over,
});

const p99 = (model: string): CanaryMetric => ({
  name: 'p99-latency',
  query: `histogram_quantile(0.99, sum by (le) (rate(model_request_duration_seconds_bucket{model="${model}",revision="{{revision}}"}[5s])))`,
  successCondition: 'result < 0.1',
  failureCondition: 'result >= 0.25',
  intervalMs: 1000,
  count: 3,
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 2,
});

describe('canary analysis against a real Prometheus', { skip: missing }, () => {
  let server: ModelServer;
  let prom: PrometheusServer;
  let acts: ReturnType<typeof createCanaryActivities>;

  before(async () => {
    server = await startModelServer({ requestsPerSecond: 200 });
    prom = await startPrometheus({ targets: [server.target] });
    acts = createCanaryActivities({ prometheus: new PrometheusClient({ url: prom.url, timeoutMs: 5000 }) });
  });
  after(async () => {
    await prom?.stop();
    await server?.stop();
  });

  /** A new version serving traffic, scraped twice so rate() over it has two points. */
  async function serving(model: string, version: number, behaviour: { errorRate?: number; latencyMs?: number } = {}) {
    server.setVersion({ model, version, revision: `${model}-predictor-0000${version}` }, { errorRate: 0, latencyMs: 20, ...behaviour });
    await prom.waitForScrape(server.target);
    await prom.waitForScrape(server.target);
  }

  /** One sample after a fresh scrape, as the workflow takes one per interval. */
  async function sample(metric: CanaryMetric, model: string, version: number, k: number): Promise<Measurement> {
    await prom.waitForScrape(server.target);
    return acts.measureCanary({ model, version, revision: `${model}-predictor-0000${version}`, step: 0, percent: 10, metric, sampleIndex: k });
  }

  /** Samples until the judgement is no longer running (bounded), as the workflow loops. */
  async function analyse(metric: CanaryMetric, model: string, version: number, max = 10): Promise<{ verdict: string; samples: Measurement[] }> {
    const samples: Measurement[] = [];
    for (let k = 0; k < max; k++) {
      samples.push(await sample(metric, model, version, k));
      const verdict = judgeMetric(metric, samples);
      if (verdict !== 'running') return { verdict, samples };
    }
    return { verdict: 'running', samples };
  }

  test('when the canary is healthy, then every error-rate and latency sample is successful and both metrics succeed', async () => {
    const model = unique('healthy');
    await serving(model, 2, { errorRate: 0.01, latencyMs: 20 });
    const rate = await analyse(errorRate(model), model, 2);
    assert.equal(rate.verdict, 'successful');
    assert.equal(rate.samples.length, 3);
    for (const m of rate.samples) {
      assert.equal(m.phase, 'successful', m.message);
      assert.ok(m.value !== undefined && m.value >= 0 && m.value < 0.05, `error rate ${m.value}`);
      assert.match(m.query!, new RegExp(`version="2"`));
      assert.doesNotMatch(m.query!, /\{\{/);
    }
    const latency = await analyse(p99(model), model, 2);
    assert.equal(latency.verdict, 'successful');
    for (const m of latency.samples) assert.ok(m.phase === 'successful' && m.value! <= 0.025, `${m.phase} ${m.value} ${m.message}`);
  });

  test('when the error rate is raised, then the metric fails after exactly failureLimit + 1 samples with the values recorded', async () => {
    const model = unique('failing');
    const metric = errorRate(model, { count: 10, failureLimit: 1 });
    await serving(model, 3);
    const before = await sample(metric, model, 3, 0);
    assert.equal(before.phase, 'successful', before.message);

    const errorsAtRaise = server.counts({ model, version: 3, revision: `${model}-predictor-00003` })!.errors;
    server.setVersion({ model, version: 3, revision: `${model}-predictor-00003` }, { errorRate: 0.5 });
    // "After the raise" = once a second of failing traffic has been served (a wait on the stand-in's counter).
    await eventually('a second of failing traffic', () => server.counts({ model, version: 3, revision: `${model}-predictor-00003` })!.errors >= errorsAtRaise + 100 || undefined);

    const samples: Measurement[] = [before];
    for (let k = 1; judgeMetric(metric, samples) === 'running' && k <= 10; k++) samples.push(await sample(metric, model, 3, k));
    assert.equal(judgeMetric(metric, samples), 'failed');
    const failing = samples.slice(1);
    assert.equal(failing.length, metric.failureLimit + 1, `samples after the raise: ${failing.map((m) => `${m.phase} ${m.value}`).join(', ')}`);
    for (const m of failing) {
      assert.equal(m.phase, 'failed');
      assert.ok(m.value !== undefined && m.value >= 0.05, `error rate ${m.value}`);
      assert.match(m.message!, /does not meet successCondition result < 0\.05/);
      assert.match(m.query!, /model_errors_total\{model="failing-[^"]+",version="3"\}/);
    }
  });

  test('when a query selects no series, then the sample is inconclusive (no data), not successful', async () => {
    const model = unique('nodata');
    const m = await sample(errorRate(model), model, 99, 0);
    assert.equal(m.phase, 'inconclusive');
    assert.match(m.message!, /no data: the query returned an empty vector/);
    assert.equal(judgeMetric(errorRate(model), [m]), 'inconclusive');
  });

  test('when a query returns several series, then the sample is inconclusive and asks for an aggregation', async () => {
    const model = unique('multi');
    await serving(model, 4);
    server.setVersion({ model, version: 4, revision: 'other-rev' }, {});
    await prom.waitForScrape(server.target);
    const metric = errorRate(model, { query: `model_requests_total{model="${model}",version="{{version}}"}`, successCondition: 'result > 0' });
    const m = await sample(metric, model, 4, 0);
    assert.equal(m.phase, 'inconclusive');
    assert.match(m.message!, /returned 2 series; aggregate it/);
  });

  test('when the query is not valid PromQL, then the sample is an error naming Prometheus\'s reason', async () => {
    const model = unique('badql');
    const m = await sample(errorRate(model, { query: 'sum(rate(model_requests_total{version="{{version}}"}[5s])' }), model, 1, 0);
    assert.equal(m.phase, 'error');
    assert.match(m.message!, /^Prometheus at 127\.0\.0\.1:\d+: HTTP 400: bad_data: /);
    assert.equal(m.message!.includes('\n'), false);
  });

  test('when the revision is hostile, then no query runs and the sample is inconclusive', async () => {
    const model = unique('inject');
    await serving(model, 5);
    const m = await acts.measureCanary({
      model,
      version: 5,
      revision: 'x"} or vector(0) or up{a="',
      step: 0,
      percent: 10,
      metric: p99(model),
      sampleIndex: 0,
    });
    assert.equal(m.phase, 'inconclusive');
    assert.equal(m.query, undefined, 'nothing was sent');
    assert.equal(m.message, 'query not run: revision is not a Kubernetes object name');
  });

  test('when Prometheus is stopped, then samples are errors and the metric turns inconclusive after consecutiveErrorLimit', async () => {
    const model = unique('outage');
    const metric = errorRate(model, { consecutiveErrorLimit: 2 });
    await serving(model, 6);
    const ok = await sample(metric, model, 6, 0);
    assert.equal(ok.phase, 'successful', ok.message);
    await prom.stop();
    try {
      const samples: Measurement[] = [ok];
      for (let k = 1; judgeMetric(metric, samples) === 'running' && k <= 10; k++) {
        samples.push(await acts.measureCanary({ model, version: 6, step: 1, percent: 50, metric, sampleIndex: k }));
      }
      assert.equal(judgeMetric(metric, samples), 'inconclusive');
      const errors = samples.slice(1);
      assert.equal(errors.length, metric.consecutiveErrorLimit + 1);
      for (const m of errors) {
        assert.equal(m.phase, 'error');
        assert.match(m.message!, /^Prometheus at 127\.0\.0\.1:\d+: unreachable \(ECONNREFUSED\)$/);
      }
    } finally {
      await prom.start();
    }
  });
});

describe('model-server stand-in control', () => {
  test('when a version is set over HTTP, then its counters follow the error rate; a bad body is a 400', async () => {
    const server = await startModelServer({ requestsPerSecond: 1000 });
    try {
      const post = (body: unknown) => fetch(`${server.url}/control/versions`, { method: 'POST', body: JSON.stringify(body) });
      assert.equal((await post({ model: 'm', version: 1, revision: 'm-1', errorRate: 0.25 })).status, 204);
      const c = await eventually('200 requests served', () => {
        const n = server.counts({ model: 'm', version: 1, revision: 'm-1' });
        return n && n.requests >= 200 ? n : undefined;
      });
      assert.ok(Math.abs(c.errors / c.requests - 0.25) < 0.02, `errors ${c.errors} of ${c.requests}`);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      assert.match(text, /^model_requests_total\{model="m",version="1",revision="m-1"\} \d+$/m);
      assert.match(text, /^model_request_duration_seconds_bucket\{model="m",version="1",revision="m-1",le="0.025"\} \d+$/m);
      assert.equal((await post({ model: 'm', version: 1, errorRate: 2 })).status, 400);
      assert.equal((await post({ version: 1 })).status, 400);
    } finally {
      await server.stop();
    }
  });
});

describe('canary activity without Prometheus', () => {
  test('when no Prometheus is configured, then measureCanary fails nonRetryable PrometheusNotConfigured', async () => {
    const acts = createCanaryActivities({});
    await assert.rejects(
      acts.measureCanary({ model: 'm', version: 1, step: 0, percent: 10, metric: errorRate('m'), sampleIndex: 0 }),
      (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, 'PrometheusNotConfigured');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /set MODELGATE_PROMETHEUS_URL/);
        return true;
      },
    );
  });

  test('when the metric in the input has a bad condition, then measureCanary fails nonRetryable InvalidCanaryMetric', async () => {
    const acts = createCanaryActivities({ prometheus: { query: () => Promise.reject(new Error('must not be called')) } });
    await assert.rejects(
      acts.measureCanary({ model: 'm', version: 1, step: 0, percent: 10, metric: { ...errorRate('m'), successCondition: 'result <' }, sampleIndex: 0 }),
      { type: 'InvalidCanaryMetric', nonRetryable: true },
    );
  });
});
