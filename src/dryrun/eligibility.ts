/**
 * Whether one identity may approve a version, and why not, in words for that person. Pure and synchronous: the
 * dry run, the web page's button rules and tests share it. It asks the workflow's own rule
 * (transitions.validateApproval) on a state shaped like the lifecycle's, so the answer cannot drift from what
 * the lifecycle would accept; only the wording is addressed to "you".
 */
import type { IdentityRef } from '../identity/types.js';
import type { ApprovalPolicy, ModelPolicy } from '../policy/types.js';
import type { Approval, LifecycleState, Phase } from '../workflows/definitions.js';
import { FailureTypes } from '../workflows/definitions.js';
import { currentRound, validateApproval } from '../workflows/transitions.js';
import type { DryRunEligibility } from './types.js';

/** The parts of a lifecycle's state the rule looks at (a state query's result fits). */
export type EligibilityState = Pick<LifecycleState, 'model' | 'version' | 'approvals' | 'approvalRound' | 'facts' | 'requestedBy' | 'alsoRequestedBy'> & {
  /** Given: a phase other than awaiting_approval refuses. Absent: the question is hypothetical ("once it waits"). */
  phase?: Phase;
};

export function approvalEligibility(policy: ApprovalPolicy, state: EligibilityState, who: IdentityRef): DryRunEligibility {
  if (state.phase !== undefined && state.phase !== 'awaiting_approval') {
    return { may: false, code: 'not_awaiting_approval', reason: `the version is not awaiting approval (${state.phase.replace(/_/g, ' ')})` };
  }
  const probe: LifecycleState = {
    model: state.model,
    version: state.version,
    workflowId: '',
    stage: 'Staging',
    phase: 'awaiting_approval',
    approvals: state.approvals,
    ...(state.approvalRound !== undefined ? { approvalRound: state.approvalRound } : {}),
    ...(state.facts ? { facts: state.facts } : {}),
    ...(state.requestedBy ? { requestedBy: state.requestedBy } : {}),
    ...(state.alsoRequestedBy ? { alsoRequestedBy: state.alsoRequestedBy } : {}),
    // validateApproval reads only the approval section.
    policy: { approval: policy } as ModelPolicy,
    timeline: [],
  };
  const v = validateApproval(probe, { identity: who.identity, groups: who.groups, channel: 'dry-run', verified: true });
  if (v.ok) return { may: true };
  switch (v.type) {
    case FailureTypes.UnauthorizedApprover:
      return {
        may: false,
        code: 'not_an_approver',
        reason: `not in the approver list (${policy.approvers.join(', ') || 'nobody may approve'})`,
      };
    case FailureTypes.SelfApproval:
      return { may: false, code: 'self_approval', reason: 'you registered this version (four-eyes)' };
    case FailureTypes.UnknownRegistrant:
      return {
        may: false,
        code: 'unknown_registrant',
        reason: 'nobody knows who registered this version, so four-eyes cannot be satisfied (approval.unknownRegistrant: deny)',
      };
    case FailureTypes.DuplicateApproval:
      return { may: false, code: 'already_approved', reason: `quorum ${policy.quorum}: ${quorumProgress(state)}; you already approved` };
    default:
      return { may: false, code: 'refused', reason: v.message };
  }
}

/** "bob already approved", "bob, carol already approved", or "no approvals yet" for the current round. */
export function quorumProgress(state: Pick<LifecycleState, 'approvals' | 'approvalRound'>): string {
  const round = currentRound(state as LifecycleState);
  const by = [...new Set(state.approvals.filter((a: Approval) => (a.round ?? 1) === round).map((a) => a.by))];
  return by.length ? `${by.join(', ')} already approved` : 'no approvals yet';
}
