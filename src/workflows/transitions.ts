/**
 * The lifecycle's rules as pure functions over state: which stage moves are legal, who may approve or reject,
 * and when enough approvals have been collected. No Temporal APIs here, so they are unit-tested directly and
 * the update validators (which must be synchronous and deterministic) call them.
 */
import type { ApprovalPolicy, ModelPolicy } from '../policy/types.js';
import type { Attestation, DecisionKind } from '../identity/types.js';
import type { CanaryPolicy } from '../canary/types.js';
import type { LifecycleState, PromotionRequest, Stage } from './definitions.js';
import { FailureTypes } from './definitions.js';
import { verifyAttestation } from './attestation.js';

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

function deny(type: string, message: string): { ok: false; type: string; message: string } {
  return { ok: false, type, message };
}

function label(state: LifecycleState): string {
  return `${state.model} version ${state.version}`;
}

function identityOk(who: unknown): who is string {
  return typeof who === 'string' && who.trim().length > 0 && who.length <= 128;
}

/** A decision's author once authenticated: from verified claims, or bare fields recorded `verified: false`. */
export interface Actor {
  identity: string;
  groups: string[];
  channel: string;
  verified: boolean;
  comment?: string;
  reason?: string;
}

export type Authenticated = { ok: true; actor: Actor } | { ok: false; type: string; message: string };

export function currentRound(state: LifecycleState): number {
  return state.approvalRound ?? 1;
}

export function requiresVerifiedIdentity(state: LifecycleState): boolean {
  return state.policy?.approval.requireVerifiedIdentity !== false;
}

type DecisionInput = { attestation?: Attestation; by?: string; via?: string; comment?: string; reason?: string };

/**
 * Who made this decision, as far as the workflow can verify it: the signature of a front door over the
 * decision kind, model, version, identity, channel, round and PR head. Pure and synchronous, so update
 * validators call it; `now` is workflow time.
 */
export function authenticate(state: LifecycleState, kind: DecisionKind, input: DecisionInput | undefined, now: number): Authenticated {
  if (!input || typeof input !== 'object') return deny(FailureTypes.InvalidInput, `${kind}: expected a decision object`);
  if (input.attestation !== undefined) {
    const r = verifyAttestation(input.attestation, state.trust?.keys, { kind, model: state.model, version: state.version, now });
    if (!r.ok) return deny(r.unknownKey ? FailureTypes.UntrustedKey : FailureTypes.UnverifiedDecision, `${kind} refused: ${r.message}`);
    const c = r.claims;
    if (kind === 'approve' || kind === 'reject') {
      if (c.round !== currentRound(state)) {
        return deny(
          FailureTypes.StaleDecision,
          `${kind} refused: it was made for approval round ${String(c.round)} of ${label(state)}; approvals were dropped since (round ${currentRound(state)}), decide again`,
        );
      }
      const head = state.pullRequest?.headSha;
      if (head && c.headSha !== head) {
        return deny(FailureTypes.StaleDecision, `${kind} refused: it was made for pull request head ${c.headSha?.slice(0, 10) ?? '(none)'}, the head is now ${head.slice(0, 10)}; review and decide again`);
      }
    }
    if (kind === 'canary-continue' || kind === 'canary-abort') {
      const pause = state.canary?.pause;
      if (pause && c.round !== pause.id) {
        return deny(FailureTypes.StaleDecision, `${kind} refused: it was made for canary pause ${String(c.round)} of ${label(state)}, the canary now waits on pause ${pause.id}; decide again`);
      }
    }
    return {
      ok: true,
      actor: {
        identity: c.identity,
        groups: c.groups.filter((g) => typeof g === 'string'),
        channel: c.channel,
        verified: true,
        ...(c.comment !== undefined ? { comment: c.comment } : {}),
        ...(c.reason !== undefined ? { reason: c.reason } : {}),
      },
    };
  }
  if (requiresVerifiedIdentity(state)) {
    return deny(
      FailureTypes.UnverifiedDecision,
      `${kind} refused: ${label(state)} accepts only decisions made through a modelgate front door (API, CLI, Slack, web page) by a verified identity; a bare Temporal update names nobody (policy approval.requireVerifiedIdentity)`,
    );
  }
  if (!identityOk(input.by)) return deny(FailureTypes.InvalidInput, `${kind}: \`by\` must be a non-empty identity`);
  return {
    ok: true,
    actor: {
      identity: input.by,
      groups: [],
      channel: typeof input.via === 'string' && input.via ? input.via.slice(0, 64) : 'temporal',
      verified: false,
      ...(typeof input.comment === 'string' ? { comment: input.comment } : {}),
      ...(typeof input.reason === 'string' ? { reason: input.reason } : {}),
    },
  };
}

export function isAllowedApprover(policy: ApprovalPolicy, who: string, groups: readonly string[] = []): boolean {
  return policy.approvers.includes('*') || policy.approvers.includes(who) || groups.some((g) => policy.approvers.includes(`group:${g}`));
}

/**
 * Who registered the version, from authenticated sources only: MLflow's server-side user mapped through the
 * directory, and the verified requester of the promotion (and the person a pipeline named). Client-written run
 * tags never count.
 */
export function registrantsOf(state: LifecycleState): string[] {
  const out = new Set<string>();
  if (state.facts?.registrant) out.add(state.facts.registrant);
  for (const r of [state.requestedBy, ...(state.alsoRequestedBy ?? [])]) {
    if (!r) continue;
    out.add(r.identity);
    if (r.onBehalfOf) out.add(r.onBehalfOf);
  }
  return [...out];
}

/** The verified requester of a promotion, from the start input's attestation (checked against the start time). */
export function verifiedRequester(state: LifecycleState, attestation: Attestation | undefined, startedAt: number): LifecycleState['requestedBy'] {
  if (!attestation) return undefined;
  const r = verifyAttestation(attestation, state.trust?.keys, { kind: 'promote', model: state.model, version: state.version, now: startedAt });
  if (!r.ok) return undefined;
  return { identity: r.claims.identity, channel: r.claims.channel, ...(r.claims.onBehalfOf ? { onBehalfOf: r.claims.onBehalfOf } : {}) };
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

export function validateApproval(state: LifecycleState, actor: Actor): Verdict {
  if (actor.comment !== undefined && (typeof actor.comment !== 'string' || actor.comment.length > 2000)) {
    return deny(FailureTypes.InvalidInput, 'approve: `comment` must be a string of at most 2000 characters');
  }
  if (state.phase !== 'awaiting_approval' || !state.policy) return notAwaiting(state);
  const policy = state.policy.approval;
  const who = actor.identity;
  if (!isAllowedApprover(policy, who, actor.groups)) {
    return deny(FailureTypes.UnauthorizedApprover, `${who} may not approve ${state.model} (allowed: ${policy.approvers.join(', ') || 'nobody'})`);
  }
  if (policy.fourEyes) {
    const registrants = registrantsOf(state);
    if (registrants.includes(who)) {
      return deny(FailureTypes.SelfApproval, `${who} registered ${label(state)} and may not approve it (four-eyes policy)`);
    }
    if (!registrants.length && policy.unknownRegistrant !== 'allow') {
      return deny(
        FailureTypes.UnknownRegistrant,
        `nobody may approve ${label(state)}: four-eyes needs to know who registered it, and neither MLflow (user_id, with MLflow auth) nor a verified promotion request says (policy approval.fourEyes.unknownRegistrant: deny)`,
      );
    }
  }
  if (state.approvals.some((a) => a.by === who && (a.round ?? 1) === currentRound(state))) {
    return deny(FailureTypes.DuplicateApproval, `${who} has already approved ${label(state)}; ${policy.quorum} distinct approvers are needed`);
  }
  return ok;
}

export function validateRejection(state: LifecycleState, actor: Actor): Verdict {
  const reason = actor.reason;
  if (typeof reason !== 'string' || !reason.trim() || reason.length > 2000) {
    return deny(FailureTypes.InvalidInput, 'reject: a `reason` of 1 to 2000 characters is required');
  }
  if (state.phase !== 'awaiting_approval' || !state.policy) return notAwaiting(state);
  if (!isAllowedApprover(state.policy.approval, actor.identity, actor.groups)) {
    return deny(FailureTypes.UnauthorizedApprover, `${actor.identity} may not reject ${state.model} (allowed: ${state.policy.approval.approvers.join(', ') || 'nobody'})`);
  }
  return ok;
}

export function validateRetire(state: LifecycleState, actor: Actor): Verdict {
  if (state.phase !== 'production') {
    return deny(FailureTypes.NotAwaitingApproval, `${label(state)} is not in Production (phase: ${state.phase.replace(/_/g, ' ')})`);
  }
  if (state.policy && !isAllowedApprover(state.policy.approval, actor.identity, actor.groups)) {
    return deny(FailureTypes.UnauthorizedApprover, `${actor.identity} may not retire ${state.model}`);
  }
  return ok;
}

/**
 * How long a canary may keep the Production lock beyond a plain rollout: per step the split wait, the soak and
 * the longest analysis (every sample of the slowest metric, errors up to their limit), one pause for a person,
 * and the final soak. An expiring lease mid-canary would revoke the grant and stop the rollout half-way.
 */
export function canaryLeaseMs(c: CanaryPolicy, rolloutDeadlineMs: number, pauseMs: number): number {
  const analysis = Math.max(0, ...c.metrics.map((m) => m.intervalMs * (m.count + m.failureLimit + m.inconclusiveLimit + m.consecutiveErrorLimit + 1)));
  return c.steps.reduce((sum, s) => sum + rolloutDeadlineMs + s.pauseMs + analysis, 0) + pauseMs + (c.finalSoakMs ?? 0);
}

/**
 * A decision on a paused canary: only while one waits, by an allowed approver, and — continuing, which sends more
 * traffic to the version — never by its registrant under four-eyes. Aborting (back to the previous version) needs
 * a reason; it is the safe direction, so four-eyes does not hold it back.
 */
export function validateCanaryDecision(state: LifecycleState, kind: 'canary-continue' | 'canary-abort', actor: Actor): Verdict {
  const text = kind === 'canary-abort' ? actor.reason : actor.comment;
  if (text !== undefined && (typeof text !== 'string' || text.length > 2000)) return deny(FailureTypes.InvalidInput, `${kind}: reason/comment must be a string of at most 2000 characters`);
  if (kind === 'canary-abort' && (typeof actor.reason !== 'string' || !actor.reason.trim())) {
    return deny(FailureTypes.InvalidInput, 'canary-abort: a `reason` of 1 to 2000 characters is required');
  }
  const pause = state.canary?.pause;
  if (state.canary?.status !== 'paused' || !pause || pause.decision) {
    return deny(FailureTypes.CanaryNotPaused, `${label(state)} has no canary waiting for a decision (${state.canary ? `canary ${state.canary.status}` : 'no canary'})`);
  }
  if (!state.policy || !isAllowedApprover(state.policy.approval, actor.identity, actor.groups)) {
    return deny(FailureTypes.UnauthorizedApprover, `${actor.identity} may not decide on the canary of ${state.model} (allowed: ${state.policy?.approval.approvers.join(', ') || 'nobody'})`);
  }
  if (kind === 'canary-continue' && state.policy.approval.fourEyes && registrantsOf(state).includes(actor.identity)) {
    return deny(FailureTypes.SelfApproval, `${actor.identity} registered ${label(state)} and may not continue its canary (four-eyes policy)`);
  }
  return ok;
}

/**
 * Whether a merge the Git host reports may count as the approval that completes the quorum; the reason if not.
 * Only the host's own record of who merged counts (GitHub `merged_by` mapped through the directory; plain git
 * never), only for the head under review, and only as the last approval: a merge deploys.
 */
export function judgeMerge(
  state: LifecycleState,
  merged: { mergedBy?: string; mergedByIdentity?: { identity: string; groups: string[] }; headSha: string },
): string | undefined {
  const who = merged.mergedByIdentity;
  const head = state.pullRequest?.headSha;
  if (!who) return `${merged.mergedBy ?? 'the merger'} is not linked to a modelgate identity the Git host vouches for`;
  if (head && merged.headSha !== head) return `the merged head ${merged.headSha.slice(0, 10)} is not the head ${head.slice(0, 10)} under review`;
  const v = validateApproval(state, { identity: who.identity, groups: who.groups, channel: 'pull-request merge', verified: true });
  if (!v.ok) return v.message;
  const quorum = state.policy?.approval.quorum ?? 1;
  const round = currentRound(state);
  const distinct = new Set([...state.approvals.filter((a) => (a.round ?? 1) === round).map((a) => a.by), who.identity]);
  if (distinct.size < quorum) return `quorum ${quorum} was not reached (a merge deploys, so it must be the last approval)`;
  return undefined;
}

/** pending until a rejection or `quorum` distinct approvals. */
export function approvalDecision(state: LifecycleState): 'approved' | 'rejected' | 'pending' {
  if (state.rejection) return 'rejected';
  const quorum = state.policy?.approval.quorum ?? 1;
  const round = currentRound(state);
  const distinct = new Set(state.approvals.filter((a) => (a.round ?? 1) === round).map((a) => a.by));
  return distinct.size >= quorum ? 'approved' : 'pending';
}

/**
 * The policy a run works under: a rollback run takes the `rollback:` section's quorum and four-eyes (quorum may
 * be 1 for incidents); everything else is the model's policy. Recorded in state, so the audit shows what applied.
 */
export function effectivePolicy(policy: ModelPolicy, request: PromotionRequest | undefined): ModelPolicy {
  if (request?.kind !== 'rollback' || !policy.rollback) return policy;
  return { ...policy, approval: { ...policy.approval, quorum: policy.rollback.quorum, fourEyes: policy.rollback.fourEyes } };
}

/** A rollback skips the evaluation gate and the re-check unless its policy says otherwise (it served before). */
export function skipsEvaluation(policy: ModelPolicy, request: PromotionRequest | undefined): boolean {
  return request?.kind === 'rollback' && (policy.rollback?.skipEvaluation ?? true);
}

/**
 * Whether a re-promotion or rollback request may start this run: it must be attested (unless the policy
 * accepts unverified decisions) with the same reason, and a rollback must go to a version that served before.
 */
export function validateRequest(
  state: LifecycleState,
  request: PromotionRequest,
  verified: { identity: string; reason?: string } | undefined,
): Verdict {
  const what = request.kind === 'rollback' ? 'rollback' : 're-promotion';
  if (typeof request.reason !== 'string' || !request.reason.trim()) return deny(FailureTypes.InvalidInput, `${what} of ${label(state)} needs a reason`);
  if (!verified && requiresVerifiedIdentity(state)) {
    return deny(FailureTypes.UnverifiedDecision, `${what} of ${label(state)} refused: the request is not attested by a modelgate front door`);
  }
  if (verified && verified.reason !== request.reason) {
    return deny(FailureTypes.UnverifiedDecision, `${what} of ${label(state)} refused: the attested reason differs from the request's`);
  }
  if (request.kind === 'rollback' && !state.facts?.promotedBefore) {
    return deny(FailureTypes.NotARollbackTarget, `rollback to ${label(state)} refused: it was never in Production (a rollback returns to a version that served before)`);
  }
  return { ok: true };
}

/**
 * Judged against what serves now, under the lock: a plain approval never replaces a newer serving version
 * (going back is a rollback, with its own approval and audit).
 */
export function olderThanServing(state: LifecycleState, serving: number | undefined): Verdict {
  if (serving === undefined || serving <= state.version || state.request?.kind === 'rollback') return { ok: true };
  return deny(
    FailureTypes.OlderThanServing,
    `version ${serving} serves and is newer than ${state.version}; going back to an older version is a rollback (modelgate rollback ${state.model} --to ${state.version} --reason …)`,
  );
}

/** Back-off between re-checks when approvals are kept after a failed one: 1 min doubling to 30 min. */
export function recheckBackoffMs(failures: number): number {
  return Math.min(30 * 60_000, 60_000 * 2 ** Math.max(0, failures - 1));
}

/** Versions other than this one that MLflow says are Production (alias or stage): all are superseded. */
export function toSupersede(version: number, now: { serving?: number; aliasHolder?: number; stageHolders: number[] }): number[] {
  const all = [now.aliasHolder, now.serving, ...now.stageHolders].filter((v): v is number => v !== undefined && v !== version);
  return [...new Set(all)].sort((a, b) => a - b);
}
