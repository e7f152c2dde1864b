/**
 * modelLifecycle: one execution per MLflow model version, None → Staging → Production → Archived.
 * Evaluation gate → Staging; human approval (updates) → Production under the model's lock; stays open while
 * in Production until superseded or retired.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  APPROVER,
  approveUpdate,
  canaryAbortUpdate,
  canaryContinueUpdate,
  FailureTypes,
  lifecycleWorkflowId,
  lockGrantedSignal,
  lockRevokedSignal,
  lockWorkflowId,
  MODEL_STAGE,
  OUTCOME,
  pullRequestSignal,
  refreshTrustUpdate,
  rejectUpdate,
  requestPromotionUpdate,
  releaseLockSignal,
  retireUpdate,
  stateQuery,
  supersedeAckSignal,
  supersededSignal,
  type ApproveInput,
  type CanaryDecisionInput,
  type LifecycleInput,
  type RejectInput,
  type RetireInput,
  type LifecycleState,
  type Outcome,
  type PullRequestEvent,
  type Stage,
  type SupersededInput,
  type LockGrant,
  type LifecycleCarry,
  type TimedOutOutcome,
  HISTORY_BUDGET,
} from './definitions.js';
import {
  approvalDecision,
  authenticate,
  judgeMerge,
  canMove,
  currentRound,
  validateApproval,
  validateCanaryDecision,
  canaryLeaseMs,
  validateRejection,
  validateRetire,
  verifiedRequester,
  effectivePolicy,
  olderThanServing,
  recheckBackoffMs,
  skipsEvaluation,
  toSupersede,
  validateRequest,
  type Actor,
  type Verdict,
} from './transitions.js';
import { bestEffort, cache, gitopsNotes, isFailureOfType, lockActs, notify, registry, registryWaits, trust } from './activities.js';
import type { Attestation, DecisionKind } from '../identity/types.js';
import {
  checkPullRequest,
  deployThroughGitops,
  openPromotionPr,
  PR_POLL_MS,
  revertUnapprovedMerge,
  runOf,
  settlePullRequestOnEnd,
  type PullRequestFinding,
} from './gitops-steps.js';
import { retireThroughGitops } from './retire-steps.js';
import { TAG } from '../mlflow/tags.js';
import { PATCHES } from './patches.js';
import { budgetReached, ranToDeadline, sleepMs } from './waits.js';

/** How long the superseder waits for the previous version's workflow to archive itself before doing it. */
const SUPERSEDE_ACK_TIMEOUT_MS = 2 * 60 * 1000;
/** A lifecycle waiting for the lock asks again this often (rebuilds a lock workflow that was terminated). */
// Not backed off: it is also how a terminated lock workflow is rebuilt; ~11 events per ask, ~3,200 a day.
const LOCK_REREQUEST_MS = 5 * 60 * 1000;
/** PR checks back off to this interval while nothing changes (a webhook hint resets it). */
const PR_POLL_MAX_MS = 15 * 60 * 1000;
/** The holder stops changing Production this long before its lease runs out (clocks of two workflows). */
const LEASE_MARGIN_MS = 30 * 1000;
/** Lock wait of lifecycles whose policy was resolved before `deployment.lockWait` existed. */
const DEFAULT_LOCK_WAIT_MS = 24 * 60 * 60 * 1000;

export async function modelLifecycle(input: LifecycleInput): Promise<LifecycleState> {
  const { model, version } = input;
  const workflowId = workflowInfo().workflowId;
  const state: LifecycleState = {
    model,
    version,
    workflowId,
    stage: 'None',
    phase: 'awaiting_registration',
    approvals: [],
    timeline: [],
  };
  const lockRequestId = `${lifecycleWorkflowId(model, version)}/production`;
  let lockGranted = false;
  // Fenced grants (PATCHES.fencedPromotion): the grant itself, and whether the lock took it back.
  let grant: LockGrant | undefined;
  let revokedToken: number | undefined;
  let requestReason: string | undefined;
  /** After a failed re-check with approvals kept: not before this time again. */
  let recheckAt: number | undefined;
  let recheckFailures = 0;
  const carried = input.carry;
  let prPollMs = carried?.prPollMs ?? PR_POLL_MS;
  let slack: { channel?: string; ts?: string } = {};
  let superseded: SupersededInput | undefined;
  let retireRequest: { by: string; reason?: string } | undefined = carried?.retireRequest;
  /** A grant that reached the previous run as it continued as new. */
  let carriedGrant: LockGrant | undefined = carried?.grant;
  const acks = new Set<number>();
  const prEvents: PullRequestEvent[] = [];

  const note = (actor: string, action: string, detail?: string) => {
    state.timeline.push({ at: new Date().toISOString(), actor, action, ...(detail ? { detail } : {}) });
  };
  const enforce = (v: Verdict) => {
    if (!v.ok) throw ApplicationFailure.create({ type: v.type, message: v.message, nonRetryable: true });
  };

  /** The author of a decision; validators refuse what does not authenticate, handlers only record. */
  const authorOf = (kind: DecisionKind, input: ApproveInput & RejectInput): Actor => {
    const a = authenticate(state, kind, input, Date.now());
    // Replaying a decision accepted before attestations existed: record it as it was made, unverified.
    return a.ok ? a.actor : { identity: String(input?.by ?? 'unknown'), groups: [], channel: String(input?.via ?? 'temporal'), verified: false, comment: input?.comment, reason: input?.reason };
  };
  const gate = (kind: DecisionKind, input: ApproveInput & RejectInput, check: (a: Actor) => Verdict) => {
    const a = authenticate(state, kind, input, Date.now());
    if (!a.ok) throw ApplicationFailure.create({ type: a.type, message: a.message, nonRetryable: true });
    enforce(check(a.actor));
  };

  // Handlers first, before any await, so no message is lost to a not-yet-registered handler.
  setHandler(stateQuery, () => state);
  setHandler(
    approveUpdate,
    (input) => {
      const a = authorOf('approve', input);
      state.approvals.push({
        by: a.identity, at: new Date().toISOString(), via: a.channel, round: currentRound(state), verified: a.verified,
        ...(a.comment ? { comment: a.comment } : {}),
      });
      note(a.identity, a.verified ? 'approved' : 'approved (unverified identity)', a.comment);
      upsertSearchAttributes([{ key: APPROVER, value: state.approvals.map((x) => x.by) }]);
      if (approvalDecision(state) === 'approved') state.phase = 'deploying';
      return state;
    },
    { validator: (input: ApproveInput) => gate('approve', input, (a) => validateApproval(state, a)) },
  );
  setHandler(
    rejectUpdate,
    (input) => {
      const a = authorOf('reject', input);
      const reason = a.reason ?? '';
      state.rejection = { by: a.identity, reason, at: new Date().toISOString(), verified: a.verified };
      note(a.identity, a.verified ? 'rejected' : 'rejected (unverified identity)', reason);
      return state;
    },
    { validator: (input: RejectInput) => gate('reject', input, (a) => validateRejection(state, a)) },
  );
  setHandler(
    retireUpdate,
    (input) => {
      const a = authorOf('retire', input);
      retireRequest = { by: a.identity, ...(a.reason ? { reason: a.reason } : {}) };
      note(a.identity, a.verified ? 'retire requested' : 'retire requested (unverified identity)', a.reason);
      return state;
    },
    { validator: (input: RetireInput) => gate('retire', input, (a) => validateRetire(state, a)) },
  );
  // A paused canary: the decision is recorded here; canary-steps.ts waits for it.
  const canaryDecision = (kind: 'canary-continue' | 'canary-abort') => (input: CanaryDecisionInput) => {
    const a = authorOf(kind, input);
    const pause = state.canary!.pause!;
    const reason = kind === 'canary-abort' ? a.reason : a.comment;
    pause.decision = { kind: kind === 'canary-continue' ? 'continue' : 'abort', by: a.identity, at: new Date().toISOString(), verified: a.verified, ...(reason ? { reason } : {}) };
    note(a.identity, `${kind === 'canary-continue' ? 'continued' : 'aborted'} the canary${a.verified ? '' : ' (unverified identity)'}`, reason);
    return state;
  };
  setHandler(canaryContinueUpdate, canaryDecision('canary-continue'), {
    validator: (input: CanaryDecisionInput) => gate('canary-continue', input, (a) => validateCanaryDecision(state, 'canary-continue', a)),
  });
  setHandler(canaryAbortUpdate, canaryDecision('canary-abort'), {
    validator: (input: CanaryDecisionInput) => gate('canary-abort', input, (a) => validateCanaryDecision(state, 'canary-abort', a)),
  });
  /** Keys from the worker (one load at a time); then the promotion's requester, if its attestation verifies. */
  let trustLoading: Promise<void> | undefined;
  const loadTrust = (): Promise<void> =>
    (trustLoading ??= (async () => {
      const { keys, requestedBy, requestReason: reason } = await trust.loadVerificationKeys({
        model, version, request: input.trigger.attestation, startedAt: workflowInfo().startTime.getTime(),
        ...(input.request?.kind === 'rollback' ? { kind: 'rollback' as const } : {}),
      });
      state.trust = { keys, loadedAt: new Date().toISOString() };
      state.requestedBy ??= requestedBy;
      requestReason ??= reason;
    })().finally(() => {
      trustLoading = undefined;
    }));
  setHandler(
    requestPromotionUpdate,
    ({ attestation }) => {
      const r = verifiedRequester(state, attestation, Date.now());
      if (r) {
        const known = [state.requestedBy, ...(state.alsoRequestedBy ?? [])].some((k) => k?.identity === r.identity && k.onBehalfOf === r.onBehalfOf);
        if (!state.requestedBy) state.requestedBy = r;
        else if (!known) state.alsoRequestedBy = [...(state.alsoRequestedBy ?? []), r];
        if (!known) note(r.identity, 'promotion requested', r.onBehalfOf ? `on behalf of ${r.onBehalfOf}` : undefined);
      }
      return state;
    },
    {
      validator: ({ attestation }: { attestation: Attestation }) => {
        const a = authenticate(state, 'promote', { attestation }, Date.now());
        if (!a.ok) throw ApplicationFailure.create({ type: a.type, message: a.message, nonRetryable: true });
      },
    },
  );
  // Anyone may ask for the keys to be reloaded: they come from the worker, so asking changes nothing but freshness.
  setHandler(refreshTrustUpdate, async () => {
    await loadTrust();
    return { kids: Object.keys(state.trust?.keys ?? {}) };
  });
  setHandler(supersededSignal, (s) => {
    superseded = s;
  });
  setHandler(supersedeAckSignal, (a) => {
    acks.add(a.version);
  });
  setHandler(lockGrantedSignal, (g) => {
    if (g.requestId !== lockRequestId) return;
    lockGranted = true;
    grant = g;
  });
  setHandler(lockRevokedSignal, (g) => {
    if (g.requestId !== lockRequestId || g.token === undefined || g.token !== grant?.token) return;
    revokedToken = g.token;
    note('modelgate', 'Production lock revoked', `grant ${g.token}: its lease ran out`);
  });
  setHandler(pullRequestSignal, (e) => {
    prEvents.push(e);
  });

  const setStage = (to: Stage, actor: string, why: string) => {
    if (!canMove(state.stage, to)) {
      throw ApplicationFailure.create({ type: 'IllegalTransition', nonRetryable: true, message: `${state.stage} → ${to} is not a legal move` });
    }
    note(actor, `${state.stage} → ${to}`, why);
    state.stage = to;
    upsertSearchAttributes([{ key: MODEL_STAGE, value: to }]);
  };
  const details = (text: string) => setCurrentDetails(`**${model} v${version}** — ${text}`);
  const finish = async (outcome: Outcome, reason: string): Promise<LifecycleState> => {
    state.phase = 'done';
    state.outcome = outcome;
    state.outcomeReason = reason;
    note('modelgate', `ended: ${outcome}`, reason);
    upsertSearchAttributes([{ key: OUTCOME, value: outcome }]);
    details(`ended: ${outcome} — ${reason}`);
    // Let an update that arrived in the same task finish answering before the run closes.
    await condition(allHandlersFinished);
    return state;
  };
  const now = () => new Date().toISOString();

  // One decision for the whole run, taken before any command: executions started on an earlier release keep
  // its unfenced promotion path through every replay (docs/operations.md).
  const fenced = patched(PATCHES.fencedPromotion);
  const bounded = patched(PATCHES.boundedHistory);
  // Lock wait under the budget with a deadline; manual merge/revert waits with deadlines and back-off.
  const boundedWaits = bounded && patched(PATCHES.boundedWaits);
  // Approval and lock-wait deadlines are reached when their own timer fires, not when a clock says so.
  const deadlineByTimer = boundedWaits && patched(PATCHES.deadlineByTimer);
  // Continue as new a step before the budget, so no run ends past it.
  const headroom = deadlineByTimer && patched(PATCHES.budgetHeadroom);
  /** Keeps the Slack message in step with the lifecycle (when the policy names a channel). */
  const tellSlack = async (snapshot: LifecycleState) => {
    if (slack.channel) await bestEffort(() => notify.notifyUpdate({ state: snapshot, channel: slack.channel!, ts: slack.ts }));
  };
  if (carried) {
    // The previous run of this execution chain continued as new while waiting: go on where it stopped.
    Object.assign(state, carried.state);
    slack = carried.slack ?? {};
    recheckAt = carried.recheckAt;
    recheckFailures = carried.recheckFailures ?? 0;
    if (carried.prHinted) prEvents.push({ hint: true });
  } else {
  note(input.trigger.by ?? input.trigger.source, 'lifecycle started', `trigger: ${input.trigger.source}`);
  details('waiting for MLflow to finish registering the version');

  // ---- policy and registration ----
  // Lifecycles started before attested decisions load their keys lazily (refreshTrust) instead.
  const [policy] = await Promise.all([registry.resolvePolicy({ model }), patched(PATCHES.attestedDecisions) ? loadTrust() : undefined]);
  state.policy = fenced ? effectivePolicy(policy, input.request) : policy;
  const request = fenced ? input.request : undefined;
  if (request) {
    // The run's start time (not its run id) tells its PR branches from the version's earlier runs'.
    const run = `${request.kind}-${workflowInfo().startTime.toISOString().toLowerCase().replace(/[^0-9a-z]/g, '')}`;
    state.request = { ...request, ...(state.requestedBy ? { by: state.requestedBy.identity } : {}), run };
    note(state.requestedBy?.identity ?? input.trigger.by ?? 'unknown', request.kind === 'rollback' ? 'rollback requested' : 'promotion requested again', request.reason);
  }
  try {
    state.facts = await registryWaits.waitForVersionReady({ model, version });
  } catch (err) {
    if (isFailureOfType(err, FailureTypes.RegistrationFailed)) {
      return finish('registration_failed', (err as Error & { cause?: Error }).cause?.message ?? 'registration failed');
    }
    throw err;
  }
  upsertMemo({ runId: state.facts.runId ?? '', registeredBy: state.facts.registeredBy ?? '' });
  if (request) {
    const v = validateRequest(state, request, state.requestedBy ? { identity: state.requestedBy.identity, reason: requestReason } : undefined);
    if (!v.ok) return finish('rejected', v.message);
  }

  // ---- evaluation gate ----
  state.phase = 'evaluating';
  const skipEvaluation = fenced && skipsEvaluation(state.policy, request);
  if (skipEvaluation) {
    state.evaluation = { passed: true, checks: [], reasons: [], candidateMetrics: {} };
    note('modelgate', 'evaluation skipped', 'a rollback returns a version that served before (policy rollback.skipEvaluation)');
  } else {
    details('evaluating against the policy');
    // The baseline is what serves, as MLflow shows it (alias, else stage Production set outside modelgate).
    const baseline = fenced ? (await registry.currentProduction({ model })).serving : undefined;
    state.evaluation = await registry.evaluateVersion({
      model, version, runId: state.facts.runId, policy: state.policy.evaluation,
      ...(fenced ? { baselineVersion: baseline !== undefined && baseline !== version ? baseline : null } : {}),
    });
    note('modelgate', state.evaluation.passed ? 'evaluation passed' : 'evaluation failed', state.evaluation.reasons.join('; ') || undefined);
  }
  if (!state.evaluation.passed) {
    await registry.recordOutcome({
      model, version, workflowId, at: now(), outcome: 'rejected_by_evaluation', reasons: state.evaluation.reasons,
      tags: { [TAG.evaluation]: 'failed' },
    });
    return finish('rejected_by_evaluation', state.evaluation.reasons.join('; '));
  }

  // Staging itself says the gate passed; the tag is written when it says more (skipped) or corrects an earlier run.
  const evaluationTag = !fenced ? 'passed' : skipEvaluation ? 'skipped' : request ? 'passed' : undefined;
  await registry.enterStaging({ model, version, workflowId, at: now(), tags: evaluationTag ? { [TAG.evaluation]: evaluationTag } : {} });
  setStage('Staging', 'modelgate', 'evaluation passed');
  if (state.policy.deployment.mode === 'gitops') await openPromotionPr(state, note);
  // The Slack card shows the approve buttons only for a version awaiting approval.
  state.phase = 'awaiting_approval';
  const channel = state.policy.notify.slackChannel;
  slack = channel ? ((await bestEffort(() => notify.notifyStaging({ state, channel }))) ?? { channel }) : {};
  }

  // ---- approval, then deployment; a PR that changes after approval sends it back for approval ----
  for (;;) {
    if (state.phase === 'production') break;
    const decision = await awaitDecision();
    if (decision !== 'approved') {
      const outcome: Outcome = decision === 'rejected' ? 'rejected' : 'expired';
      const reason = state.rejection ? `rejected by ${state.rejection.by}: ${state.rejection.reason}` : `no approval before ${state.approvalDeadline}`;
      await settlePullRequestOnEnd(state, reason);
      await registry.recordOutcome({
        model, version, workflowId, at: now(), outcome, reasons: [reason],
        tags: state.rejection ? { [TAG.rejectedBy]: state.rejection.by } : {},
      });
      await tellSlack({ ...state, outcome });
      return finish(outcome, reason);
    }
    const result = fenced ? await deployFenced() : await deployUnderLock();
    if (result.kind === 'lock_lost') {
      // Approvals still stand: the next pass asks for the lock again and re-checks against what serves then.
      note('modelgate', 'lost the Production lock', result.reason);
      continue;
    }
    if (result.kind === 'recheck_failed') {
      await onRecheckFailed(result.reasons);
      await tellSlack(state);
      continue;
    }
    if (result.kind === 'promoted') break;
    if (result.kind === 'timed_out') return endTimedOut(result.outcome, result.reason);
    if (result.kind === 'rolled_back') {
      await tellSlack({ ...state, outcome: 'rolled_back' });
      return finish('rolled_back', result.reason);
    }
    dropRound(result.reason);
  }

  // ---- Production until superseded or retired ----
  const resumedInProduction = state.phase === 'production';
  state.phase = 'production';
  details(`serving in Production since ${state.promotedAt} (approved by ${state.approvals.map((a) => a.by).join(',')})`);
  if (!resumedInProduction) await tellSlack(state);
  // The `superseded` signal can come from any Temporal client: newer lifecycles check that MLflow agrees
  // (the superseder moved the production alias under the lock before signalling) and ignore it otherwise.
  const verifySupersede = patched(PATCHES.verifiedSupersede);
  for (;;) {
    await condition(() => superseded !== undefined || retireRequest !== undefined || overBudget());
    if (!superseded && !retireRequest) await rollOver();
    if (!superseded && !fenced) {
      // Lifecycles started before the fenced lock retire as before (GitOps: through a PR, without the lock).
      if (state.policy!.deployment.mode === 'gitops' && patched(PATCHES.gitopsRetire)) {
        if ((await retireThroughGitops(state, note, details, prEvents, retireRequest!)).ok) break;
        retireRequest = undefined; // failed: still Production, and a retire may be asked again
        continue;
      }
      break;
    }
    if (!superseded) {
      const retired = await retireUnderLock();
      if (retired !== 'failed') break;
      retireRequest = undefined;
      continue;
    }
    if (!verifySupersede) break;
    const holder = await registry.productionHolder({ model });
    if (holder === superseded.byVersion) break;
    note(superseded.byWorkflowId, 'superseded signal ignored', `MLflow says version ${holder ?? 'none'} holds the production alias, not ${superseded.byVersion}`);
    superseded = undefined;
  }
  if (superseded) return archiveSuperseded(superseded);
  const r = retireRequest!;
  if (!fenced) await registry.archiveVersion({ model, version, at: now(), outcome: 'retired' });
  setStage('Archived', r.by, r.reason ?? 'retired');
  await bestEffort(() => cache.invalidateActiveVersion({ model }));
  return finish('retired', r.reason ?? `retired by ${r.by}`);

  /** Over the history budget (or the server suggests it): time to continue as new. Old executions never do. */
  function overBudget(): boolean {
    if (!bounded) return false;
    const info = workflowInfo();
    return info.continueAsNewSuggested || budgetReached(info.historyLength, input.historyBudget ?? HISTORY_BUDGET, headroom);
  }

  /**
   * Continue as new carrying the whole state, only between steps and after every handler finished, so no
   * decision is half-applied. Decisions deduplicate across runs through the state (approvals, rounds).
   */
  async function rollOver(): Promise<never> {
    await condition(allHandlersFinished);
    state.continuedAsNew = (state.continuedAsNew ?? 0) + 1;
    const carry: LifecycleCarry = {
      state,
      slack,
      ...(recheckAt !== undefined ? { recheckAt } : {}),
      recheckFailures,
      prHinted: prEvents.length > 0,
      prPollMs,
      // Only a grant that came while waiting for it (the deadline is cleared once a grant is taken): a grant
      // held earlier and released must never be handed on as if it were held.
      ...(boundedWaits && grant && state.lockWaitDeadline ? { grant } : {}),
      ...(boundedWaits && retireRequest ? { retireRequest } : {}),
    };
    return continueAsNew<typeof modelLifecycle>({ ...input, carry });
  }

  /** A bounded wait ran out: the outcome everywhere a person looks (MLflow tags, Slack, audit), the PR closed. */
  async function endTimedOut(outcome: TimedOutOutcome, reason: string): Promise<LifecycleState> {
    await settlePullRequestOnEnd(state, reason);
    await registry.recordOutcome({ model, version, workflowId, at: now(), outcome, reasons: [reason], tags: outcome === 'lock_wait_timed_out' ? {} : { [TAG.deploy]: 'failed' } });
    await tellSlack({ ...state, outcome });
    return finish(outcome, reason);
  }

  /** The superseder holds the lock and moved the alias; this lifecycle archives itself and says so. */
  async function archiveSuperseded(by: SupersededInput): Promise<LifecycleState> {
    await registry.archiveVersion({ model, version, at: now(), supersededBy: by.byVersion, outcome: 'superseded' });
    state.supersededBy = by.byVersion;
    setStage('Archived', by.byWorkflowId, `superseded by version ${by.byVersion}`);
    await getExternalWorkflowHandle(by.byWorkflowId).signal(supersedeAckSignal, { version });
    await bestEffort(() => cache.invalidateActiveVersion({ model }));
    return finish('superseded', `superseded by version ${by.byVersion}`);
  }

  /** A new approval round: earlier approvals no longer count (the PR changed); the expiry stays as it was. */
  function dropRound(reason: string): void {
    note('modelgate', 'approvals dropped', `${reason}; approval round ${currentRound(state) + 1} begins`);
    state.approvals = [];
    state.approvalRound = currentRound(state) + 1;
    upsertSearchAttributes([{ key: APPROVER, value: [] }]);
  }

  /** Waits for quorum, a rejection, or expiry; PR merges/closes on the Git host count under the same rules. */
  async function awaitDecision(): Promise<'approved' | 'rejected' | 'expired'> {
    const policy = state.policy!;
    state.phase = 'awaiting_approval';
    // A new round keeps the first deadline: re-approval must not extend how long a version may wait.
    const deadline = state.approvalDeadline ? Date.parse(state.approvalDeadline) : Date.now() + policy.approval.expiresAfterMs;
    state.approvalDeadline = new Date(deadline).toISOString();
    details(`Staging; awaiting approval by ${policy.approval.quorum} of ${policy.approval.approvers.join(', ')} until ${state.approvalDeadline}`);
    // Set once the timer set to the deadline itself fired (PATCHES.deadlineByTimer): expired by history.
    let deadlineFired = false;
    for (;;) {
      const decision = approvalDecision(state);
      const remaining = deadline - Date.now();
      if (decision === 'approved' && recheckAt !== undefined && Date.now() < recheckAt) {
        // Approvals kept after a failed re-check: wait for the back-off (or a rejection) before trying again.
        if (remaining <= 0 || deadlineFired) return 'expired';
        const ms = Math.min(remaining, recheckAt - Date.now());
        const woken = await condition(() => approvalDecision(state) === 'rejected', ms);
        deadlineFired ||= deadlineByTimer && !woken && ranToDeadline(ms, remaining);
        continue;
      }
      if (decision !== 'pending') return decision;
      if (remaining <= 0 || deadlineFired) return 'expired';
      const wait = state.pullRequest ? Math.min(remaining, bounded ? prPollMs : PR_POLL_MS) : remaining;
      const woken = await condition(() => approvalDecision(state) !== 'pending' || prEvents.length > 0 || overBudget(), wait);
      // Not "the clock says the deadline passed": the next task's clock may differ between execution and replay.
      deadlineFired ||= deadlineByTimer && !woken && ranToDeadline(wait, remaining);
      if (approvalDecision(state) === 'pending' && !deadlineFired && overBudget()) await rollOver();
      const hinted = prEvents.splice(0).length > 0;
      // Timed out (time to look ourselves) or a webhook hinted: either way the Git host is asked, never believed.
      if (state.pullRequest && (!woken || hinted) && approvalDecision(state) === 'pending') {
        const headBefore = state.pullRequest.headSha;
        const finding = await checkPullRequest(state, dropRound);
        await onPullRequestFinding(finding);
        // Back off while nothing changes (1 min → 15 min); a hint or a change looks again at once next time.
        const quiet = finding.kind === 'open' && state.pullRequest?.headSha === headBefore && !hinted;
        prPollMs = quiet ? Math.min(PR_POLL_MAX_MS, prPollMs * 2) : PR_POLL_MS;
      }
    }
  }

  async function onPullRequestFinding(f: PullRequestFinding): Promise<void> {
    if (f.kind === 'open') return;
    if (f.kind === 'closed') {
      // Whoever closed it, the promotion cannot go on without its PR: fail closed, and say who.
      state.rejection = { by: f.by, reason: 'pull request closed without merge', at: now(), verified: false };
      note(f.by, 'closed the pull request');
      return;
    }
    const { status } = f;
    const who = status.mergedByIdentity;
    const why = judgeMerge(state, status);
    if (why) {
      await revertUnapprovedMerge(state, note, status, why);
      state.rejection = { by: status.mergedBy ?? 'unknown', reason: `unapproved merge reverted: ${why}`, at: now(), verified: false };
      return;
    }
    Object.assign(state.pullRequest!, { mergeSha: status.mergeSha, mergedBy: status.mergedBy });
    state.approvals.push({ by: who!.identity, at: now(), via: 'pull-request merge', round: currentRound(state), verified: true });
    upsertSearchAttributes([{ key: APPROVER, value: state.approvals.map((x) => x.by) }]);
    note(who!.identity, 'approved by merging the pull request', status.mergedBy);
  }

  type DeployOutcome =
    | { kind: 'promoted'; approvedBy: string }
    | { kind: 'rolled_back'; reason: string }
    | { kind: 'reapprove'; reason: string }
    | { kind: 'recheck_failed'; reasons: string[] }
    | { kind: 'lock_lost'; reason: string }
    | { kind: 'timed_out'; outcome: TimedOutOutcome; reason: string };

  /** GitOps: the PR merged and KServe serving the version (or rolled back); registry mode has nothing to roll out. */
  async function rollOut(leaseUntil?: number): Promise<{ tags: Record<string, string> } | DeployOutcome> {
    if (state.policy!.deployment.mode !== 'gitops') return { tags: {} };
    const rollout = await deployThroughGitops(state, note, details, prEvents, boundedWaits ? { leaseUntil, ...(deadlineByTimer ? { byTimer: true } : {}) } : undefined, () => tellSlack(state));
    if (!rollout.ok && rollout.reapprove) return { kind: 'reapprove', reason: rollout.reason };
    if (!rollout.ok && rollout.timedOut) return { kind: 'timed_out', outcome: rollout.timedOut, reason: rollout.reason };
    if (!rollout.ok) {
      await registry.tagVersion({ model, version, tags: { [TAG.deploy]: 'failed', [TAG.reasons]: rollout.reason } });
      return { kind: 'rolled_back', reason: rollout.reason };
    }
    return { tags: { ...rollout.tags, [TAG.deploy]: 'serving' } };
  }

  function leaseFor(): number {
    const d = state.policy!.deployment;
    return d.lockLeaseMs ?? (d.kserve?.rolloutDeadlineMs ?? 0) * 2 + 30 * 60 * 1000 + (d.canary ? canaryLeaseMs(d.canary, d.kserve?.rolloutDeadlineMs ?? 0, state.policy!.approval.expiresAfterMs) : 0);
  }

  /**
   * Asks for the model's Production lock until it is granted. The request is repeated every few minutes: it
   * rebuilds a lock workflow that was terminated (signal-with-start) with every still-waiting lifecycle in its
   * queue, and is a no-op for a lock that already has it. `abort` gives up (and leaves the queue).
   * With PATCHES.boundedWaits the wait counts against the history budget — the next run asks again under the
   * same request id, which keeps its queue place — and ends 'timed_out' at `deployment.lockWait` (carried).
   */
  async function acquireLock(abort: () => boolean = () => false): Promise<(LockGrant & { until: number }) | 'timed_out' | undefined> {
    const leaseMs = leaseFor();
    grant = carriedGrant;
    carriedGrant = undefined;
    if (boundedWaits && !state.lockWaitDeadline) {
      state.lockWaitDeadline = new Date(Date.now() + (state.policy!.deployment.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS)).toISOString();
    }
    const deadline = state.lockWaitDeadline && boundedWaits ? Date.parse(state.lockWaitDeadline) : Number.POSITIVE_INFINITY;
    const waitingOver = () => boundedWaits && overBudget();
    for (;;) {
      await lockActs.requestProductionLock({ model, request: { requestId: lockRequestId, workflowId, leaseMs } });
      // A few times per lease, capped: a short test lease re-requests quickly, a production one every 5 min.
      const every = Math.min(LOCK_REREQUEST_MS, Math.max(5_000, leaseMs / 4));
      const left = deadline - Date.now();
      const ms = boundedWaits ? sleepMs(every, deadline, Date.now()) : every;
      const woken = await condition(() => grant !== undefined || abort() || waitingOver(), ms);
      const deadlineFired = deadlineByTimer && !woken && ranToDeadline(ms, left);
      if (grant) {
        const g: LockGrant = grant;
        state.fence = g.token;
        delete state.lockWaitDeadline;
        // The holder's own clock for the lease: it stops changing Production a little before the lock takes it back.
        const lease = g.leaseMs ?? leaseMs;
        return { ...g, until: Date.now() + lease - Math.min(LEASE_MARGIN_MS, lease / 4) };
      }
      if (woken && abort()) {
        await releaseLock(undefined);
        delete state.lockWaitDeadline;
        return undefined;
      }
      if (!deadlineFired && waitingOver()) await rollOver();
      if (deadlineFired || (!deadlineByTimer && Date.now() >= deadline)) {
        // Leave the queue, so the lock does not grant a lifecycle that gave up.
        await releaseLock(undefined);
        note('modelgate', 'Production lock wait timed out', `not granted before ${state.lockWaitDeadline}`);
        delete state.lockWaitDeadline;
        return 'timed_out';
      }
    }
  }

  async function releaseLock(token: number | undefined): Promise<void> {
    // Even when cancelled, or the model's next promotion would wait for the lease to run out.
    try {
      await CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(lockWorkflowId(model)).signal(releaseLockSignal, { requestId: lockRequestId, ...(token !== undefined ? { token } : {}) }),
      );
    } catch (err) {
      // The lock workflow is gone (terminated): there is nothing to release; the next request rebuilds it.
      log.warn('Production lock not reachable on release', { error: String(err) });
    }
  }

  /** Why this grant no longer entitles us to change Production, if it does not. */
  function lostLock(held: LockGrant & { until: number }): string | undefined {
    if (held.token !== undefined && revokedToken === held.token) return `the lock revoked grant ${held.token} (its lease ran out)`;
    if (Date.now() >= held.until) return `the lease of grant ${String(held.token)} ran out before the Production change`;
    return undefined;
  }

  /**
   * Under a fenced grant: judged against what serves now (re-check), then the Production change; every other
   * version MLflow shows in Production (alias or stage, also set outside modelgate) is superseded.
   */
  async function deployFenced(): Promise<DeployOutcome> {
    const policy = state.policy!;
    state.phase = 'deploying';
    const approvedBy = state.approvals.map((a) => a.by).join(',');
    const approvedAt = state.approvals[state.approvals.length - 1].at;
    details(`approved by ${approvedBy}; waiting for the ${model} Production lock`);
    const got = await acquireLock();
    if (got === 'timed_out') {
      return { kind: 'timed_out', outcome: 'lock_wait_timed_out', reason: `the ${model} Production lock was not granted within the policy's deployment.lockWait` };
    }
    const held = got!;
    const fence = held.token !== undefined ? { token: held.token, until: held.until } : undefined;
    note('modelgate', 'holds the Production lock', held.token !== undefined ? `fencing token ${held.token}` : undefined);
    let promoted = false;
    try {
      const serving = await registry.currentProduction({ model });
      const older = olderThanServing(state, serving.serving);
      if (!older.ok) return { kind: 'recheck_failed', reasons: [older.message] };
      if (!skipsEvaluation(policy, state.request)) {
        details(`re-checking against version ${serving.serving ?? 'none'}, which serves now`);
        const baseline = serving.serving !== undefined && serving.serving !== version ? serving.serving : null;
        state.recheck = await registry.evaluateVersion({ model, version, runId: state.facts?.runId, policy: policy.evaluation, baselineVersion: baseline });
        const against = baseline === null ? 'with no version serving' : `against version ${baseline}, serving now`;
        note('modelgate', state.recheck.passed ? 're-check passed' : 're-check failed', [against, ...state.recheck.reasons].join('; '));
        if (!state.recheck.passed) return { kind: 'recheck_failed', reasons: state.recheck.reasons };
      }
      const rollout = await rollOut(held.until);
      if ('kind' in rollout) return rollout;
      const deployTags = rollout.tags;
      const lost = lostLock(held);
      if (lost) return { kind: 'lock_lost', reason: lost };
      const previous = serving.serving !== undefined && serving.serving !== version ? serving.serving : undefined;
      try {
        await registry.enterProduction({
          model, version, workflowId, at: now(), previousVersion: previous ?? null, ...(fence ? { fence } : {}),
          tags: { [TAG.approvedBy]: approvedBy, [TAG.approvedAt]: approvedAt, ...deployTags },
        });
      } catch (err) {
        if (isFailureOfType(err, FailureTypes.StaleFence)) return { kind: 'lock_lost', reason: (err as Error & { cause?: Error }).cause?.message ?? 'stale fencing token' };
        throw err;
      }
      promoted = true;
      setStage('Production', approvedBy, state.request?.kind === 'rollback' ? `rollback approved: ${state.request.reason}` : 'approved');
      state.promotedAt = now();
      state.previousProductionVersion = previous;
      for (const v of toSupersede(version, serving)) await supersede(v, fence);
      await bestEffort(() => cache.invalidateActiveVersion({ model }));
      return { kind: 'promoted', approvedBy };
    } catch (err) {
      // Production already changed: a stale fence while archiving the others leaves them to the next holder,
      // which supersedes every version MLflow still shows in Production.
      if (promoted && isFailureOfType(err, FailureTypes.StaleFence)) {
        note('modelgate', 'lost the Production lock while archiving superseded versions', 'the next holder archives them');
        return { kind: 'promoted', approvedBy };
      }
      throw err;
    } finally {
      await releaseLock(held.token);
    }
  }

  /** Reasons everywhere a person looks; approvals kept (re-checked with back-off) or dropped, as the policy says. */
  async function onRecheckFailed(reasons: string[]): Promise<void> {
    const text = reasons.join('; ').slice(0, 4000);
    await registry.tagVersion({ model, version, tags: { [TAG.recheck]: 'failed', [TAG.reasons]: text } });
    recheckFailures++;
    if (state.pullRequest && state.policy!.deployment.gitops) {
      const g = state.policy!.deployment.gitops;
      const against = state.recheck?.baselineVersion !== undefined ? ` against version ${state.recheck.baselineVersion}, which serves now` : '';
      await bestEffort(() =>
        gitopsNotes.commentOnPullRequest({
          ...runOf(state), model, version, policy: g, key: `recheck-r${currentRound(state)}-${recheckFailures}`,
          body: `modelgate did not promote ${model} version ${version}: the re-check${against} failed.\n\n${reasons.map((x) => `- ${x}`).join('\n')}`,
        }),
      );
    }
    if ((state.policy!.approval.onRecheckFailure ?? 'drop') === 'keep') {
      recheckAt = Date.now() + recheckBackoffMs(recheckFailures);
      note('modelgate', 'not promoted: re-check failed; approvals kept', `${text}; next re-check after ${new Date(recheckAt).toISOString()}`);
    } else {
      note('modelgate', 'not promoted: re-check failed', text);
      dropRound('the re-check against the serving version failed');
    }
    state.phase = 'awaiting_approval';
  }

  /**
   * Retire under the lock, so it cannot race a promotion: the alias is removed only while it still names this
   * version. A verified supersede that arrives meanwhile wins (the superseder already moved Production).
   */
  async function retireUnderLock(): Promise<'retired' | 'superseded' | 'failed'> {
    const newer = () => superseded !== undefined;
    for (;;) {
      details('retiring: waiting for the Production lock');
      const got = await acquireLock(newer);
      if (got === 'timed_out') {
        note('modelgate', 'retire failed', `the ${model} Production lock was not granted within deployment.lockWait; v${version} stays in Production and the retire may be asked again`);
        state.phase = 'production';
        return 'failed';
      }
      const held = got;
      try {
        if (superseded) {
          const holder = await registry.productionHolder({ model });
          if (holder === superseded.byVersion) return 'superseded';
          note(superseded.byWorkflowId, 'superseded signal ignored', `MLflow says version ${holder ?? 'none'} holds the production alias, not ${superseded.byVersion}`);
          superseded = undefined;
          if (!held) continue;
        }
        const fence = held?.token !== undefined ? { token: held.token, until: held.until } : undefined;
        // GitOps: the PR that takes the InferenceService off this version, verified, before MLflow changes.
        if (state.policy!.deployment.mode === 'gitops' && patched(PATCHES.gitopsRetire)) {
          try {
            const out = await retireThroughGitops(state, note, details, prEvents, retireRequest!, fence, boundedWaits ? (deadlineByTimer ? { byTimer: true } : {}) : undefined);
            if (!out.ok) return 'failed';
          } catch (err) {
            if (!isFailureOfType(err, FailureTypes.StaleFence)) throw err;
            note('modelgate', 'lost the Production lock while retiring', 'retire again when the lock is free');
            state.phase = 'production';
            return 'failed';
          }
        }
        try {
          await registry.archiveVersion({ model, version, at: now(), outcome: 'retired', ...(fence ? { fence } : {}) });
          return 'retired';
        } catch (err) {
          if (!isFailureOfType(err, FailureTypes.StaleFence)) throw err;
          note('modelgate', 'lost the Production lock while retiring', 'asking again');
        }
      } finally {
        if (held) await releaseLock(held.token);
      }
    }
  }

  /** Everything that changes the model's Production version happens while holding the model's lock. */
  async function deployUnderLock(): Promise<DeployOutcome> {
    const policy = state.policy!;
    state.phase = 'deploying';
    const approvedBy = state.approvals.map((a) => a.by).join(',');
    const approvedAt = state.approvals[state.approvals.length - 1].at;
    details(`approved by ${approvedBy}; waiting for the ${model} Production lock`);
    const leaseMs = (policy.deployment.kserve?.rolloutDeadlineMs ?? 0) * 2 + 30 * 60 * 1000;
    lockGranted = false;
    await lockActs.requestProductionLock({ model, request: { requestId: lockRequestId, workflowId, leaseMs } });
    await condition(() => lockGranted);
    note('modelgate', 'holds the Production lock');
    try {
      const rollout = await rollOut();
      if ('kind' in rollout) return rollout;
      const deployTags = rollout.tags;
      const { previousVersion } = await registry.enterProduction({
        model, version, workflowId, at: now(),
        tags: { [TAG.approvedBy]: approvedBy, [TAG.approvedAt]: approvedAt, ...deployTags },
      });
      setStage('Production', approvedBy, 'approved');
      state.promotedAt = now();
      state.previousProductionVersion = previousVersion;
      if (previousVersion !== undefined) await supersede(previousVersion);
      await bestEffort(() => cache.invalidateActiveVersion({ model }));
      return { kind: 'promoted', approvedBy };
    } finally {
      // Release even when cancelled, or the model's next promotion would wait for the lease to expire.
      await CancellationScope.nonCancellable(() =>
        getExternalWorkflowHandle(lockWorkflowId(model)).signal(releaseLockSignal, { requestId: lockRequestId }),
      );
    }
  }

  /** Tell the previous version's lifecycle to archive itself; archive it here if it cannot. */
  async function supersede(previous: number, fence?: { token: number; until: number }): Promise<void> {
    const previousId = lifecycleWorkflowId(model, previous);
    let told = false;
    try {
      await getExternalWorkflowHandle(previousId).signal(supersededSignal, { byVersion: version, byWorkflowId: workflowId });
      told = true;
    } catch (err) {
      log.warn('previous Production lifecycle not reachable; archiving it here', { previousId, error: String(err) });
    }
    const acked = told && (await condition(() => acks.has(previous), SUPERSEDE_ACK_TIMEOUT_MS));
    if (!acked) {
      // Its workflow is gone or stuck: archive it directly (idempotent if it does so later too).
      await registry.archiveVersion({ model, version: previous, at: now(), supersededBy: version, outcome: 'superseded', ...(fence ? { fence } : {}) });
    }
    note('modelgate', `version ${previous} archived`, acked ? 'by its own lifecycle' : 'directly (its lifecycle did not answer)');
  }
}
