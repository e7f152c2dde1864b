/**
 * The pure parts of the dry run: who may approve and why not (the web page's button rules use the same
 * function), the manifest diff, and the rollout line. No servers.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { approvalEligibility, type EligibilityState } from '../src/dryrun/eligibility.js';
import { unifiedDiff } from '../src/dryrun/diff.js';
import { describeRollout } from '../src/dryrun/rollout.js';
import { createDryRun, type DryRunRegistry } from '../src/dryrun/compute.js';
import { DryRunError } from '../src/dryrun/errors.js';
import { parsePolicy } from '../src/policy/load.js';
import type { ApprovalPolicy } from '../src/policy/types.js';

const policy: ApprovalPolicy = { approvers: ['alice', 'bob', 'group:ml-leads'], fourEyes: true, unknownRegistrant: 'deny', quorum: 2, expiresAfterMs: 3600_000 };
const facts = { model: 'm', version: 3, source: 's3://x', status: 'READY', createdAt: '2026-12-01T00:00:00.000Z' };
const state = (over: Partial<EligibilityState> = {}): EligibilityState => ({ model: 'm', version: 3, approvals: [], facts: { ...facts, registrant: 'bob' }, ...over });

describe('approvalEligibility', () => {
  test('when an approver who did not register the version asks, then they may approve', () => {
    assert.deepEqual(approvalEligibility(policy, state(), { identity: 'alice', groups: [] }), { may: true });
  });

  test('when the registrant asks under four-eyes, then "you registered this version (four-eyes)"', () => {
    assert.deepEqual(approvalEligibility(policy, state(), { identity: 'bob', groups: [] }), { may: false, code: 'self_approval', reason: 'you registered this version (four-eyes)' });
  });

  test('when four-eyes is off, then the registrant may approve', () => {
    assert.equal(approvalEligibility({ ...policy, fourEyes: false }, state(), { identity: 'bob', groups: [] }).may, true);
  });

  test('when someone outside the list and its groups asks, then "not in the approver list"; a group member may', () => {
    const mallory = approvalEligibility(policy, state(), { identity: 'mallory', groups: ['data-science'] });
    assert.equal(mallory.code, 'not_an_approver');
    assert.match(mallory.reason!, /^not in the approver list \(alice, bob, group:ml-leads\)$/);
    assert.equal(approvalEligibility(policy, state(), { identity: 'erin', groups: ['ml-leads'] }).may, true);
  });

  test('when nobody knows the registrant, then nobody may approve under deny, and approvers may under allow', () => {
    const unknown = state({ facts });
    assert.equal(approvalEligibility(policy, unknown, { identity: 'alice', groups: [] }).code, 'unknown_registrant');
    assert.equal(approvalEligibility({ ...policy, unknownRegistrant: 'allow' }, unknown, { identity: 'alice', groups: [] }).may, true);
  });

  test('when the caller approved in this round, then "quorum 2: alice already approved; you already approved"; an approval of a dropped round does not count', () => {
    const approved = state({ approvals: [{ by: 'alice', at: '2026-12-01T00:00:00.000Z', via: 'api', round: 1 }] });
    assert.deepEqual(approvalEligibility(policy, approved, { identity: 'alice', groups: [] }), { may: false, code: 'already_approved', reason: 'quorum 2: alice already approved; you already approved' });
    assert.equal(approvalEligibility(policy, { ...approved, approvalRound: 2 }, { identity: 'alice', groups: [] }).may, true);
  });

  test('when the requester of a running lifecycle asks, then they count as a registrant too', () => {
    const requested = state({ facts, requestedBy: { identity: 'alice', channel: 'api' } });
    assert.equal(approvalEligibility(policy, requested, { identity: 'alice', groups: [] }).code, 'self_approval');
    assert.equal(approvalEligibility(policy, requested, { identity: 'bob', groups: [] }).may, true);
  });

  test('when the lifecycle is given in another phase, then nobody may approve now', () => {
    const r = approvalEligibility(policy, state({ phase: 'deploying' }), { identity: 'alice', groups: [] });
    assert.deepEqual(r, { may: false, code: 'not_awaiting_approval', reason: 'the version is not awaiting approval (deploying)' });
  });
});

describe('unifiedDiff', () => {
  test('when nothing changed, then the diff is empty', () => {
    assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', 'f.yaml'), '');
  });

  test('when one line changes in the middle of a long file, then one hunk with 3 lines of context each side', () => {
    const before = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
    const after = before.replace('line 10\n', 'line ten\n');
    assert.equal(
      unifiedDiff(before, after, 'm.yaml'),
      ['--- a/m.yaml', '+++ b/m.yaml', '@@ -7,7 +7,7 @@', ' line 7', ' line 8', ' line 9', '-line 10', '+line ten', ' line 11', ' line 12', ' line 13', ''].join('\n'),
    );
  });

  test('when changes are far apart, then two hunks; lines added at the end are shown', () => {
    const before = Array.from({ length: 20 }, (_, i) => `l${i + 1}`).join('\n') + '\n';
    const after = before.replace('l2\n', 'L2\n') + 'l21\n';
    const d = unifiedDiff(before, after, 'x');
    assert.equal(d.match(/^@@/gm)?.length, 2, d);
    assert.match(d, /@@ -18,3 \+18,4 @@\n l18\n l19\n l20\n\+l21\n$/);
  });
});

describe('describeRollout', () => {
  test('when the model deploys through the registry, then there is nothing to wait for; GitOps names ArgoCD, the InferenceService and the deadline', () => {
    const set = parsePolicy(
      `models:
  reg: { approval: { approvers: [a], quorum: 1, expiresAfter: 1h }, deployment: { mode: registry } }
  git:
    approval: { approvers: [a], quorum: 1, expiresAfter: 1h }
    deployment:
      mode: gitops
      gitops: { provider: git, repo: /tmp/r.git, baseBranch: main, manifestPath: m.yaml, namespace: ml, inferenceService: churn }
      kserve: { deploymentMode: RawDeployment, rolloutDeadline: 90s, rollback: approval, smokeUrl: "http://churn.ml/v2/models/churn/ready" }
`,
      'rollout.yaml',
    );
    assert.match(describeRollout(set.policyFor('reg')).waitsFor, /^nothing: the production alias moves/);
    const g = describeRollout(set.policyFor('git'));
    assert.equal(g.waitsFor, 'the pull request is merged once approved, then InferenceService ml/churn Ready on the new storageUri (RawDeployment), then the model server answers its readiness probe — within 90s');
    assert.equal(g.onFailure, 'approval');
    assert.equal(g.smokeCheck, true);
  });
});

describe('dry run refusals before anything is read', () => {
  /** Any read fails the test: these refusals must come from the input and the policy alone. */
  const untouchable = new Proxy({} as DryRunRegistry, {
    get: (_t, prop) => () => Promise.reject(new Error(`MLflow was asked ${String(prop)}`)),
  });
  const listedOnly = parsePolicy('models:\n  m: { approval: { approvers: [a], quorum: 1, expiresAfter: 1h }, deployment: { mode: registry } }\n', 'listed.yaml');
  const refusal = async (p: Promise<unknown>, code: string, message: RegExp) => {
    await assert.rejects(p, (err: unknown) => err instanceof DryRunError && err.code === code && message.test(err.message));
  };

  test('when the model is in neither models: nor complete defaults, then no_policy; without a deployed file, not_configured', async () => {
    await refusal(createDryRun({ mlflow: untouchable, policies: () => listedOnly })({ model: 'other', version: 1 }), 'no_policy', /^no policy for model other in listed\.yaml/);
    await refusal(createDryRun({ mlflow: untouchable, policies: () => undefined })({ model: 'm', version: 1 }), 'not_configured', /policy file/);
  });

  test('when the supplied policy is empty, too large or invalid, or the key is malformed, then invalid_policy / invalid_input', async () => {
    const run = createDryRun({ mlflow: untouchable, policies: () => listedOnly });
    await refusal(run({ model: 'm', version: 1, policyYaml: '' }), 'invalid_policy', /empty/);
    await refusal(run({ model: 'm', version: 1, policyYaml: `#${'x'.repeat(70_000)}` }), 'invalid_policy', /larger than 65536 bytes/);
    await refusal(run({ model: 'm', version: 1, policyYaml: 'models: [\n' }), 'invalid_policy', /^supplied policy:\d+:\d+: /);
    await refusal(run({ model: 'm', version: 0 }), 'invalid_input', /version/);
    await refusal(run({ model: ' ', version: 1 }), 'invalid_input', /model/);
  });
});
