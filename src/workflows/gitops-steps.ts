/**
 * The GitOps deployment mode, workflow side: open the promotion PR at Staging, watch it while approval is
 * pending, merge it once approved, wait until KServe serves the version, or revert.
 */
import { condition } from '@temporalio/workflow';
import type { LifecycleState, PullRequestEvent } from './definitions.js';
import { deployment, gitops, isFailureOfType } from './activities.js';
import { TAG } from '../mlflow/tags.js';

type Note = (actor: string, action: string, detail?: string) => void;

export type DeployResult =
  | { ok: true; tags: Record<string, string> }
  | { ok: false; reapprove: true; reason: string }
  | { ok: false; reapprove?: false; reason: string };

/** How often the PR is checked while nothing is heard from the webhook (a lost webhook only delays). */
export const PR_POLL_MS = 60_000;

export async function openPromotionPr(state: LifecycleState, note: Note): Promise<void> {
  const g = state.policy!.deployment.gitops!;
  state.pullRequest = await gitops.openPromotionPullRequest({
    model: state.model,
    version: state.version,
    workflowId: state.workflowId,
    policy: g,
    evaluation: state.evaluation,
  });
  note('modelgate', 'opened pull request', state.pullRequest.url);
}

/** The durable periodic check: turns what the Git host says into the same events the webhook sends. */
export async function pollPullRequest(state: LifecycleState, events: PullRequestEvent[]): Promise<void> {
  const g = state.policy!.deployment.gitops!;
  const pr = state.pullRequest!;
  const status = await gitops.getPullRequestStatus({ model: state.model, version: state.version, policy: g });
  if (!status) return;
  if (status.state === 'merged') {
    events.push({ action: 'merged', by: status.mergedBy ?? 'unknown', mergeSha: status.mergeSha, headSha: status.headSha });
    return;
  }
  if (status.state === 'closed') {
    events.push({ action: 'closed', by: status.closedBy ?? 'unknown' });
    return;
  }
  const changed = pr.headSha !== undefined && status.headSha !== pr.headSha;
  const failing = status.checks === 'failure';
  if ((changed || failing) && g.reapproveOnChange && state.approvals.length > 0) {
    state.timeline.push({
      at: new Date().toISOString(),
      actor: 'modelgate',
      action: 'approvals dropped',
      detail: changed ? `pull request head moved to ${status.headSha}` : 'pull request checks failed',
    });
    state.approvals = [];
  }
  pr.headSha = status.headSha;
}

/** A lifecycle ending without promotion closes its PR (if any and still open). */
export async function settlePullRequestOnEnd(state: LifecycleState, reason: string): Promise<void> {
  if (!state.pullRequest || state.pullRequest.mergeSha) return;
  await gitops.closePromotionPullRequest({ model: state.model, version: state.version, policy: state.policy!.deployment.gitops!, reason });
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
): Promise<DeployResult> {
  const { model, version } = state;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve;
  const pr = state.pullRequest!;
  if (!pr.mergeSha) {
    // Under the model's lock nothing else moves the base branch: what it serves now is the rollback target.
    pr.previousStorageUri = (await gitops.readServingManifest({ policy: g })).storageUri;
    try {
      const merged = await gitops.mergePromotionPullRequest({
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
      while (!pr.mergeSha) {
        await condition(() => prEvents.length > 0, PR_POLL_MS);
        const status = await gitops.getPullRequestStatus({ model, version, policy: g });
        const event = prEvents.splice(0).find((e) => e.action === 'merged');
        if (status?.state === 'merged' || event) {
          pr.mergeSha = status?.mergeSha ?? event?.mergeSha;
          pr.mergedBy = status?.mergedBy ?? event?.by;
        } else if (status?.state === 'closed') {
          return { ok: false, reason: `pull request closed by ${status.closedBy ?? 'someone'} instead of merged` };
        }
      }
    }
  }
  const tags: Record<string, string> = { [TAG.prUrl]: pr.url, [TAG.mergeSha]: pr.mergeSha ?? '' };
  if (pr.storageUri) tags[TAG.storageUri] = pr.storageUri;
  if (!k) return { ok: true, tags };

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
  const revert = await gitops.openRevertPullRequest({ model, version, policy: g, mergeSha: pr.mergeSha!, reason: rollout.reason });
  note('modelgate', 'opened revert pull request', revert.url);
  let revertSha: string | undefined;
  if (k.rollback === 'auto') {
    const merged = await gitops.mergeRevertPullRequest({ model, version, policy: g });
    revertSha = merged.mergeSha;
    note('modelgate', 'merged revert', merged.mergeSha);
  } else {
    details(`rollout failed; revert ${revert.url} awaits a person's merge`);
    // The revert is merged when the base branch serves the previous storage URI again.
    for (;;) {
      const serving = await gitops.readServingManifest({ policy: g });
      if (serving.storageUri === pr.previousStorageUri) {
        revertSha = serving.commit;
        break;
      }
      await condition(() => prEvents.length > 0, PR_POLL_MS);
      prEvents.splice(0);
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
