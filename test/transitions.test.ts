/** The lifecycle's pure rules: stage moves, who may approve/reject/retire, quorum. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  approvalDecision,
  authenticate,
  canMove,
  judgeMerge,
  registrantsOf,
  validateApproval,
  validateRejection,
  validateRetire,
  effectivePolicy,
  olderThanServing,
  recheckBackoffMs,
  skipsEvaluation,
  toSupersede,
  validateRequest,
  type Actor,
} from '../src/workflows/transitions.js';
import { otherSigner, TEST_KEYS, TEST_KID, TEST_SIGNER } from './support/identity.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import type { ModelPolicy } from '../src/policy/types.js';

const policy: ModelPolicy = {
  model: 'm',
  evaluation: { thresholds: [], requiredTags: [], noRegression: [] },
  approval: { approvers: ['alice', 'bob', 'carol'], fourEyes: true, quorum: 2, expiresAfterMs: 1000 },
  deployment: { mode: 'registry' },
  notify: {},
};

function actor(identity: string, extra: Partial<Actor> = {}): Actor {
  return { identity, groups: [], channel: 'test', verified: true, ...extra };
}

function state(over: Partial<LifecycleState> = {}): LifecycleState {
  return {
    model: 'm', version: 3, workflowId: 'w', stage: 'Staging', phase: 'awaiting_approval', approvals: [], timeline: [], policy,
    facts: { model: 'm', version: 3, registeredBy: 'carol', registrant: 'carol', source: 's', status: 'READY', createdAt: '' },
    ...over,
  };
}

describe('stage moves', () => {
  it('when moving forward one stage, then it is legal; skipping or going back is not', () => {
    assert.ok(canMove('None', 'Staging'));
    assert.ok(canMove('Staging', 'Production'));
    assert.ok(canMove('Production', 'Archived'));
    assert.ok(!canMove('None', 'Production'));
    assert.ok(!canMove('Archived', 'Production'));
    assert.ok(!canMove('Production', 'Staging'));
  });
});

describe('approval rules', () => {
  it('when a listed approver who did not register the version approves, then it is allowed', () => {
    assert.deepEqual(validateApproval(state(), actor('alice')), { ok: true });
  });
  it('when an unlisted person approves, then UnauthorizedApprover names them and the allowed list', () => {
    const v = validateApproval(state(), actor('mallory'));
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.type, 'UnauthorizedApprover');
    assert.match(!v.ok ? v.message : '', /mallory may not approve m \(allowed: alice, bob, carol\)/);
  });
  it('when the registrant approves under four-eyes, then SelfApproval; without four-eyes it is allowed', () => {
    assert.equal((validateApproval(state(), actor('carol')) as { type: string }).type, 'SelfApproval');
    const relaxed = { ...policy, approval: { ...policy.approval, fourEyes: false } };
    assert.deepEqual(validateApproval(state({ policy: relaxed }), actor('carol')), { ok: true });
  });
  it('when the same person approves twice, then DuplicateApproval', () => {
    const s = state({ approvals: [{ by: 'alice', at: '', via: 'cli' }] });
    assert.equal((validateApproval(s, actor('alice')) as { type: string }).type, 'DuplicateApproval');
  });
  it('when the version is not awaiting approval, then NotAwaitingApproval says why', () => {
    const s = state({ phase: 'production', approvals: [{ by: 'bob', at: '', via: 'cli' }] });
    const v = validateApproval(s, actor('alice'));
    assert.equal((v as { type: string }).type, 'NotAwaitingApproval');
    assert.match((v as { message: string }).message, /already approved by bob/);
    const done = validateApproval(state({ phase: 'done', outcome: 'expired' }), actor('alice'));
    assert.match((done as { message: string }).message, /ended \(expired\)/);
  });
  it('when the comment is too long, then InvalidInput', () => {
    assert.equal((validateApproval(state(), actor('alice', { comment: 'x'.repeat(2001) })) as { type: string }).type, 'InvalidInput');
  });
  it('when "*" is an approver, then anyone but the registrant may approve', () => {
    const open = { ...policy, approval: { ...policy.approval, approvers: ['*'] } };
    assert.deepEqual(validateApproval(state({ policy: open }), actor('zed')), { ok: true });
  });
});

describe('rejection and retirement rules', () => {
  it('when a rejection has no reason, then InvalidInput; an unlisted person cannot reject', () => {
    assert.equal((validateRejection(state(), actor('alice', { reason: '' })) as { type: string }).type, 'InvalidInput');
    assert.equal((validateRejection(state(), actor('eve', { reason: 'no' })) as { type: string }).type, 'UnauthorizedApprover');
    assert.deepEqual(validateRejection(state(), actor('bob', { reason: 'data leak' })), { ok: true });
  });
  it('when retiring a version not in Production, then it is refused', () => {
    assert.equal(validateRetire(state(), actor('alice')).ok, false);
    assert.deepEqual(validateRetire(state({ phase: 'production' }), actor('alice')), { ok: true });
  });
});

describe('quorum', () => {
  it('when fewer distinct approvals than the quorum exist, then pending; at quorum approved; any rejection wins', () => {
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }] })), 'pending');
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }, { by: 'bob', at: '', via: '' }] })), 'approved');
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }, { by: 'bob', at: '', via: '' }], rejection: { by: 'carol', reason: 'x', at: '' } })), 'rejected');
  });
});

describe('groups and registrants', () => {
  it('when the policy names group:ml-leads, then a member may approve and a non-member may not', () => {
    const grouped = { ...policy, approval: { ...policy.approval, approvers: ['group:ml-leads'] } };
    assert.deepEqual(validateApproval(state({ policy: grouped }), actor('zoe', { groups: ['ml-leads'] })), { ok: true });
    assert.equal((validateApproval(state({ policy: grouped }), actor('zoe', { groups: ['sales'] })) as { type: string }).type, 'UnauthorizedApprover');
  });
  it('when nobody knows the registrant under four-eyes, then approval is refused unless the policy says allow', () => {
    const unknown = state({ facts: { model: 'm', version: 3, source: 's', status: 'READY', createdAt: '' } });
    assert.equal((validateApproval(unknown, actor('alice')) as { type: string }).type, 'UnknownRegistrant');
    const allow = { ...policy, approval: { ...policy.approval, unknownRegistrant: 'allow' as const } };
    assert.deepEqual(validateApproval({ ...unknown, policy: allow }, actor('alice')), { ok: true });
  });
  it('when a pipeline requested the promotion on behalf of a person, then both are registrants', () => {
    const s = state({ facts: { model: 'm', version: 3, source: 's', status: 'READY', createdAt: '' }, requestedBy: { identity: 'kubeflow-pipeline', onBehalfOf: 'bob', channel: 'kubeflow' } });
    assert.deepEqual(registrantsOf(s).sort(), ['bob', 'kubeflow-pipeline']);
    assert.equal((validateApproval(s, actor('bob')) as { type: string }).type, 'SelfApproval');
  });
  it('when an approval belongs to an earlier round, then it neither counts toward quorum nor blocks approving again', () => {
    const s = state({ approvalRound: 2, approvals: [{ by: 'alice', at: '', via: 'api', round: 1 }, { by: 'bob', at: '', via: 'api', round: 1 }] });
    assert.equal(approvalDecision(s), 'pending');
    assert.deepEqual(validateApproval(s, actor('alice')), { ok: true });
  });
});

describe('attested decisions', () => {
  const trusted = (over: Partial<LifecycleState> = {}) => state({ trust: { keys: TEST_KEYS, loadedAt: '' }, ...over });
  const claims = (over: Record<string, unknown> = {}) => ({ kind: 'approve' as const, model: 'm', version: 3, identity: 'alice', groups: ['ml-leads'], channel: 'api', round: 1, ...over });
  const now = Date.now();

  it('when a front door signed the decision, then the actor comes from its claims, verified', () => {
    const a = authenticate(trusted(), 'approve', { attestation: TEST_SIGNER.sign(claims({ comment: 'ok' })) }, now);
    assert.ok(a.ok);
    assert.deepEqual(a.ok && a.actor, { identity: 'alice', groups: ['ml-leads'], channel: 'api', verified: true, comment: 'ok' });
  });
  it('when a bare update names someone under requireVerifiedIdentity, then UnverifiedDecision', () => {
    const a = authenticate(trusted(), 'approve', { by: 'alice', via: 'slack' }, now);
    assert.equal(!a.ok && a.type, 'UnverifiedDecision');
  });
  it('when requireVerifiedIdentity is off, then a bare update is accepted as unverified', () => {
    const lax = { ...policy, approval: { ...policy.approval, requireVerifiedIdentity: false } };
    const a = authenticate(trusted({ policy: lax }), 'approve', { by: 'alice', via: 'slack' }, now);
    assert.equal(a.ok && a.actor.verified, false);
  });
  it('when the claims were edited after signing, or signed by a key the worker does not hold, then refused', () => {
    const att = TEST_SIGNER.sign(claims());
    const edited = { ...att, payload: att.payload.replace('"alice"', '"bob"') };
    assert.equal((authenticate(trusted(), 'approve', { attestation: edited }, now) as { type: string }).type, 'UnverifiedDecision');
    const rogueSameKid = otherSigner(TEST_KID).sign(claims());
    assert.equal((authenticate(trusted(), 'approve', { attestation: rogueSameKid }, now) as { type: string }).type, 'UnverifiedDecision');
    const rogue = otherSigner().sign(claims());
    assert.equal((authenticate(trusted(), 'approve', { attestation: rogue }, now) as { type: string }).type, 'UntrustedKey');
    assert.equal((authenticate(state(), 'approve', { attestation: att }, now) as { type: string }).type, 'UntrustedKey');
  });
  it('when the attestation is for another kind, version, round or PR head, or expired, then refused', () => {
    const refuse = (s: LifecycleState, kind: 'approve' | 'reject', over: Record<string, unknown>, at = now) =>
      (authenticate(s, kind, { attestation: TEST_SIGNER.sign(claims(over)) }, at) as { type?: string; message?: string });
    assert.match(refuse(trusted(), 'reject', {}).message ?? '', /for a approve decision, not reject/);
    assert.match(refuse(trusted(), 'approve', { version: 4 }).message ?? '', /for m version 4/);
    assert.equal(refuse(trusted({ approvalRound: 2 }), 'approve', { round: 1 }).type, 'StaleDecision');
    const withPr = trusted({ pullRequest: { provider: 'git', id: 'x', url: 'u', branch: 'b', headSha: 'aaaa' } });
    assert.equal(refuse(withPr, 'approve', { headSha: 'bbbb' }).type, 'StaleDecision');
    assert.equal(refuse(withPr, 'approve', { headSha: 'aaaa' }).type, undefined);
    assert.match(refuse(trusted(), 'approve', {}, now + 6 * 60_000).message ?? '', /expired/);
  });
});

describe('merges as approvals', () => {
  const pr = { provider: 'github' as const, id: '7', url: 'u', branch: 'modelgate/m/v3', headSha: 'aaaaaaaaaaaa' };
  const one = { ...policy, approval: { ...policy.approval, quorum: 1 } };
  const merged = (over: Record<string, unknown> = {}) => ({ mergedBy: 'bob-gh', mergedByIdentity: { identity: 'bob', groups: [] }, headSha: 'aaaaaaaaaaaa', ...over });

  it('when an allowed approver merges the head under review as the last approval, then the merge counts', () => {
    assert.equal(judgeMerge(state({ policy: one, pullRequest: pr }), merged()), undefined);
  });
  it('when the merger is not linked to an identity (or plain git), then it does not count', () => {
    assert.match(judgeMerge(state({ policy: one, pullRequest: pr }), merged({ mergedByIdentity: undefined })) ?? '', /bob-gh is not linked/);
  });
  it('when someone pushed after approval and the new head was merged, then it does not count', () => {
    assert.match(judgeMerge(state({ policy: one, pullRequest: pr }), merged({ headSha: 'bbbbbbbbbbbb' })) ?? '', /merged head bbbbbbbbbb is not the head aaaaaaaaaa/);
  });
  it('when the merger may not approve, or registered the version, then it does not count', () => {
    assert.match(judgeMerge(state({ policy: one, pullRequest: pr }), merged({ mergedByIdentity: { identity: 'mallory', groups: [] } })) ?? '', /mallory may not approve/);
    assert.match(judgeMerge(state({ policy: one, pullRequest: pr }), merged({ mergedByIdentity: { identity: 'carol', groups: [] } })) ?? '', /four-eyes/);
  });
  it('when the merge would not complete the quorum (approvals of a dropped round do not count), then it does not count', () => {
    const stale = state({ pullRequest: pr, approvalRound: 2, approvals: [{ by: 'alice', at: '', via: 'api', round: 1 }] });
    assert.match(judgeMerge(stale, merged()) ?? '', /quorum 2 was not reached/);
    const fresh = state({ pullRequest: pr, approvalRound: 2, approvals: [{ by: 'alice', at: '', via: 'api', round: 2 }] });
    assert.equal(judgeMerge(fresh, merged()), undefined);
  });
});

describe('judged against what serves now, and the way back', () => {
  const rollback = { kind: 'rollback' as const, reason: 'INC-1' };
  it('when a rollback run has a rollback section, then its quorum and four-eyes apply; other runs keep the approval section', () => {
    const p = { ...policy, rollback: { quorum: 1, fourEyes: false, skipEvaluation: true } };
    assert.deepEqual([effectivePolicy(p, rollback).approval.quorum, effectivePolicy(p, rollback).approval.fourEyes], [1, false]);
    assert.equal(effectivePolicy(p, { kind: 'again', reason: 'x' }), p);
    assert.equal(effectivePolicy(p, undefined), p);
    assert.equal(effectivePolicy(policy, rollback), policy);
  });

  it('when a rollback has no rollback section or skipEvaluation is unset, then evaluation is skipped; false keeps it', () => {
    assert.equal(skipsEvaluation(policy, rollback), true);
    assert.equal(skipsEvaluation({ ...policy, rollback: { quorum: 1, fourEyes: true, skipEvaluation: false } }, rollback), false);
    assert.equal(skipsEvaluation(policy, { kind: 'again', reason: 'x' }), false);
  });

  it('when a request lacks a reason, an attestation, the same reason, or a rollback target that served, then it is refused', () => {
    const served = state({ facts: { ...state().facts!, promotedBefore: '2026-01-01T00:00:00Z' } });
    assert.equal(validateRequest(served, rollback, { identity: 'alice', reason: 'INC-1' }).ok, true);
    const types = [
      validateRequest(served, { ...rollback, reason: ' ' }, { identity: 'alice', reason: ' ' }),
      validateRequest(served, rollback, undefined),
      validateRequest(served, rollback, { identity: 'alice', reason: 'other' }),
      validateRequest(state(), rollback, { identity: 'alice', reason: 'INC-1' }),
    ].map((v) => (v.ok ? 'ok' : v.type));
    assert.deepEqual(types, ['InvalidInput', 'UnverifiedDecision', 'UnverifiedDecision', 'NotARollbackTarget']);
    assert.equal(validateRequest(state(), { kind: 'again', reason: 'r' }, { identity: 'alice', reason: 'r' }).ok, true);
  });

  it('when a newer version serves, then a plain promotion is refused as older and a rollback is not', () => {
    assert.equal(olderThanServing(state(), 4).ok, false);
    assert.equal(olderThanServing(state(), 2).ok, true);
    assert.equal(olderThanServing(state(), undefined).ok, true);
    assert.equal(olderThanServing(state({ request: { kind: 'rollback', reason: 'r' } }), 4).ok, true);
  });

  it('when re-checks keep failing, then the back-off doubles from 1 min and stops at 30 min', () => {
    assert.deepEqual([1, 2, 3, 6, 20].map(recheckBackoffMs), [60_000, 120_000, 240_000, 1_800_000, 1_800_000]);
  });

  it('when MLflow shows other versions in Production by alias or stage, then each is superseded once, never this one', () => {
    assert.deepEqual(toSupersede(3, { serving: 2, aliasHolder: 2, stageHolders: [1, 2, 3] }), [1, 2]);
    assert.deepEqual(toSupersede(3, { stageHolders: [] }), []);
  });
});
