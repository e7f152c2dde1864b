/**
 * The GitOps deployment mode, workflow side: open the promotion PR at Staging, watch it while approval is
 * pending, merge it once approved, wait until KServe serves the version, or revert.
 */
import { condition, patched } from '@temporalio/workflow';
import type { LifecycleState, PullRequestEvent } from './definitions.js';
import type { PullRequestStatus } from '../gitops/provider.js';
import { deployment, gitops, isFailureOfType, registry } from './activities.js';
import { TAG } from '../mlflow/tags.js';
import { earliest, nextPollMs, POLL_MIN_MS, ranToDeadline, sleepMs } from './waits.js';
import { PATCHES } from './patches.js';
import { prepareCanary, runCanary, type CanaryHooks } from './canary-steps.js';

/** A progressive rollout applies: the policy has deployment.canary and this execution runs the canary code. */
export function canaryApplies(state: LifecycleState): boolean {
  return !!state.policy?.deployment.canary && patched(PATCHES.canaryRollout);
}

type Note = (actor: string, action: string, detail?: string) => void;

export type DeployResult =
  | { ok: true; tags: Record<string, string> }
  | { ok: false; reapprove: true; reason: string }
  | { ok: false; reapprove?: false; reason: string; timedOut?: 'manual_merge_timed_out' | 'manual_revert_timed_out' };

/**
 * Lifecycles started with PATCHES.boundedWaits: the manual waits have the policy's deadlines (the merge one
 * also the lock's lease, past which no change may follow) and back off like the PR poll.
 */
export interface WaitBounds {
  /** The Production lock grant's own end (epoch ms): waiting for a merge past it is pointless. */
  leaseUntil?: number;
  /** PATCHES.deadlineByTimer: a deadline is reached when the wait's timer to it fires (waits.ts ranToDeadline). */
  byTimer?: boolean;
}

/** How often the PR is checked while nothing is heard from the webhook (a lost webhook only delays). */
export const PR_POLL_MS = 60_000;

/**
 * One back-off sleep of a manual wait, cut short by a webhook hint. `fired`: the sleep was the deadline's own
 * timer (PATCHES.deadlineByTimer; waits.ts ranToDeadline), so after one last look the wait has timed out.
 * Unbounded (older) lifecycles sleep `unboundedMs`.
 */
export async function manualWaitSleep(
  prEvents: PullRequestEvent[],
  pollMs: number,
  deadline: number,
  bounds: WaitBounds | undefined,
  unboundedMs: number,
): Promise<{ fired: boolean; pollMs: number }> {
  const left = deadline - Date.now();
  const ms = bounds ? sleepMs(pollMs, deadline, Date.now()) : unboundedMs;
  const woken = await condition(() => prEvents.length > 0, ms);
  prEvents.splice(0);
  return { fired: !!bounds?.byTimer && !woken && ranToDeadline(ms, left), pollMs: nextPollMs(pollMs, !woken) };
}

/** A rollback or again run's own PR branches (the first run of a version has none). */
export function runOf(state: LifecycleState): { run?: string } {
  return state.request?.run ? { run: state.request.run } : {};
}

export async function openPromotionPr(state: LifecycleState, note: Note): Promise<void> {
  const g = state.policy!.deployment.gitops!;
  state.pullRequest = await gitops.openPromotionPullRequest({
    ...runOf(state),
    model: state.model,
    version: state.version,
    workflowId: state.workflowId,
    policy: g,
    evaluation: state.evaluation,
    // A canary's first step rides on the promotion change: KServe splits on the spec update that brings the version.
    ...(canaryApplies(state) ? { canaryPercent: state.policy!.deployment.canary!.steps[0].percent } : {}),
  });
  note('modelgate', 'opened pull request', state.pullRequest.url);
}

/** What the Git host says about the promotion PR, as the workflow acts on it. */
export type PullRequestFinding =
  | { kind: 'open' }
  | { kind: 'merged'; status: PullRequestStatus }
  | { kind: 'closed'; by: string };

/**
 * Reads the PR from the Git host (periodically, and whenever a webhook hints that something happened): only
 * this read is trusted, never the hint. An open PR whose head moved or whose checks fail drops the round.
 */
export async function checkPullRequest(state: LifecycleState, dropRound: DropRound): Promise<PullRequestFinding> {
  const g = state.policy!.deployment.gitops!;
  const pr = state.pullRequest!;
  const status = await gitops.getPullRequestStatus({ ...runOf(state), model: state.model, version: state.version, policy: g });
  if (!status) return { kind: 'open' };
  if (status.state === 'merged') return { kind: 'merged', status };
  if (status.state === 'closed') return { kind: 'closed', by: status.closedBy ?? 'unknown' };
  const changed = pr.headSha !== undefined && status.headSha !== pr.headSha;
  const failing = status.checks === 'failure';
  if ((changed || failing) && g.reapproveOnChange && state.approvals.length > 0) {
    dropRound(changed ? `pull request head moved to ${status.headSha}` : 'pull request checks failed');
  }
  pr.headSha = status.headSha;
  return { kind: 'open' };
}

/**
 * A merge nobody may count as the approval that completes the quorum (unmapped or unauthorized merger, a head
 * other than the one opened and approved, or too few approvals): ArgoCD would deploy it, so it is reverted at
 * once through a revert PR, and the version does not become Production.
 */
export async function revertUnapprovedMerge(state: LifecycleState, note: Note, status: PullRequestStatus, why: string): Promise<void> {
  const g = state.policy!.deployment.gitops!;
  const pr = state.pullRequest!;
  const by = status.mergedBy ?? 'unknown';
  const reason = `merge by ${by} not accepted: ${why}`;
  note(by, 'merged the pull request without approval', why);
  const revert = await gitops.openRevertPullRequest({ ...runOf(state), model: state.model, version: state.version, policy: g, mergeSha: status.mergeSha!, reason });
  const merged = await gitops.mergeRevertPullRequest({ ...runOf(state), model: state.model, version: state.version, policy: g });
  pr.unapprovedMerge = { sha: status.mergeSha!, by, revertUrl: revert.url, reason };
  note('modelgate', 'reverted the unapproved merge', `${revert.url} (${merged.mergeSha})`);
  await registry.tagVersion({ model: state.model, version: state.version, tags: { [TAG.flag]: `${reason}; reverted by ${merged.mergeSha}` } });
}

export type DropRound = (reason: string) => void;

/** A lifecycle ending without promotion closes its PR (if any and still open). */
export async function settlePullRequestOnEnd(state: LifecycleState, reason: string): Promise<void> {
  if (!state.pullRequest || state.pullRequest.mergeSha || state.pullRequest.unapprovedMerge) return;
  await gitops.closePromotionPullRequest({ ...runOf(state), model: state.model, version: state.version, policy: state.policy!.deployment.gitops!, reason });
}

/**
 * Merge (unless a person already did), then — with a kserve policy — wait until the InferenceService
 * really serves the version; on failure revert the merge and wait for the previous version to serve again.
 */
export async function deployThroughGitops(
  state: LifecycleState,
  note: Note,
  details: (text: string) => void,
  prEvents: PullRequestEvent[],
  bounds?: WaitBounds,
  tell: () => Promise<void> = () => Promise.resolve(),
): Promise<DeployResult> {
  const { model, version } = state;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve;
  const pr = state.pullRequest!;
  const canary: CanaryHooks | undefined = canaryApplies(state) ? { note, details, tell } : undefined;
  if (canary && !state.canary && !pr.mergeSha) {
    // Before any traffic moves: a RawDeployment InferenceService would ignore canaryTrafficPercent and take it all.
    const refusal = await prepareCanary(state, canary);
    if (refusal) {
      const reason = `canary refused: ${refusal}`;
      await settlePullRequestOnEnd(state, reason);
      return { ok: false, reason };
    }
  }
  if (!pr.mergeSha) {
    // Under the model's lock nothing else moves the base branch: what it serves now is the rollback target.
    pr.previousStorageUri = (await gitops.readServingManifest({ policy: g })).storageUri;
    try {
      const merged = await gitops.mergePromotionPullRequest({
    ...runOf(state),
        model,
        version,
        policy: g,
        expectedHeadSha: pr.headSha,
        approvers: state.approvals.map((a) => a.by),
      });
      pr.mergeSha = merged.mergeSha;
      note('modelgate', 'merged pull request', merged.mergeSha);
    } catch (err) {
      if (isFailureOfType(err, 'PullRequestHeadChanged')) {
        return { ok: false, reapprove: true, reason: 'the pull request changed after approval; approve again' };
      }
      if (!isFailureOfType(err, 'PullRequestNotMergeable')) throw err;
      // GitHub will not merge it (conflict, branch protection): a person has to; keep checking.
      details(`pull request ${pr.url} is not mergeable; waiting for a person to merge it`);
      note('modelgate', 'pull request not mergeable', 'waiting for a manual merge');
      const approvedHead = pr.headSha;
      // Bounded by the approval's own expiry (older lifecycles) or the policy's manual-merge timeout and the
      // lease: a PR nobody merges must not hold the Production lock for ever.
      const wait = (bounds && g.manualMergeTimeoutMs) || state.policy!.approval.expiresAfterMs;
      const deadline = earliest(Date.now() + wait, bounds?.leaseUntil);
      let pollMs = POLL_MIN_MS;
      let fired = false;
      while (!pr.mergeSha) {
        if (fired || (bounds ? !bounds.byTimer && Date.now() >= deadline : Date.now() > deadline)) {
          const reason = `pull request ${pr.url} was not merged before ${new Date(deadline).toISOString()}`;
          if (!bounds) return { ok: false, reason };
          note('modelgate', 'manual merge timed out', reason);
          return { ok: false, reason, timedOut: 'manual_merge_timed_out' };
        }
        // The last look (a merge at the last moment counts) comes first; then the deadline's own timer ends it.
        ({ fired, pollMs } = await manualWaitSleep(prEvents, pollMs, deadline, bounds, Math.min(PR_POLL_MS, Math.max(1, deadline - Date.now()))));
        // The Git host's record only; the webhook's event just made us look sooner.
        const status = await gitops.getPullRequestStatus({ ...runOf(state), model, version, policy: g });
        if (status?.state === 'merged') {
          if (approvedHead && status.headSha !== approvedHead) {
            await revertUnapprovedMerge(state, note, status, `the merged head ${status.headSha.slice(0, 10)} is not the approved head ${approvedHead.slice(0, 10)}`);
            return { ok: false, reason: `pull request merged at a head that was not approved; reverted (${pr.unapprovedMerge!.revertUrl})` };
          }
          pr.mergeSha = status.mergeSha;
          pr.mergedBy = status.mergedBy;
          note(status.mergedBy ?? 'unknown', 'merged the approved pull request', status.mergeSha);
        } else if (status?.state === 'closed') {
          return { ok: false, reason: `pull request closed by ${status.closedBy ?? 'someone'} instead of merged` };
        }
      }
    }
  }
  const tags: Record<string, string> = { [TAG.prUrl]: pr.url, [TAG.mergeSha]: pr.mergeSha ?? '' };
  if (pr.storageUri) tags[TAG.storageUri] = pr.storageUri;
  if (!k) return { ok: true, tags };

  if (canary && state.canary) {
    const r = await runCanary(state, canary);
    if (!r.ok) return { ok: false, reason: r.reason };
    note('kserve', 'serving', r.revision);
    if (r.revision) tags[TAG.readyRevision] = r.revision;
    return { ok: true, tags };
  }

  details(`merged ${pr.mergeSha?.slice(0, 10)}; waiting until KServe serves it`);
  const rollout = await deployment.waitForRollout({
    model,
    version,
    namespace: g.namespace,
    inferenceService: g.inferenceService,
    storageUri: pr.storageUri ?? '',
    mergeSha: pr.mergeSha,
    kserve: k,
    startedAt: new Date().toISOString(),
  });
  if (rollout.outcome === 'serving') {
    note('kserve', 'serving', rollout.revision);
    if (rollout.revision) tags[TAG.readyRevision] = rollout.revision;
    return { ok: true, tags };
  }

  // ---- rollback ----
  note('kserve', 'rollout failed', rollout.reason);
  details(`rollout failed (${rollout.reason}); reverting`);
  const revert = await gitops.openRevertPullRequest({ ...runOf(state), model, version, policy: g, mergeSha: pr.mergeSha, reason: rollout.reason });
  note('modelgate', 'opened revert pull request', revert.url);
  let revertSha: string | undefined;
  if (k.rollback === 'auto') {
    const merged = await gitops.mergeRevertPullRequest({ ...runOf(state), model, version, policy: g });
    revertSha = merged.mergeSha;
    note('modelgate', 'merged revert', merged.mergeSha);
  } else {
    details(`rollout failed; revert ${revert.url} awaits a person's merge`);
    // The revert is merged when the base branch serves the previous storage URI again.
    const deadline = bounds && g.manualRevertTimeoutMs !== undefined ? Date.now() + g.manualRevertTimeoutMs : Number.POSITIVE_INFINITY;
    let pollMs = POLL_MIN_MS;
    let fired = false;
    for (;;) {
      const serving = await gitops.readServingManifest({ policy: g });
      if (serving.storageUri === pr.previousStorageUri) {
        revertSha = serving.commit;
        break;
      }
      if (fired || (!bounds?.byTimer && Date.now() >= deadline)) {
        const reason = `the rollout failed (${rollout.reason}) and revert ${revert.url} was not merged before ${new Date(deadline).toISOString()}; a person must merge it`;
        note('modelgate', 'manual revert timed out', reason);
        return { ok: false, reason, timedOut: 'manual_revert_timed_out' };
      }
      ({ fired, pollMs } = await manualWaitSleep(prEvents, pollMs, deadline, bounds, PR_POLL_MS));
    }
    note('modelgate', 'revert merged', revertSha);
  }
  if (pr.previousStorageUri) {
    const back = await deployment.waitForRollback({
      namespace: g.namespace,
      inferenceService: g.inferenceService,
      storageUri: pr.previousStorageUri,
      mergeSha: revertSha,
      kserve: k,
      startedAt: new Date().toISOString(),
    });
    note('kserve', back.outcome === 'serving' ? 'previous version serving again' : 'previous version not serving', back.outcome === 'failed' ? back.reason : undefined);
  }
  return { ok: false, reason: `rollout failed: ${rollout.reason}` };
}
