import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deltaClass, metricDirection } from '../src/ui/metric-direction.js';
import type { EvaluationPolicy } from '../src/policy/types.js';

const policy: EvaluationPolicy = {
  thresholds: [
    { metric: 'accuracy', op: '>=', value: 0.9 },
    { metric: 'latency_ms', op: '<=', value: 50 },
    { metric: 'odd', op: '>=', value: 1 },
    { metric: 'odd', op: '<=', value: 2 },
  ],
  requiredTags: [],
  noRegression: [{ metric: 'p99_ms', direction: 'lower_is_better', tolerance: 1 }],
};

describe('metric direction on the version page', () => {
  test('when the policy says which way a metric is better, then a lower latency is green and a lower accuracy red', () => {
    assert.equal(deltaClass(metricDirection(policy, 'latency_ms'), -5), 'pass');
    assert.equal(deltaClass(metricDirection(policy, 'latency_ms'), 5), 'fail');
    assert.equal(deltaClass(metricDirection(policy, 'accuracy'), -0.01), 'fail');
    assert.equal(deltaClass(metricDirection(policy, 'accuracy'), 0.01), 'pass');
    assert.equal(deltaClass(metricDirection(policy, 'p99_ms'), -3), 'pass');
  });

  test('when the policy does not say (or says both ways), then the delta is not coloured', () => {
    assert.equal(metricDirection(policy, 'f1'), 'unknown');
    assert.equal(metricDirection(policy, 'odd'), 'unknown');
    assert.equal(metricDirection(undefined, 'accuracy'), 'unknown');
    assert.equal(deltaClass('unknown', 3), 'muted');
    assert.equal(deltaClass('higher', 0), 'muted');
  });
});
