/**
 * `deployment.canary` in the policy file: the resolved shape, and that every mistake a reviewer could make
 * (a bad condition, steps that do not increase or end short of 100, an interval under a second, an unknown
 * placeholder, limits that can never be reached, a canary where KServe cannot split traffic) stops the load
 * with file:line:col and the key path. Pure; no servers needed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyError } from '../src/policy/load.js';

const yaml = (...lines: string[]) => lines.join('\n') + '\n';

/** A gitops + kserve policy whose canary block is `canary` (lines start at line 8, indented under `canary:`). */
function withCanary(...canary: string[]): string {
  return yaml(
    'defaults:',
    '  approval: { approvers: [a] }',
    '  deployment:',
    '    mode: gitops',
    '    gitops: { provider: git, repo: /srv/gitops, manifestPath: isvc.yaml, namespace: ml, inferenceService: churn }',
    '    kserve: { rolloutDeadline: 10m }',
    '    canary:',
    ...canary.map((l) => `      ${l}`),
  );
}

const METRIC = [
  'metrics:',
  '  - name: error-rate',
  '    query: sum(rate(model_errors_total{version="{{version}}"}[1m])) / sum(rate(model_requests_total{version="{{ version }}"}[1m]))',
  '    successCondition: result < 0.05',
];

function errorOf(text: string): string {
  try {
    parsePolicy(text, 'policy.yaml');
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected PolicyError, got ${String(err)}`);
    assert.equal(err.message.includes('\n'), false, 'message is one line');
    return err.message;
  }
  assert.fail('expected a PolicyError');
}

describe('deployment.canary resolves', () => {
  test('when steps are bare percents and metrics use defaults, then the policy has ms durations and Argo defaults', () => {
    const p = parsePolicy(withCanary('steps: [10, 50, 100]', ...METRIC), 'policy.yaml').policyFor('churn');
    assert.deepEqual(p.deployment.canary, {
      steps: [
        { percent: 10, pauseMs: 0 },
        { percent: 50, pauseMs: 0 },
        { percent: 100, pauseMs: 0 },
      ],
      metrics: [
        {
          name: 'error-rate',
          query: 'sum(rate(model_errors_total{version="{{version}}"}[1m])) / sum(rate(model_requests_total{version="{{ version }}"}[1m]))',
          successCondition: 'result < 0.05',
          intervalMs: 30_000,
          count: 5,
          failureLimit: 0,
          inconclusiveLimit: 0,
          consecutiveErrorLimit: 4,
        },
      ],
    });
  });

  test('when steps carry pauses and a metric sets every key, then all of it resolves as written', () => {
    const p = parsePolicy(
      withCanary(
        'steps: [{ percent: 5, pause: 2m }, { percent: 50, pause: 30s }, 100]',
        'finalSoak: 10m',
        'metrics:',
        '  - name: p99',
        '    query: histogram_quantile(0.99, sum by (le) (rate(model_latency_seconds_bucket{revision="{{revision}}"}[1m])))',
        '    successCondition: result <= 0.25',
        '    failureCondition: result > 0.5 or isNaN(result)',
        '    interval: 1s',
        '    count: 10',
        '    failureLimit: 2',
        '    inconclusiveLimit: 3',
        '    consecutiveErrorLimit: 0',
      ),
      'policy.yaml',
    ).policyFor('churn');
    const c = p.deployment.canary!;
    assert.deepEqual(c.steps, [
      { percent: 5, pauseMs: 120_000 },
      { percent: 50, pauseMs: 30_000 },
      { percent: 100, pauseMs: 0 },
    ]);
    assert.equal(c.finalSoakMs, 600_000);
    assert.deepEqual(
      { ...c.metrics[0], query: undefined },
      {
        name: 'p99',
        query: undefined,
        successCondition: 'result <= 0.25',
        failureCondition: 'result > 0.5 or isNaN(result)',
        intervalMs: 1000,
        count: 10,
        failureLimit: 2,
        inconclusiveLimit: 3,
        consecutiveErrorLimit: 0,
      },
    );
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(p))), JSON.stringify(p), 'plain JSON data');
  });

  test('when the base takes only merges, then commit: pull-request resolves as written (the default is direct, left out)', () => {
    const p = parsePolicy(withCanary('steps: [10, 100]', 'commit: pull-request', ...METRIC), 'policy.yaml').policyFor('churn');
    assert.equal(p.deployment.canary?.commit, 'pull-request');
    const d = parsePolicy(withCanary('steps: [10, 100]', ...METRIC), 'policy.yaml').policyFor('churn');
    assert.equal('commit' in d.deployment.canary!, false);
  });

  test('when no canary is configured, then the deployment has no canary key', () => {
    const p = parsePolicy(yaml('defaults:', '  approval: { approvers: [a] }'), 'policy.yaml').policyFor('m');
    assert.equal('canary' in p.deployment, false);
  });
});

describe('deployment.canary errors name file:line:col and the key path', () => {
  const cases: Array<{ when: string; text: string; message: string }> = [
    {
      when: 'a success condition does not parse',
      text: withCanary('steps: [10, 100]', ...METRIC.slice(0, 3), '    successCondition: result <> 0.05'),
      message: 'policy.yaml:12:29: defaults.deployment.canary.metrics[0].successCondition: invalid condition "result <> 0.05": expected a number or result, got ">" at column 9',
    },
    {
      when: 'a condition calls something that is not in the language',
      text: withCanary('steps: [10, 100]', ...METRIC.slice(0, 3), '    successCondition: exit(1) == 0'),
      message:
        'policy.yaml:12:29: defaults.deployment.canary.metrics[0].successCondition: invalid condition "exit(1) == 0": unknown name "exit" (only result, isNaN, and, or, not) at column 1',
    },
    {
      when: 'a failure condition is not a comparison',
      text: withCanary('steps: [10, 100]', ...METRIC, '    failureCondition: result'),
      message:
        'policy.yaml:13:29: defaults.deployment.canary.metrics[0].failureCondition: invalid condition "result": expected a comparison (<, <=, >, >=, ==, !=), got end of condition at column 7',
    },
    {
      when: 'the step commit mode is neither direct nor pull-request',
      text: withCanary('steps: [10, 100]', 'commit: push', ...METRIC),
      message: 'policy.yaml:9:15: defaults.deployment.canary.commit: must be one of direct, pull-request (got "push")',
    },
    {
      when: 'steps do not increase',
      text: withCanary('steps: [10, 50, 50, 100]', ...METRIC),
      message: 'policy.yaml:8:23: defaults.deployment.canary.steps[2]: steps must increase: 50 after 50',
    },
    {
      when: 'steps do not end at 100',
      text: withCanary('steps: [10, 50]', ...METRIC),
      message:
        'policy.yaml:8:19: defaults.deployment.canary.steps[1]: the last step must be 100 (got 50): a canary ends with the version serving all traffic',
    },
    {
      when: 'a step is over 100 percent',
      text: withCanary('steps: [10, 150]', ...METRIC),
      message: 'policy.yaml:8:19: defaults.deployment.canary.steps[1]: expected a percent (1–100) or { percent, pause }',
    },
    {
      when: 'there are no steps',
      text: withCanary('steps: []', ...METRIC),
      message: 'policy.yaml:8:14: defaults.deployment.canary.steps: needs at least one step',
    },
    {
      when: 'an interval is under a second',
      text: withCanary('steps: [100]', ...METRIC, '    interval: 500ms'),
      message: 'policy.yaml:13:21: defaults.deployment.canary.metrics[0].interval: interval "500ms" must be at least 1s',
    },
    {
      when: 'a query uses an unknown placeholder',
      text: withCanary('steps: [100]', 'metrics:', '  - name: e', '    query: rate(x{model="{{model}}",v="{{version}}"}[1m])', '    successCondition: result < 1'),
      message: 'policy.yaml:11:18: defaults.deployment.canary.metrics[0].query: unknown placeholder "{{model}}" (allowed: {{version}}, {{revision}})',
    },
    {
      when: 'a query has an unclosed placeholder',
      text: withCanary('steps: [100]', 'metrics:', '  - name: e', '    query: rate(x{v="{{version"}[1m])', '    successCondition: result < 1'),
      message: 'policy.yaml:11:18: defaults.deployment.canary.metrics[0].query: unknown placeholder "{{" (allowed: {{version}}, {{revision}})',
    },
    {
      when: 'failureLimit is not below count',
      text: withCanary('steps: [100]', ...METRIC, '    count: 3', '    failureLimit: 3'),
      message: 'policy.yaml:14:25: defaults.deployment.canary.metrics[0].failureLimit: failureLimit 3 must be less than count 3, or the metric could never fail',
    },
    {
      when: 'inconclusiveLimit is not below count',
      text: withCanary('steps: [100]', ...METRIC, '    count: 2', '    inconclusiveLimit: 5'),
      message:
        'policy.yaml:14:30: defaults.deployment.canary.metrics[0].inconclusiveLimit: inconclusiveLimit 5 must be less than count 2, or a metric without data could pass',
    },
    {
      when: 'two metrics share a name',
      text: withCanary('steps: [100]', ...METRIC, '  - name: error-rate', '    query: up', '    successCondition: result == 1'),
      message: 'policy.yaml:13:17: defaults.deployment.canary.metrics[1].name: duplicate metric name "error-rate"',
    },
    {
      when: 'a metric key is misspelt',
      text: withCanary('steps: [100]', ...METRIC, '    sucessCondition: result < 1'),
      message:
        'policy.yaml:13:11: defaults.deployment.canary.metrics[0].sucessCondition: unknown key (allowed: name, query, successCondition, failureCondition, interval, count, failureLimit, inconclusiveLimit, consecutiveErrorLimit)',
    },
    {
      when: 'there are no metrics',
      text: withCanary('steps: [100]') + yaml('models:', '  churn: {}'),
      message: 'policy.yaml:7:5: defaults.deployment.canary.metrics: required',
    },
    {
      when: 'the deployment mode is registry',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  deployment:', '    canary:', '      steps: [100]', ...METRIC.map((l) => `      ${l}`)),
      message:
        'policy.yaml:5:7: defaults.deployment.canary: a canary needs mode gitops (it moves traffic by committing canaryTrafficPercent to the InferenceService)',
    },
    {
      when: 'there is no kserve section to watch the split',
      text: withCanary('steps: [100]', ...METRIC).replace('    kserve: { rolloutDeadline: 10m }\n', ''),
      message:
        'policy.yaml:7:7: defaults.deployment.canary: a canary needs deployment.kserve (each step waits until the InferenceService reports the traffic split)',
    },
    {
      when: 'the InferenceService is a RawDeployment',
      text: withCanary('steps: [100]', ...METRIC).replace('    kserve: { rolloutDeadline: 10m }', '    kserve: { deploymentMode: RawDeployment }'),
      message:
        'policy.yaml:8:7: defaults.deployment.canary: a canary needs kserve.deploymentMode Serverless: RawDeployment InferenceServices ignore canaryTrafficPercent',
    },
  ];
  for (const c of cases) {
    test(`when ${c.when}, then the error says where and why`, () => {
      assert.equal(errorOf(c.text), c.message);
    });
  }
});
