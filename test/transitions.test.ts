/** The lifecycle's pure rules: stage moves, who may approve/reject/retire, quorum. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { approvalDecision, canMove, validateApproval, validateRejection, validateRetire } from '../src/workflows/transitions.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import type { ModelPolicy } from '../src/policy/types.js';

const policy: ModelPolicy = {
  model: 'm',
  evaluation: { thresholds: [], requiredTags: [], noRegression: [] },
  approval: { approvers: ['alice', 'bob', 'carol'], fourEyes: true, quorum: 2, expiresAfterMs: 1000 },
  deployment: { mode: 'registry' },
  notify: {},
};

function state(over: Partial<LifecycleState> = {}): LifecycleState {
  return {
    model: 'm', version: 3, workflowId: 'w', stage: 'Staging', phase: 'awaiting_approval', approvals: [], timeline: [], policy,
    facts: { model: 'm', version: 3, registeredBy: 'carol', source: 's', status: 'READY', createdAt: '' },
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
    assert.deepEqual(validateApproval(state(), { by: 'alice' }), { ok: true });
  });
  it('when an unlisted person approves, then UnauthorizedApprover names them and the allowed list', () => {
    const v = validateApproval(state(), { by: 'mallory' });
    assert.equal(v.ok, false);
    assert.equal(!v.ok && v.type, 'UnauthorizedApprover');
    assert.match(!v.ok ? v.message : '', /mallory may not approve m \(allowed: alice, bob, carol\)/);
  });
  it('when the registrant approves under four-eyes, then SelfApproval; without four-eyes it is allowed', () => {
    assert.equal((validateApproval(state(), { by: 'carol' }) as { type: string }).type, 'SelfApproval');
    const relaxed = { ...policy, approval: { ...policy.approval, fourEyes: false } };
    assert.deepEqual(validateApproval(state({ policy: relaxed }), { by: 'carol' }), { ok: true });
  });
  it('when the same person approves twice, then DuplicateApproval', () => {
    const s = state({ approvals: [{ by: 'alice', at: '', via: 'cli' }] });
    assert.equal((validateApproval(s, { by: 'alice' }) as { type: string }).type, 'DuplicateApproval');
  });
  it('when the version is not awaiting approval, then NotAwaitingApproval says why', () => {
    const s = state({ phase: 'production', approvals: [{ by: 'bob', at: '', via: 'cli' }] });
    const v = validateApproval(s, { by: 'alice' });
    assert.equal((v as { type: string }).type, 'NotAwaitingApproval');
    assert.match((v as { message: string }).message, /already approved by bob/);
    const done = validateApproval(state({ phase: 'done', outcome: 'expired' }), { by: 'alice' });
    assert.match((done as { message: string }).message, /ended \(expired\)/);
  });
  it('when the identity is empty or the comment too long, then InvalidInput', () => {
    assert.equal((validateApproval(state(), { by: ' ' }) as { type: string }).type, 'InvalidInput');
    assert.equal((validateApproval(state(), { by: 'alice', comment: 'x'.repeat(2001) }) as { type: string }).type, 'InvalidInput');
  });
  it('when "*" is an approver, then anyone but the registrant may approve', () => {
    const open = { ...policy, approval: { ...policy.approval, approvers: ['*'] } };
    assert.deepEqual(validateApproval(state({ policy: open }), { by: 'zed' }), { ok: true });
  });
});

describe('rejection and retirement rules', () => {
  it('when a rejection has no reason, then InvalidInput; an unlisted person cannot reject', () => {
    assert.equal((validateRejection(state(), { by: 'alice', reason: '' }) as { type: string }).type, 'InvalidInput');
    assert.equal((validateRejection(state(), { by: 'eve', reason: 'no' }) as { type: string }).type, 'UnauthorizedApprover');
    assert.deepEqual(validateRejection(state(), { by: 'bob', reason: 'data leak' }), { ok: true });
  });
  it('when retiring a version not in Production, then it is refused', () => {
    assert.equal(validateRetire(state(), { by: 'alice' }).ok, false);
    assert.deepEqual(validateRetire(state({ phase: 'production' }), { by: 'alice' }), { ok: true });
  });
});

describe('quorum', () => {
  it('when fewer distinct approvals than the quorum exist, then pending; at quorum approved; any rejection wins', () => {
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }] })), 'pending');
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }, { by: 'bob', at: '', via: '' }] })), 'approved');
    assert.equal(approvalDecision(state({ approvals: [{ by: 'alice', at: '', via: '' }, { by: 'bob', at: '', via: '' }], rejection: { by: 'carol', reason: 'x', at: '' } })), 'rejected');
  });
});
