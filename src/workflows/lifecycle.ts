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
  FailureTypes,
  lifecycleWorkflowId,
  lockGrantedSignal,
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
  type LifecycleInput,
  type RejectInput,
  type RetireInput,
  type LifecycleState,
  type Outcome,
  type PullRequestEvent,
  type Stage,
  type SupersededInput,
} from './definitions.js';
import {
  approvalDecision,
  authenticate,
  judgeMerge,
  canMove,
  currentRound,
  validateApproval,
  validateRejection,
  validateRetire,
  verifiedRequester,
  type Actor,
  type Verdict,
} from './transitions.js';
import { bestEffort, cache, isFailureOfType, lockActs, notify, registry, registryWaits, trust } from './activities.js';
import type { Attestation, DecisionKind } from '../identity/types.js';
import {
  checkPullRequest,
  deployThroughGitops,
  openPromotionPr,
  PR_POLL_MS,
  revertUnapprovedMerge,
  settlePullRequestOnEnd,
  type PullRequestFinding,
} from './gitops-steps.js';
import { retireThroughGitops } from './retire-steps.js';
import { TAG } from '../mlflow/tags.js';
import { PATCHES } from './patches.js';

/** How long the superseder waits for the previous version's workflow to archive itself before doing it. */
const SUPERSEDE_ACK_TIMEOUT_MS = 2 * 60 * 1000;

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
  let superseded: SupersededInput | undefined;
  let retireRequest: { by: string; reason?: string } | undefined;
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
  /** Keys from the worker (one load at a time); then the promotion's requester, if its attestation verifies. */
  let trustLoading: Promise<void> | undefined;
  const loadTrust = (): Promise<void> =>
    (trustLoading ??= (async () => {
      const { keys, requestedBy } = await trust.loadVerificationKeys({
        model, version, request: input.trigger.attestation, startedAt: workflowInfo().startTime.getTime(),
      });
      state.trust = { keys, loadedAt: new Date().toISOString() };
      state.requestedBy ??= requestedBy;
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
    if (g.requestId === lockRequestId) lockGranted = true;
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

  note(input.trigger.by ?? input.trigger.source, 'lifecycle started', `trigger: ${input.trigger.source}`);
  details('waiting for MLflow to finish registering the version');

  // ---- policy and registration ----
  // Lifecycles started before attested decisions load their keys lazily (refreshTrust) instead.
  const [policy] = await Promise.all([registry.resolvePolicy({ model }), patched(PATCHES.attestedDecisions) ? loadTrust() : undefined]);
  state.policy = policy;
  try {
    state.facts = await registryWaits.waitForVersionReady({ model, version });
  } catch (err) {
    if (isFailureOfType(err, FailureTypes.RegistrationFailed)) {
      return finish('registration_failed', (err as Error & { cause?: Error }).cause?.message ?? 'registration failed');
    }
    throw err;
  }
  upsertMemo({ runId: state.facts.runId ?? '', registeredBy: state.facts.registeredBy ?? '' });

  // ---- evaluation gate ----
  state.phase = 'evaluating';
  details('evaluating against the policy');
  state.evaluation = await registry.evaluateVersion({ model, version, runId: state.facts.runId, policy: state.policy.evaluation });
  note('modelgate', state.evaluation.passed ? 'evaluation passed' : 'evaluation failed', state.evaluation.reasons.join('; ') || undefined);
  if (!state.evaluation.passed) {
    await registry.recordOutcome({
      model, version, workflowId, at: now(), outcome: 'rejected_by_evaluation', reasons: state.evaluation.reasons,
      tags: { [TAG.evaluation]: 'failed' },
    });
    return finish('rejected_by_evaluation', state.evaluation.reasons.join('; '));
  }

  await registry.enterStaging({ model, version, workflowId, at: now(), tags: { [TAG.evaluation]: 'passed' } });
  setStage('Staging', 'modelgate', 'evaluation passed');
  if (state.policy.deployment.mode === 'gitops') await openPromotionPr(state, note);
  // The Slack card shows the approve buttons only for a version awaiting approval.
  state.phase = 'awaiting_approval';
  const channel = state.policy.notify.slackChannel;
  const slack: { channel?: string; ts?: string } = channel
    ? ((await bestEffort(() => notify.notifyStaging({ state, channel }))) ?? { channel })
    : {};
  /** Keeps the Slack message in step with the lifecycle (when the policy names a channel). */
  const tellSlack = async (snapshot: LifecycleState) => {
    if (slack.channel) await bestEffort(() => notify.notifyUpdate({ state: snapshot, channel: slack.channel!, ts: slack.ts }));
  };

  // ---- approval, then deployment; a PR that changes after approval sends it back for approval ----
  let promotion: { approvedBy: string };
  for (;;) {
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
    const result = await deployUnderLock();
    if (result.kind === 'promoted') {
      promotion = result;
      break;
    }
    if (result.kind === 'rolled_back') {
      await tellSlack({ ...state, outcome: 'rolled_back' });
      return finish('rolled_back', result.reason);
    }
    dropRound(result.reason);
  }

  // ---- Production until superseded or retired ----
  state.phase = 'production';
  details(`serving in Production since ${state.promotedAt} (approved by ${promotion.approvedBy})`);
  await tellSlack(state);
  // The `superseded` signal can come from any Temporal client: newer lifecycles check that MLflow agrees
  // (the superseder moved the production alias under the lock before signalling) and ignore it otherwise.
  const verifySupersede = patched(PATCHES.verifiedSupersede);
  for (;;) {
    await condition(() => superseded !== undefined || retireRequest !== undefined);
    if (!superseded && state.policy.deployment.mode === 'gitops' && patched(PATCHES.gitopsRetire)) {
      if ((await retireThroughGitops(state, note, details, prEvents, retireRequest!)).ok) break;
      retireRequest = undefined; // failed: still Production, and a retire may be asked again
      continue;
    }
    if (!superseded || !verifySupersede) break;
    const holder = await registry.productionHolder({ model });
    if (holder === superseded.byVersion) break;
    note(superseded.byWorkflowId, 'superseded signal ignored', `MLflow says version ${holder ?? 'none'} holds the production alias, not ${superseded.byVersion}`);
    superseded = undefined;
  }
  if (superseded) {
    const by = superseded;
    await registry.archiveVersion({ model, version, at: now(), supersededBy: by.byVersion, outcome: 'superseded' });
    state.supersededBy = by.byVersion;
    setStage('Archived', by.byWorkflowId, `superseded by version ${by.byVersion}`);
    await getExternalWorkflowHandle(by.byWorkflowId).signal(supersedeAckSignal, { version });
    await bestEffort(() => cache.invalidateActiveVersion({ model }));
    return finish('superseded', `superseded by version ${by.byVersion}`);
  }
  const r = retireRequest!;
  await registry.archiveVersion({ model, version, at: now(), outcome: 'retired' });
  setStage('Archived', r.by, r.reason ?? 'retired');
  await bestEffort(() => cache.invalidateActiveVersion({ model }));
  return finish('retired', r.reason ?? `retired by ${r.by}`);

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
    for (;;) {
      const decision = approvalDecision(state);
      if (decision !== 'pending') return decision;
      const remaining = deadline - Date.now();
      if (remaining <= 0) return 'expired';
      const wait = state.pullRequest ? Math.min(remaining, PR_POLL_MS) : remaining;
      const woken = await condition(() => approvalDecision(state) !== 'pending' || prEvents.length > 0, wait);
      const hinted = prEvents.splice(0).length > 0;
      // Timed out (time to look ourselves) or a webhook hinted: either way the Git host is asked, never believed.
      if (state.pullRequest && (!woken || hinted) && approvalDecision(state) === 'pending') {
        await onPullRequestFinding(await checkPullRequest(state, dropRound));
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

  type DeployOutcome = { kind: 'promoted'; approvedBy: string } | { kind: 'rolled_back'; reason: string } | { kind: 'reapprove'; reason: string };

  /** Everything that changes the model's Production version happens while holding the model's lock. */
  async function deployUnderLock(): Promise<DeployOutcome> {
    const policy = state.policy!;
    state.phase = 'deploying';
    const approvedBy = state.approvals.map((a) => a.by).join(',');
    const approvedAt = state.approvals[state.approvals.length - 1]!.at;
    details(`approved by ${approvedBy}; waiting for the ${model} Production lock`);
    const leaseMs = (policy.deployment.kserve?.rolloutDeadlineMs ?? 0) * 2 + 30 * 60 * 1000;
    lockGranted = false;
    await lockActs.requestProductionLock({ model, request: { requestId: lockRequestId, workflowId, leaseMs } });
    await condition(() => lockGranted);
    note('modelgate', 'holds the Production lock');
    try {
      let deployTags: Record<string, string> = {};
      if (policy.deployment.mode === 'gitops') {
        const rollout = await deployThroughGitops(state, note, details, prEvents);
        if (!rollout.ok && rollout.reapprove) return { kind: 'reapprove', reason: rollout.reason };
        if (!rollout.ok) {
          await registry.tagVersion({ model, version, tags: { [TAG.deploy]: 'failed', [TAG.reasons]: rollout.reason } });
          return { kind: 'rolled_back', reason: rollout.reason };
        }
        deployTags = { ...rollout.tags, [TAG.deploy]: 'serving' };
      }
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
  async function supersede(previous: number): Promise<void> {
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
      await registry.archiveVersion({ model, version: previous, at: now(), supersededBy: version, outcome: 'superseded' });
    }
    note('modelgate', `version ${previous} archived`, acked ? 'by its own lifecycle' : 'directly (its lifecycle did not answer)');
  }
}
