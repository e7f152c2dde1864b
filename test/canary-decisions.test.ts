/**
 * The pure rules of a paused canary's decision (continue / abort, attested like an approval) and of the lock
 * lease a canary needs: who may decide, when, with what, and that a signature made for one pause (or for an
 * approval) never counts for another.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, canaryLeaseMs, validateCanaryDecision, type Actor } from '../src/workflows/transitions.js';
import type { CanaryState, LifecycleState } from '../src/workflows/definitions.js';
import type { ModelPolicy } from '../src/policy/types.js';
import type { CanaryPolicy } from '../src/canary/types.js';
import { TEST_KEYS, TEST_SIGNER } from './support/identity.js';

const policy: ModelPolicy = {
  model: 'm',
  evaluation: { thresholds: [], requiredTags: [], noRegression: [] },
  approval: { approvers: ['alice', 'bob', 'carol'], fourEyes: true, quorum: 1, expiresAfterMs: 60_000 },
  deployment: { mode: 'gitops' },
  notify: {},
};

const actor = (identity: string, extra: Partial<Actor> = {}): Actor => ({ identity, groups: [], channel: 'api', verified: true, ...extra });

function paused(over: Partial<CanaryState> = {}): LifecycleState {
  return {
    model: 'm', version: 3, workflowId: 'w', stage: 'Staging', phase: 'deploying', approvals: [], timeline: [], policy,
    trust: { keys: TEST_KEYS, loadedAt: '' },
    facts: { model: 'm', version: 3, registeredBy: 'carol', registrant: 'carol', source: 's', status: 'READY', createdAt: '' },
    canary: { step: 1, status: 'paused', steps: [], pauses: 2, pause: { id: 2, step: 1, reason: 'inconclusive', since: '', deadline: '' }, ...over },
  };
}

const typeOf = (v: unknown) => (v as { type?: string }).type;

describe('canary decisions', () => {
  it('when an approver continues or aborts (with a reason) a paused canary, then it is accepted', () => {
    assert.deepEqual(validateCanaryDecision(paused(), 'canary-continue', actor('alice')), { ok: true });
    assert.deepEqual(validateCanaryDecision(paused(), 'canary-abort', actor('bob', { reason: 'error rate unclear' })), { ok: true });
  });

  it('when nobody waits for a decision (running, rolled back, already decided, no canary), then CanaryNotPaused', () => {
    for (const s of [paused({ status: 'running' }), paused({ status: 'rolled_back' }), paused({ pause: { id: 2, step: 1, reason: '', since: '', deadline: '', decision: { kind: 'abort', by: 'bob', at: '', verified: true } } })]) {
      assert.equal(typeOf(validateCanaryDecision(s, 'canary-continue', actor('alice'))), 'CanaryNotPaused');
    }
    assert.equal(typeOf(validateCanaryDecision({ ...paused(), canary: undefined }, 'canary-continue', actor('alice'))), 'CanaryNotPaused');
  });

  it('when someone outside the approvers decides, then UnauthorizedApprover; the registrant may abort but not continue (four-eyes)', () => {
    assert.equal(typeOf(validateCanaryDecision(paused(), 'canary-abort', actor('mallory', { reason: 'x' }))), 'UnauthorizedApprover');
    assert.equal(typeOf(validateCanaryDecision(paused(), 'canary-continue', actor('carol'))), 'SelfApproval');
    assert.deepEqual(validateCanaryDecision(paused(), 'canary-abort', actor('carol', { reason: 'my model looks wrong' })), { ok: true });
  });

  it('when an abort has no reason, or a text is too long, then InvalidInput', () => {
    assert.equal(typeOf(validateCanaryDecision(paused(), 'canary-abort', actor('bob'))), 'InvalidInput');
    assert.equal(typeOf(validateCanaryDecision(paused(), 'canary-abort', actor('bob', { reason: '  ' }))), 'InvalidInput');
    assert.equal(typeOf(validateCanaryDecision(paused(), 'canary-continue', actor('bob', { comment: 'x'.repeat(2001) }))), 'InvalidInput');
  });

  it('when the attestation names another pause, or is an approval, then it does not count for this pause', () => {
    const now = Date.now();
    const claims = (over: Record<string, unknown>) => ({ kind: 'canary-continue' as const, model: 'm', version: 3, identity: 'alice', groups: [], channel: 'api', round: 2, ...over });
    assert.ok(authenticate(paused(), 'canary-continue', { attestation: TEST_SIGNER.sign(claims({})) }, now).ok);
    const stale = authenticate(paused(), 'canary-continue', { attestation: TEST_SIGNER.sign(claims({ round: 1 })) }, now);
    assert.equal(!stale.ok && stale.type, 'StaleDecision');
    const approval = authenticate(paused(), 'canary-continue', { attestation: TEST_SIGNER.sign(claims({ kind: 'approve' })) }, now);
    assert.equal(!approval.ok && approval.type, 'UnverifiedDecision');
    const abortAsContinue = authenticate(paused(), 'canary-continue', { attestation: TEST_SIGNER.sign(claims({ kind: 'canary-abort' })) }, now);
    assert.equal(!abortAsContinue.ok && abortAsContinue.type, 'UnverifiedDecision');
  });
});

describe('canary lock lease', () => {
  it('when a canary has steps, soaks and metrics, then the lease covers every step at its worst, one pause and the final soak', () => {
    const c: CanaryPolicy = {
      steps: [{ percent: 10, pauseMs: 60_000 }, { percent: 100, pauseMs: 0 }],
      metrics: [
        { name: 'a', query: 'q', successCondition: 'result < 1', intervalMs: 10_000, count: 3, failureLimit: 1, inconclusiveLimit: 0, consecutiveErrorLimit: 2 },
        { name: 'b', query: 'q', successCondition: 'result < 1', intervalMs: 1_000, count: 5, failureLimit: 0, inconclusiveLimit: 0, consecutiveErrorLimit: 4 },
      ],
      finalSoakMs: 5_000,
    };
    // Slowest metric: 10 s × (3 + 1 + 0 + 2 + 1) = 70 s per step; steps: (600 + 60 + 70) + (600 + 0 + 70) s; pause 60 s; soak 5 s.
    assert.equal(canaryLeaseMs(c, 600_000, 60_000), 730_000 + 670_000 + 60_000 + 5_000);
  });
});
