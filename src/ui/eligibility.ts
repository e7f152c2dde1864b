/**
 * Which decision buttons a signed-in person sees, and the reason when none: the dry run's approvalEligibility
 * (itself the workflow's validateApproval) for Approve, the workflow's validateRejection for Reject, and the
 * session's scopes first (a read-only token signs in read-only). Pure: the page and its tests share it. The
 * workflow re-checks everything when the decision arrives, so this only decides what is shown.
 */
import { approvalEligibility } from '../dryrun/eligibility.js';
import type { DryRunEligibility } from '../dryrun/types.js';
import type { IdentityRef, Scope } from '../identity/types.js';
import type { LifecycleState } from '../workflows/definitions.js';
import { validateRejection } from '../workflows/transitions.js';

export interface DecisionRights {
  approve: DryRunEligibility;
  reject: DryRunEligibility;
}

export function decisionRights(state: LifecycleState | null, who: IdentityRef & { scopes: readonly Scope[] }): DecisionRights {
  const no = (code: string, reason: string): DecisionRights => ({ approve: { may: false, code, reason }, reject: { may: false, code, reason } });
  if (!state) return no('no_lifecycle', 'no lifecycle is running for this version');
  if (!who.scopes.includes('approve')) return no('insufficient_scope', 'your sign-in does not carry the "approve" scope (read only)');
  if (state.phase !== 'awaiting_approval' || !state.policy) {
    return no('not_awaiting_approval', `the version is not awaiting approval (${state.phase.replace(/_/g, ' ')}${state.outcome ? `: ${state.outcome.replace(/_/g, ' ')}` : ''})`);
  }
  const approve = approvalEligibility(state.policy.approval, state, who);
  const r = validateRejection(state, { identity: who.identity, groups: who.groups, channel: 'ui', verified: true, reason: 'probe' });
  const reject: DryRunEligibility = r.ok ? { may: true } : { may: false, code: 'not_an_approver', reason: approve.code === 'not_an_approver' && approve.reason ? approve.reason : r.message };
  return { approve, reject };
}
