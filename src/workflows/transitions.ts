/**
 * The lifecycle's rules as pure functions over state: which stage moves are legal, who may approve or reject,
 * and when enough approvals have been collected. No Temporal APIs here, so they are unit-tested directly and
 * the update validators (which must be synchronous and deterministic) call them.
 */
import type { ApprovalPolicy } from '../policy/types.js';
import type { ApproveInput, LifecycleState, RejectInput, RetireInput, Stage } from './definitions.js';
import { FailureTypes } from './definitions.js';

const legalMoves: Record<Stage, Stage[]> = {
  None: ['Staging'],
  Staging: ['Production', 'Archived'],
  Production: ['Archived'],
  Archived: [],
};

export function canMove(from: Stage, to: Stage): boolean {
  return legalMoves[from].includes(to);
}

export type Verdict = { ok: true } | { ok: false; type: string; message: string };

const ok: Verdict = { ok: true };

function deny(type: string, message: string): Verdict {
  return { ok: false, type, message };
}

function label(state: LifecycleState): string {
  return `${state.model} version ${state.version}`;
}

function identityOk(who: unknown): who is string {
  return typeof who === 'string' && who.trim().length > 0 && who.length <= 128;
}

export function isAllowedApprover(policy: ApprovalPolicy, who: string): boolean {
  return policy.approvers.includes('*') || policy.approvers.includes(who);
}

/** Why the version is not awaiting approval, in words a person understands. */
function notAwaiting(state: LifecycleState): Verdict {
  const why =
    state.phase === 'deploying' || state.phase === 'production'
      ? `already approved by ${state.approvals.map((a) => a.by).join(', ')}`
      : state.phase === 'done'
        ? `its lifecycle ended (${state.outcome ?? 'done'})`
        : `it is ${state.phase.replace(/_/g, ' ')}`;
  return deny(FailureTypes.NotAwaitingApproval, `${label(state)} is not awaiting approval: ${why}`);
}

export function validateApproval(state: LifecycleState, input: ApproveInput): Verdict {
  if (!input || !identityOk(input.by)) return deny(FailureTypes.InvalidInput, 'approve: `by` must be a non-empty identity');
  if (input.comment !== undefined && (typeof input.comment !== 'string' || input.comment.length > 2000)) {
    return deny(FailureTypes.InvalidInput, 'approve: `comment` must be a string of at most 2000 characters');
  }
  if (state.phase !== 'awaiting_approval' || !state.policy) return notAwaiting(state);
  const policy = state.policy.approval;
  if (!isAllowedApprover(policy, input.by)) {
    return deny(FailureTypes.UnauthorizedApprover, `${input.by} may not approve ${state.model} (allowed: ${policy.approvers.join(', ') || 'nobody'})`);
  }
  if (policy.fourEyes && state.facts?.registeredBy && state.facts.registeredBy === input.by) {
    return deny(FailureTypes.SelfApproval, `${input.by} registered ${label(state)} and may not approve it (four-eyes policy)`);
  }
  if (state.approvals.some((a) => a.by === input.by)) {
    return deny(FailureTypes.DuplicateApproval, `${input.by} has already approved ${label(state)}; ${policy.quorum} distinct approvers are needed`);
  }
  return ok;
}

export function validateRejection(state: LifecycleState, input: RejectInput): Verdict {
  if (!input || !identityOk(input.by)) return deny(FailureTypes.InvalidInput, 'reject: `by` must be a non-empty identity');
  if (typeof input.reason !== 'string' || !input.reason.trim() || input.reason.length > 2000) {
    return deny(FailureTypes.InvalidInput, 'reject: a `reason` of 1 to 2000 characters is required');
  }
  if (state.phase !== 'awaiting_approval' || !state.policy) return notAwaiting(state);
  if (!isAllowedApprover(state.policy.approval, input.by)) {
    return deny(FailureTypes.UnauthorizedApprover, `${input.by} may not reject ${state.model} (allowed: ${state.policy.approval.approvers.join(', ') || 'nobody'})`);
  }
  return ok;
}

export function validateRetire(state: LifecycleState, input: RetireInput): Verdict {
  if (!input || !identityOk(input.by)) return deny(FailureTypes.InvalidInput, 'retire: `by` must be a non-empty identity');
  if (state.phase !== 'production') {
    return deny(FailureTypes.NotAwaitingApproval, `${label(state)} is not in Production (phase: ${state.phase.replace(/_/g, ' ')})`);
  }
  if (state.policy && !isAllowedApprover(state.policy.approval, input.by)) {
    return deny(FailureTypes.UnauthorizedApprover, `${input.by} may not retire ${state.model}`);
  }
  return ok;
}

/** pending until a rejection or `quorum` distinct approvals. */
export function approvalDecision(state: LifecycleState): 'approved' | 'rejected' | 'pending' {
  if (state.rejection) return 'rejected';
  const quorum = state.policy?.approval.quorum ?? 1;
  const distinct = new Set(state.approvals.map((a) => a.by));
  return distinct.size >= quorum ? 'approved' : 'pending';
}
