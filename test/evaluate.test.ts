/**
 * The evaluation gate as a pure function: every comparator at its boundary, required tags, regression in
 * both directions with tolerance, and the no-baseline cases. No servers needed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate } from '../src/policy/evaluate.js';
import type { Comparator, EvaluationPolicy, RegressionRule } from '../src/policy/types.js';

const none: EvaluationPolicy = { thresholds: [], requiredTags: [], noRegression: [] };
const only = (p: Partial<EvaluationPolicy>): EvaluationPolicy => ({ ...none, ...p });

describe('thresholds', () => {
  // [op, bound, actual, passes]: each comparator just below, at and just above its bound.
  const table: Array<[Comparator, number, number, boolean]> = [
    ['>=', 0.9, 0.89, false],
    ['>=', 0.9, 0.9, true],
    ['>=', 0.9, 0.91, true],
    ['>', 0.9, 0.9, false],
    ['>', 0.9, 0.90001, true],
    ['<=', 50, 50, true],
    ['<=', 50, 50.5, false],
    ['<', 50, 50, false],
    ['<', 50, 49.9, true],
    ['==', 1, 1, true],
    ['==', 1, 0.999, false],
  ];
  for (const [op, value, actual, passes] of table) {
    test(`when m = ${actual} and the threshold is m ${op} ${value}, then the check ${passes ? 'passes' : 'fails'}`, () => {
      const r = evaluate(only({ thresholds: [{ metric: 'm', op, value }] }), { metrics: { m: actual }, tags: {} });
      assert.equal(r.passed, passes);
      assert.equal(r.checks.length, 1);
      assert.deepEqual(r.checks[0], {
        rule: `m ${op} ${value}`,
        passed: passes,
        actual,
        detail: passes ? `m = ${actual}, meets ${op} ${value}` : `m = ${actual}, needs ${op} ${value}`,
      });
      assert.deepEqual(r.reasons, passes ? [] : [`m = ${actual}, needs ${op} ${value}`]);
    });
  }

  test('when the metric was not logged, then the check fails saying so', () => {
    const r = evaluate(only({ thresholds: [{ metric: 'accuracy', op: '>=', value: 0.9 }] }), { metrics: { loss: 0.1 }, tags: {} });
    assert.equal(r.passed, false);
    assert.deepEqual(r.checks[0], { rule: 'accuracy >= 0.9', passed: false, detail: 'metric accuracy not logged on the run' });
    assert.deepEqual(r.reasons, ['metric accuracy not logged on the run']);
  });

  test('when the metric is NaN, then every comparator fails and no number is recorded', () => {
    const r = evaluate(only({ thresholds: [{ metric: 'm', op: '<=', value: 1 }] }), { metrics: { m: NaN }, tags: {} });
    assert.equal(r.passed, false);
    assert.equal(r.checks[0].actual, undefined);
    assert.deepEqual(r.candidateMetrics, {});
  });

  test('when a metric is named like an Object property, then it is not found on the prototype', () => {
    const r = evaluate(only({ thresholds: [{ metric: 'constructor', op: '>', value: 0 }] }), { metrics: {}, tags: {} });
    assert.equal(r.checks[0].detail, 'metric constructor not logged on the run');
  });
});

describe('required tags', () => {
  const policy = only({ requiredTags: ['data.lookback_days', 'training.source'] });

  test('when every required tag is set, then the checks pass', () => {
    const r = evaluate(policy, { metrics: {}, tags: { 'data.lookback_days': '30', 'training.source': 'kfp', other: '' } });
    assert.equal(r.passed, true);
    assert.deepEqual(
      r.checks.map((c) => [c.rule, c.passed, c.detail]),
      [
        ['tag data.lookback_days is set', true, 'tag data.lookback_days = "30"'],
        ['tag training.source is set', true, 'tag training.source = "kfp"'],
      ],
    );
  });

  test('when one tag is missing and one is blank, then both fail with one reason each', () => {
    const r = evaluate(policy, { metrics: {}, tags: { 'training.source': '  ' } });
    assert.equal(r.passed, false);
    assert.deepEqual(r.reasons, ['tag data.lookback_days not set on the run', 'tag training.source is empty on the run']);
  });
});

describe('no regression against Production', () => {
  const hi: RegressionRule = { metric: 'accuracy', direction: 'higher_is_better', tolerance: 0.02 };
  const lo: RegressionRule = { metric: 'latency_ms', direction: 'lower_is_better', tolerance: 5 };

  // [rule, baseline, candidate, passes]: inside, exactly at (written decimals) and beyond the tolerance.
  const table: Array<[RegressionRule, number, number, boolean]> = [
    [hi, 0.9, 0.95, true],
    [hi, 0.9, 0.89, true],
    [hi, 0.9, 0.88, true],
    [hi, 0.9, 0.879, false],
    [lo, 40, 30, true],
    [lo, 40, 45, true],
    [lo, 40, 45.01, false],
    [{ ...hi, tolerance: 0 }, 0.9, 0.9, true],
    [{ ...hi, tolerance: 0 }, 0.9, 0.8999, false],
  ];
  for (const [rule, base, cand, passes] of table) {
    test(`when ${rule.direction} ${rule.metric} goes ${base} → ${cand} with tolerance ${rule.tolerance}, then it ${passes ? 'passes' : 'fails'}`, () => {
      const r = evaluate(only({ noRegression: [rule] }), { metrics: { [rule.metric]: cand }, tags: {} }, { version: 3, metrics: { [rule.metric]: base } });
      assert.equal(r.passed, passes);
      const check = r.checks[0];
      assert.equal(check.rule, `no regression of ${rule.metric} beyond ${rule.tolerance}`);
      assert.equal(check.actual, cand);
      if (passes) assert.deepEqual(r.reasons, []);
      else {
        const side = rule.direction === 'higher_is_better' ? 'below' : 'above';
        assert.deepEqual(r.reasons, [`${rule.metric} = ${cand} is ${side} Production v3's ${base} by more than ${rule.tolerance}`]);
      }
      assert.equal(r.baselineVersion, 3);
      assert.deepEqual(r.baselineMetrics, { [rule.metric]: base });
    });
  }

  test('when there is no Production version, then the rule passes and no baseline is recorded', () => {
    const r = evaluate(only({ noRegression: [hi] }), { metrics: { accuracy: 0.1 }, tags: {} });
    assert.equal(r.passed, true);
    assert.equal(r.checks[0].detail, 'no Production version to compare');
    assert.equal(r.baselineVersion, undefined);
    assert.equal(r.baselineMetrics, undefined);
    assert.equal('baselineVersion' in r, false, 'no undefined-valued keys in the history payload');
  });

  test("when the Production version's run lacks the metric, then the rule passes saying so", () => {
    const r = evaluate(only({ noRegression: [hi] }), { metrics: { accuracy: 0.1 }, tags: {} }, { version: 7, metrics: { loss: 1 } });
    assert.equal(r.passed, true);
    assert.equal(r.checks[0].detail, 'Production v7 has no accuracy to compare');
    assert.deepEqual(r.baselineMetrics, {});
  });

  test('when the candidate lacks the metric but Production has it, then the rule fails', () => {
    const r = evaluate(only({ noRegression: [hi] }), { metrics: {}, tags: {} }, { version: 7, metrics: { accuracy: 0.9 } });
    assert.equal(r.passed, false);
    assert.deepEqual(r.reasons, ['metric accuracy not logged on the run (Production v7 has 0.9)']);
  });
});

describe('the whole result', () => {
  test('when checks of every kind run, then order, reasons, passed and recorded metrics follow the policy', () => {
    const policy: EvaluationPolicy = {
      thresholds: [
        { metric: 'accuracy', op: '>=', value: 0.85 },
        { metric: 'latency_p99_ms', op: '<=', value: 50 },
      ],
      requiredTags: ['data.lookback_days'],
      noRegression: [{ metric: 'accuracy', direction: 'higher_is_better', tolerance: 0.02 }],
    };
    const candidate = { metrics: { accuracy: 0.86, latency_p99_ms: 60, unrelated: 1 }, tags: { 'data.lookback_days': '30' } };
    const r = evaluate(policy, candidate, { version: 2, metrics: { accuracy: 0.95, unrelated: 2 } });
    assert.equal(r.passed, false);
    assert.deepEqual(
      r.checks.map((c) => [c.rule, c.passed]),
      [
        ['accuracy >= 0.85', true],
        ['latency_p99_ms <= 50', false],
        ['tag data.lookback_days is set', true],
        ['no regression of accuracy beyond 0.02', false],
      ],
    );
    assert.deepEqual(r.reasons, [
      'latency_p99_ms = 60, needs <= 50',
      "accuracy = 0.86 is below Production v2's 0.95 by more than 0.02",
    ]);
    assert.deepEqual(r.candidateMetrics, { accuracy: 0.86, latency_p99_ms: 60 });
    assert.deepEqual(r.baselineMetrics, { accuracy: 0.95 });
    assert.deepEqual(JSON.parse(JSON.stringify(r)), r, 'plain JSON for workflow history');
    assert.deepEqual(evaluate(policy, candidate, { version: 2, metrics: { accuracy: 0.95 } }), r, 'deterministic');
  });

  test('when the policy has no checks, then the version passes with no checks', () => {
    assert.deepEqual(evaluate(none, { metrics: { a: 1 }, tags: {} }), { passed: true, checks: [], reasons: [], candidateMetrics: {} });
  });
});
