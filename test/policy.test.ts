/**
 * The policy file: parsing, defaults merge, resolved shape, and that every error names file:line:col and
 * the key path. Pure; no servers needed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPolicyFile, NoPolicyError, parsePolicy, PolicyError } from '../src/policy/load.js';
import { parseDuration } from '../src/policy/duration.js';
import { parseThreshold } from '../src/policy/schema.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';

/** Lines joined with \n, so each case's line numbers can be read off the array index (+1). */
const yaml = (...lines: string[]) => lines.join('\n') + '\n';

function errorOf(text: string, file = 'policy.yaml'): PolicyError {
  try {
    parsePolicy(text, file);
  } catch (err) {
    assert.ok(err instanceof PolicyError, `expected PolicyError, got ${String(err)}`);
    assert.equal(err.message.includes('\n'), false, 'message is one line');
    return err;
  }
  assert.fail('expected a PolicyError');
}

const FULL = yaml(
  'defaults:',
  '  evaluation:',
  '    thresholds: ["accuracy >= 0.9", "latency_p99_ms <= 50"]',
  '    requiredTags: [data.lookback_days]',
  '    noRegression:',
  '      - { metric: accuracy, direction: higher_is_better, tolerance: 0.01 }',
  '  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 72h }',
  '  deployment: { mode: registry }',
  '  notify: { slackChannel: "#ml-releases" }',
  'models:',
  '  fraud-detector: { approval: { quorum: 2 } }',
  '  churn:',
  '    evaluation:',
  '      thresholds: ["auc > 0.7"]',
  '    deployment:',
  '      mode: gitops',
  '      gitops:',
  '        provider: github',
  '        repo: acme/serving',
  '        manifestPath: models/churn/isvc.yaml',
  '        namespace: ml-prod',
  '        inferenceService: churn',
  '      kserve:',
  '        argocdApplication: { namespace: argocd, name: ml-prod }',
  '        smokeUrl: http://churn.ml-prod.svc/v2/models/churn/ready',
);

describe('policy file', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelgate-policy-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('when a model overrides one key, then the rest comes from defaults and durations are milliseconds', () => {
    const set = parsePolicy(FULL, 'p.yaml');
    assert.deepEqual(set.models(), ['fraud-detector', 'churn']);
    assert.deepEqual(set.policyFor('fraud-detector'), {
      model: 'fraud-detector',
      evaluation: {
        thresholds: [
          { metric: 'accuracy', op: '>=', value: 0.9 },
          { metric: 'latency_p99_ms', op: '<=', value: 50 },
        ],
        requiredTags: ['data.lookback_days'],
        noRegression: [{ metric: 'accuracy', direction: 'higher_is_better', tolerance: 0.01 }],
      },
      approval: { approvers: ['alice', 'bob'], fourEyes: true, unknownRegistrant: 'deny', requireVerifiedIdentity: true, quorum: 2, expiresAfterMs: 72 * 3_600_000, onRecheckFailure: 'drop' },
      deployment: { mode: 'registry', lockWaitMs: 24 * 3_600_000 },
      notify: { slackChannel: '#ml-releases' },
    });
  });

  test('when a model sets a list, then it replaces the default list and gitops/kserve defaults fill in', () => {
    const p = parsePolicy(FULL, 'p.yaml').policyFor('churn');
    assert.deepEqual(p.evaluation.thresholds, [{ metric: 'auc', op: '>', value: 0.7 }]);
    assert.deepEqual(p.evaluation.requiredTags, ['data.lookback_days']);
    assert.equal(p.approval.quorum, 1);
    assert.deepEqual(p.deployment, {
      mode: 'gitops',
      lockWaitMs: 24 * 3_600_000,
      gitops: {
        provider: 'github',
        repo: 'acme/serving',
        baseBranch: 'main',
        manifestPath: 'models/churn/isvc.yaml',
        namespace: 'ml-prod',
        inferenceService: 'churn',
        mergeMethod: 'merge',
        storageUriPrefixMap: [],
        reapproveOnChange: true,
        onRetire: 'previous',
        manualMergeTimeoutMs: 24 * 3_600_000,
        manualRevertTimeoutMs: 24 * 3_600_000,
      },
      kserve: {
        deploymentMode: 'Serverless',
        rollback: 'auto',
        rolloutDeadlineMs: 15 * 60_000,
        argocdApplication: { namespace: 'argocd', name: 'ml-prod' },
        smokeUrl: 'http://churn.ml-prod.svc/v2/models/churn/ready',
      },
    });
  });

  test('when a gitops section sets onRetire: remove, then it resolves as written (and previous when left out)', () => {
    const text = FULL.replace('        inferenceService: churn\n', '        inferenceService: churn\n        onRetire: remove\n');
    assert.notEqual(text, FULL);
    assert.equal(parsePolicy(text, 'p.yaml').policyFor('churn').deployment.gitops?.onRetire, 'remove');
    assert.equal(parsePolicy(FULL, 'p.yaml').policyFor('churn').deployment.gitops?.onRetire, 'previous');
  });

  test('when a model is not listed and defaults exist, then it gets the defaults under its own name', () => {
    const p = parsePolicy(FULL, 'p.yaml').policyFor('unlisted');
    assert.equal(p.model, 'unlisted');
    assert.equal(p.approval.quorum, 1);
    assert.deepEqual(p.deployment, { mode: 'registry', lockWaitMs: 24 * 3_600_000 });
  });

  test('when policyFor is called, then the result is plain JSON data and a fresh copy each time', () => {
    const set = parsePolicy(FULL, 'p.yaml');
    const p = set.policyFor('churn');
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
    p.approval.approvers.push('mallory');
    assert.deepEqual(set.policyFor('churn').approval.approvers, ['alice', 'bob']);
  });

  test('when no defaults exist and the model is not listed, then NoPolicyError names model and file', () => {
    const set = parsePolicy(yaml('models:', '  a: { approval: { approvers: [x] } }'), 'only-a.yaml');
    assert.equal(set.policyFor('a').approval.approvers[0], 'x');
    assert.throws(
      () => set.policyFor('b'),
      (err: unknown) => err instanceof NoPolicyError && err.message === 'no policy for model b in only-a.yaml',
    );
  });

  test('when defaults leave out a key every listed model supplies, then listed models load and others have no policy', () => {
    const set = parsePolicy(
      yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  deployment:',
        '    mode: gitops',
        '    gitops: { provider: git, repo: /srv/git/serving, manifestPath: isvc.yaml, namespace: ml }',
        'models:',
        '  m1: { deployment: { gitops: { inferenceService: m1 } } }',
      ),
      'p.yaml',
    );
    assert.equal(set.policyFor('m1').deployment.gitops?.inferenceService, 'm1');
    assert.throws(
      () => set.policyFor('m2'),
      (err: unknown) =>
        err instanceof NoPolicyError &&
        err.message.startsWith('no policy for model m2 in p.yaml') &&
        err.message.includes('p.yaml:5:5: defaults.deployment.gitops.inferenceService: required'),
    );
  });

  test('when a model entry is empty, then it is listed and uses the defaults', () => {
    const set = parsePolicy(yaml('defaults:', '  approval: { approvers: ["*"], quorum: 3 }', 'models:', '  m1:'), 'p.yaml');
    assert.deepEqual(set.models(), ['m1']);
    assert.equal(set.policyFor('m1').approval.quorum, 3, 'quorum may exceed the list when "*" is an approver');
  });

  test('when YAML anchors are shared through an x- key and <<, then the merged values apply', () => {
    const set = parsePolicy(
      yaml(
        'x-strict: &strict { approvers: [a, b, c], quorum: 2 }',
        'defaults:',
        '  approval: { approvers: [a] }',
        'models:',
        '  m1:',
        '    approval: { <<: *strict, quorum: 3 }',
      ),
      'p.yaml',
    );
    assert.deepEqual(set.policyFor('m1').approval.approvers, ['a', 'b', 'c']);
    assert.equal(set.policyFor('m1').approval.quorum, 3);
  });

  test('when the file is loaded from disk, then errors carry that path', () => {
    const good = join(dir, 'good.yaml');
    writeFileSync(good, FULL);
    assert.deepEqual(loadPolicyFile(good).models(), ['fraud-detector', 'churn']);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, yaml('defaults:', '  approval: { approvers: [a], quorum: 0 }'));
    assert.throws(() => loadPolicyFile(bad), { name: 'PolicyError', message: `${bad}:2:39: defaults.approval.quorum: must be at least 1` });
    const missing = join(dir, 'missing.yaml');
    assert.throws(() => loadPolicyFile(missing), { name: 'PolicyError', message: `${missing}: cannot read policy file: no such file` });
  });

  test('when the shipped demo policy is loaded, then demo-classifier gets the documented settings', () => {
    const p = loadPolicyFile(join(PROJECT_ROOT, 'policies', 'policy.yaml')).policyFor('demo-classifier');
    assert.deepEqual(p.approval, { approvers: ['alice', 'bob', 'carol'], fourEyes: true, unknownRegistrant: 'deny', requireVerifiedIdentity: true, quorum: 1, expiresAfterMs: 72 * 3_600_000, onRecheckFailure: 'drop' });
    assert.deepEqual(p.evaluation, {
      thresholds: [{ metric: 'accuracy', op: '>=', value: 0.85 }],
      requiredTags: ['data.lookback_days', 'training.source'],
      noRegression: [{ metric: 'accuracy', direction: 'higher_is_better', tolerance: 0.02 }],
    });
    assert.equal(p.deployment.mode, 'registry');
  });

  test('when docs/policy.md shows a YAML example, then it is a valid policy file', () => {
    const md = readFileSync(join(PROJECT_ROOT, 'docs', 'policy.md'), 'utf8');
    const blocks = [...md.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    assert.ok(blocks.length >= 2, 'docs/policy.md has yaml examples');
    const sets = blocks.map((block, i) => parsePolicy(block, `docs/policy.md#yaml-${i + 1}`));
    // The resolved JSON shown after the complete example is what policyFor really returns.
    const shown = /```json\n([\s\S]*?)```/.exec(md);
    assert.ok(shown, 'docs/policy.md shows a resolved policy');
    assert.deepEqual(sets.at(-1)!.policyFor('churn'), JSON.parse(shown[1]));
  });
});

describe('policy errors name file:line:col and the key path', () => {
  const cases: Array<{ when: string; text: string; message: string }> = [
    {
      when: 'a key is misspelt',
      text: yaml('defaults:', '  approval:', '    approvers: [a]', '    qourum: 2'),
      message: 'policy.yaml:4:5: defaults.approval.qourum: unknown key (allowed: approvers, fourEyes, requireVerifiedIdentity, quorum, expiresAfter, onRecheckFailure)',
    },
    {
      when: 'a model entry has an unknown section',
      text: yaml('defaults:', '  approval: { approvers: [a] }', 'models:', '  m1:', '    aproval: { quorum: 1 }'),
      message: 'policy.yaml:5:5: models.m1.aproval: unknown key (allowed: evaluation, approval, deployment, notify, rollback)',
    },
    {
      when: 'a threshold uses an unknown operator',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  evaluation:',
        '    thresholds:',
        '      - accuracy >= 0.9',
        '      - accuracy >> 0.9',
      ),
      message:
        'policy.yaml:6:9: defaults.evaluation.thresholds[1]: "accuracy >> 0.9" is not "<metric> <op> <number>" with op one of >= > <= < ==',
    },
    {
      when: "a model's quorum exceeds the default approvers",
      text: yaml('defaults:', '  approval: { approvers: [alice] }', 'models:', '  fraud-detector:', '    approval: { quorum: 2 }'),
      message:
        'policy.yaml:5:25: models.fraud-detector.approval.quorum: quorum 2 exceeds the 1 distinct approver(s) listed, so no version could ever be approved',
    },
    {
      when: 'a model switches to gitops without a gitops section',
      text: yaml('defaults:', '  approval: { approvers: [a] }', 'models:', '  m1:', '    deployment:', '      mode: gitops'),
      message: 'policy.yaml:5:5: models.m1.deployment.gitops: required when mode is gitops',
    },
    {
      when: 'a listed model has no approvers anywhere',
      text: yaml('models:', '  m1:', '    evaluation: { requiredTags: [a] }'),
      message: 'policy.yaml:2:3: models.m1.approval: required',
    },
    {
      when: 'a duration has no unit',
      text: yaml('defaults:', '  approval: { approvers: [a], expiresAfter: "72" }'),
      message:
        'policy.yaml:2:45: defaults.approval.expiresAfter: invalid duration "72": expected a number and a unit ms, s, m, h or d (e.g. 500ms, 30s, 15m, 72h, 7d)',
    },
    {
      when: 'a duration is a bare number',
      text: yaml('defaults:', '  approval: { approvers: [a], expiresAfter: 72 }'),
      message: 'policy.yaml:2:45: defaults.approval.expiresAfter: expected a duration string such as 30s, 15m, 72h or 7d',
    },
    {
      when: 'an enum value is unknown',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  deployment: { mode: helm }'),
      message: 'policy.yaml:3:23: defaults.deployment.mode: must be one of registry, gitops (got "helm")',
    },
    {
      when: 'a github repo is not owner/name',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  deployment:',
        '    mode: gitops',
        '    gitops:',
        '      provider: github',
        '      repo: https://github.com/acme/serving',
        '      manifestPath: isvc.yaml',
        '      namespace: ml',
        '      inferenceService: m',
      ),
      message: 'policy.yaml:7:13: defaults.deployment.gitops.repo: must be "owner/name" when provider is github',
    },
    {
      when: 'onRetire names something other than previous or remove',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  deployment:',
        '    mode: gitops',
        '    gitops:',
        '      provider: git',
        '      repo: ./gitops.git',
        '      manifestPath: isvc.yaml',
        '      namespace: ml',
        '      inferenceService: m',
        '      onRetire: rollback',
      ),
      message: 'policy.yaml:11:17: defaults.deployment.gitops.onRetire: must be one of previous, remove (got "rollback")',
    },
    {
      when: 'onRetire is put under kserve instead of gitops',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  deployment:', '    kserve: { onRetire: remove }'),
      message:
        'policy.yaml:4:15: defaults.deployment.kserve.onRetire: unknown key (allowed: argocdApplication, deploymentMode, rolloutDeadline, smokeUrl, rollback)',
    },
    {
      when: 'a kserve rollout deadline is not a duration',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  deployment:',
        '    kserve: { rolloutDeadline: soon }',
      ),
      message:
        'policy.yaml:4:32: defaults.deployment.kserve.rolloutDeadline: invalid duration "soon": expected a number and a unit ms, s, m, h or d (e.g. 500ms, 30s, 15m, 72h, 7d)',
    },
    {
      when: 'a lock wait is longer than 7d',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  deployment: { lockWait: 8d }'),
      message: "policy.yaml:3:27: defaults.deployment.lockWait: must be at most 7d (a longer wait is a person's decision: promote again)",
    },
    {
      when: 'a manual merge timeout is zero',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  deployment:',
        '    mode: gitops',
        '    gitops: { provider: git, repo: /srv/r, manifestPath: i.yaml, namespace: ml, inferenceService: m, manualMergeTimeout: 0s }',
      ),
      message: 'policy.yaml:5:122: defaults.deployment.gitops.manualMergeTimeout: duration "0s" must be greater than zero',
    },
    {
      when: 'a required tag is empty',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  evaluation: { requiredTags: [a, ""] }'),
      message: 'policy.yaml:3:35: defaults.evaluation.requiredTags[1]: must not be empty',
    },
    {
      when: 'a tolerance is negative',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        '  evaluation:',
        '    noRegression: [{ metric: loss, direction: lower_is_better, tolerance: -1 }]',
      ),
      message: 'policy.yaml:4:75: defaults.evaluation.noRegression[0].tolerance: must be 0 or more',
    },
    {
      when: 'the YAML itself is broken',
      text: yaml('defaults:', '  approval: { approvers: [a }'),
      message: 'policy.yaml:2:29: yaml: Flow sequence in block collection must be sufficiently indented and end with a ]',
    },
    {
      when: 'a key is repeated',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  approval: { approvers: [b] }'),
      message: 'policy.yaml:3:3: yaml: Map keys must be unique',
    },
    {
      when: 'the top level has an unknown key',
      text: yaml('default:', '  approval: { approvers: [a] }'),
      message: 'policy.yaml:1:1: default: unknown key (allowed: defaults, models)',
    },
    {
      when: 'the file is empty',
      text: '',
      message: 'policy.yaml:1:1: (top level): expected a mapping with `defaults:` and/or `models:`',
    },
    {
      when: 'a model entry is a scalar',
      text: yaml('models:', '  m1: 5'),
      message: 'policy.yaml:2:7: models.m1: expected a mapping of policy keys, or nothing to use the defaults',
    },
    {
      when: 'errors exist in a model and in defaults written below it',
      text: yaml(
        'models:',
        '  m1: { approval: { quorum: 0 } }',
        'defaults:',
        '  approval: { approvers: [a] }',
        '  notify: { slack: "#x" }',
      ),
      message: 'policy.yaml:2:29: models.m1.approval.quorum: must be at least 1',
    },
  ];
  for (const c of cases) {
    test(`when ${c.when}, then the error is "${c.message.slice(0, 60)}…"`, () => {
      const err = errorOf(c.text);
      assert.equal(err.message, c.message);
      const [, line, col] = /^policy\.yaml:(\d+):(\d+):/.exec(c.message)!;
      assert.equal(err.line, Number(line));
      assert.equal(err.col, Number(col));
    });
  }
});

describe('durations and thresholds', () => {
  test('when a duration has each unit, then it converts to milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('30s'), 30_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('72h'), 259_200_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
  });

  test('when a duration is malformed, then the error quotes it and lists the units', () => {
    for (const bad of ['', '72', '1h30m', '-5m', '5 weeks', '5w', 'h']) {
      assert.throws(() => parseDuration(bad), { message: new RegExp(`^invalid duration ${JSON.stringify(bad)}: expected a number and a unit ms, s, m, h or d`) });
    }
  });

  test('when a threshold is written with or without spaces, then it parses to metric, op and value', () => {
    assert.deepEqual(parseThreshold('accuracy>=0.9'), { metric: 'accuracy', op: '>=', value: 0.9 });
    assert.deepEqual(parseThreshold(' val/loss < 1e-3 '), { metric: 'val/loss', op: '<', value: 0.001 });
    assert.deepEqual(parseThreshold('f1.macro == -1'), { metric: 'f1.macro', op: '==', value: -1 });
    for (const bad of ['accuracy >> 0.9', 'accuracy => 0.9', 'accuracy >= high', '>= 0.9', 'accuracy 0.9', 'my metric >= 1']) {
      assert.throws(() => parseThreshold(bad), { message: `${JSON.stringify(bad)} is not "<metric> <op> <number>" with op one of >= > <= < ==` });
    }
  });
});
