/**
 * The pure canary judgement, Argo Rollouts semantics: failureLimit, inconclusiveLimit, consecutiveErrorLimit
 * (→ inconclusive), count — and where it departs from Argo for safety: errors never count towards `count`,
 * and `count` samples without one success are inconclusive. Also the step verdict and the decisive samples.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decisive, judgeMetric, judgeStep, needsMoreSamples, tally } from '../src/canary/judge.js';
import type { CanaryMetric, Measurement, MeasurementPhase } from '../src/canary/types.js';
import type { JudgeMetric, JudgeStep } from '../src/canary/types.js';
import { planSamples } from '../src/canary/schedule.js';
import { summarizeStep } from '../src/canary/summary.js';

const metric = (over: Partial<CanaryMetric> = {}): CanaryMetric => ({
  name: 'error-rate',
  query: 'up',
  successCondition: 'result < 0.05',
  intervalMs: 1000,
  count: 3,
  failureLimit: 0,
  inconclusiveLimit: 0,
  consecutiveErrorLimit: 2,
  ...over,
});

const CODE: Record<string, MeasurementPhase> = { s: 'successful', f: 'failed', i: 'inconclusive', e: 'error' };
/** 'ssf' → three measurements: successful, successful, failed. */
const ms = (phases: string, name = 'error-rate'): Measurement[] =>
  [...phases].map((p, k) => ({ metric: name, phase: CODE[p], at: new Date(k * 1000).toISOString(), sampleIndex: k }));

describe('judgeMetric', () => {
  const cases: Array<[string, Partial<CanaryMetric>, string, string]> = [
    ['no samples yet', {}, '', 'running'],
    ['fewer successes than count', {}, 'ss', 'running'],
    ['count successes', {}, 'sss', 'successful'],
    ['the first failure with failureLimit 0', {}, 'f', 'failed'],
    ['a failure after successes with failureLimit 0', {}, 'ssf', 'failed'],
    ['failures up to failureLimit', { failureLimit: 1, count: 4 }, 'sfs', 'running'],
    ['failures up to failureLimit, then count reached', { failureLimit: 1, count: 3 }, 'sfs', 'successful'],
    ['one failure more than failureLimit', { failureLimit: 1, count: 5 }, 'sfsf', 'failed'],
    ['the first inconclusive with inconclusiveLimit 0', {}, 'si', 'inconclusive'],
    ['inconclusives up to the limit', { inconclusiveLimit: 1 }, 'is', 'running'],
    ['inconclusives up to the limit, then count', { inconclusiveLimit: 1 }, 'iss', 'successful'],
    ['errors up to consecutiveErrorLimit', {}, 'ee', 'running'],
    ['errors over consecutiveErrorLimit', {}, 'eee', 'inconclusive'],
    ['errors broken by a success', {}, 'eesee', 'running'],
    ['consecutiveErrorLimit 0 and one error', { consecutiveErrorLimit: 0 }, 'se', 'inconclusive'],
    // Errors never count towards count: an outage cannot run out the count and pass the version unmeasured.
    ['count reached only with errors in between', {}, 'sesees', 'successful'],
    ['count measurements that are all errors (under the limit)', { count: 2, consecutiveErrorLimit: 5 }, 'ee', 'running'],
    // Count reached with tolerated failures and inconclusives but not one success: no evidence of health.
    ['count reached without any success', { count: 2, failureLimit: 1, inconclusiveLimit: 1 }, 'fi', 'inconclusive'],
    // Failed is checked before inconclusive, as in Argo.
    ['a failure and an inconclusive both over their limits', {}, 'if', 'failed'],
    ['samples past a verdict', {}, 'fsss', 'failed'],
  ];
  for (const [when, over, phases, want] of cases) {
    test(`when ${when} (${phases || 'none'}), then the metric is ${want}`, () => {
      assert.equal(judgeMetric(metric(over), ms(phases)), want);
      assert.equal(needsMoreSamples(metric(over), ms(phases)), want === 'running');
    });
  }

  test('when the samples are tallied, then consecutive errors count only the trailing run', () => {
    assert.deepEqual(tally(ms('eesfiee')), { successful: 1, failed: 1, inconclusive: 1, error: 4, consecutiveErrors: 2 });
  });

  test('when the signatures are those of types.ts, then the implementations fit them', () => {
    const jm: JudgeMetric = judgeMetric;
    const js: JudgeStep = judgeStep;
    assert.equal(typeof jm, 'function');
    assert.equal(typeof js, 'function');
  });
});

describe('judgeStep', () => {
  const a = metric({ name: 'a' });
  const b = metric({ name: 'b', count: 2 });

  test('when every metric succeeded, then the step is successful', () => {
    assert.equal(judgeStep([a, b], { a: ms('sss', 'a'), b: ms('ss', 'b') }), 'successful');
  });
  test('when one metric still runs, then the step runs', () => {
    assert.equal(judgeStep([a, b], { a: ms('ss', 'a'), b: ms('ss', 'b') }), 'running');
  });
  test('when a metric has no samples at all, then the step runs', () => {
    assert.equal(judgeStep([a, b], { a: ms('sss', 'a') }), 'running');
  });
  test('when one metric failed while another runs, then the step fails at once', () => {
    assert.equal(judgeStep([a, b], { a: ms('s', 'a'), b: ms('f', 'b') }), 'failed');
  });
  test('when one metric is inconclusive and another failed, then the step failed', () => {
    assert.equal(judgeStep([a, b], { a: ms('i', 'a'), b: ms('f', 'b') }), 'failed');
  });
  test('when one metric is inconclusive and the other successful, then the step is inconclusive', () => {
    assert.equal(judgeStep([a, b], { a: ms('i', 'a'), b: ms('ss', 'b') }), 'inconclusive');
  });
  test('when samples are keyed by a name like __proto__, then only own keys count', () => {
    const proto = metric({ name: '__proto__' });
    assert.equal(judgeStep([proto], {}), 'running');
  });
  test('when there are no metrics, then the step is successful', () => {
    assert.equal(judgeStep([], {}), 'successful');
  });
});

describe('decisive samples', () => {
  test('when failed, then the failed samples; when inconclusive, the inconclusive or trailing errors', () => {
    assert.deepEqual(decisive(ms('sfsf'), 'failed').map((m) => m.sampleIndex), [1, 3]);
    assert.deepEqual(decisive(ms('sis'), 'inconclusive').map((m) => m.sampleIndex), [1]);
    assert.deepEqual(decisive(ms('seee'), 'inconclusive').map((m) => m.sampleIndex), [1, 2, 3]);
    assert.deepEqual(decisive(ms('sss'), 'successful'), []);
  });
});

describe('summarizeStep', () => {
  const rate = metric({ name: 'error-rate', count: 3, failureLimit: 1 });
  const p99 = metric({ name: 'p99', successCondition: 'result < 0.25', count: 2 });
  const v = (phase: MeasurementPhase, value: number | undefined, k: number, extra: Partial<Measurement> = {}): Measurement => ({
    metric: 'error-rate',
    phase,
    ...(value !== undefined ? { value } : {}),
    at: new Date(k * 1000).toISOString(),
    sampleIndex: k,
    ...extra,
  });

  test('when a metric failed, then the summary names it with the failing values and the step is failed', () => {
    const s = summarizeStep(1, 50, [rate, p99], {
      'error-rate': [v('successful', 0.01, 0), v('failed', 0.312345, 1), v('failed', 0.42, 2, { query: 'sum(x{version="3"})' })],
      p99: [{ ...v('successful', 0.05, 0), metric: 'p99' }],
    });
    assert.equal(s.verdict, 'failed');
    assert.equal(s.summary, 'step 2 (50%): error-rate failed: 0.3123, 0.42 (success: result < 0.05)');
    const m = s.metrics.find((x) => x.metric === 'error-rate')!;
    assert.equal(m.verdict, 'failed');
    assert.deepEqual(m.tally, { successful: 1, failed: 2, inconclusive: 0, error: 0, consecutiveErrors: 0 });
    assert.deepEqual(m.decisive.map((d) => d.value), [0.312345, 0.42]);
    assert.equal(m.decisive[1].query, 'sum(x{version="3"})');
    assert.equal(s.metrics.find((x) => x.metric === 'p99')!.verdict, 'running');
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s, 'plain JSON for history and the audit');
  });

  test('when a metric is inconclusive from errors, then the summary carries the last error message', () => {
    const errs = [0, 1, 2].map((k) => v('error', undefined, k, { message: 'Prometheus at p:9090: unreachable (ECONNREFUSED)' }));
    const s = summarizeStep(0, 10, [rate], { 'error-rate': errs });
    assert.equal(s.verdict, 'inconclusive');
    assert.equal(s.summary, 'step 1 (10%): error-rate inconclusive: Prometheus at p:9090: unreachable (ECONNREFUSED)');
  });

  test('when every metric succeeded, then the summary lists each with its last value', () => {
    const s = summarizeStep(2, 100, [rate, p99], {
      'error-rate': [v('successful', 0.01, 0), v('successful', 0.02, 1), v('successful', 0.013, 2)],
      p99: [0, 1].map((k) => ({ ...v('successful', 0.05, k), metric: 'p99' })),
    });
    assert.equal(s.verdict, 'successful');
    assert.equal(s.summary, 'step 3 (100%): error-rate successful (last 0.013); p99 successful (last 0.05)');
  });
});

describe('planSamples', () => {
  const fast = metric({ name: 'fast', intervalMs: 1000, count: 3 });
  const slow = metric({ name: 'slow', intervalMs: 5000, count: 2 });
  const at = (name: string, ...secs: number[]): Measurement[] =>
    secs.map((s, k) => ({ metric: name, phase: 'successful', at: new Date(s * 1000).toISOString(), sampleIndex: k }));

  test('when the analysis starts, then every metric is due at once', () => {
    assert.deepEqual(planSamples([fast, slow], {}, 10_000, 10_000), { due: [fast, slow] });
  });
  test('when samples were just taken, then the next is due one interval after each finished', () => {
    assert.deepEqual(planSamples([fast, slow], { fast: at('fast', 10.2), slow: at('slow', 10.3) }, 10_000, 10_500), { due: [], nextAtMs: 11_200 });
    assert.deepEqual(planSamples([fast, slow], { fast: at('fast', 10.2), slow: at('slow', 10.3) }, 10_000, 11_200), { due: [fast], nextAtMs: 15_300 });
  });
  test('when a sample took long, then the next waits a full interval after it, no catch-up burst', () => {
    assert.deepEqual(planSamples([fast], { fast: at('fast', 20) }, 10_000, 20_500), { due: [], nextAtMs: 21_000 });
  });
  test('when a metric has its verdict, then it is not sampled again; when all have, nothing is next', () => {
    assert.deepEqual(planSamples([fast, slow], { fast: at('fast', 1, 2, 3), slow: at('slow', 1) }, 0, 4000), { due: [], nextAtMs: 6000 });
    assert.deepEqual(planSamples([fast, slow], { fast: at('fast', 1, 2, 3), slow: at('slow', 1, 6) }, 0, 99_000), { due: [] });
  });
});
