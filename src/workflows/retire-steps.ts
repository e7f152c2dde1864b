/**
 * Retiring a Production version in GitOps mode, workflow side: a retire pull request takes the InferenceService
 * off the version — back to the previous Production version (`deployment.gitops.onRetire: previous`, the
 * default) or removed (`remove`) — modelgate merges it (the attested retire decision is its approval), waits
 * until KServe serves the previous version or the InferenceService is gone, and only then may the lifecycle
 * archive the version. Any failure leaves the version in Production (a merged retire whose rollout failed is
 * reverted first), says why in the timeline, and a retire may be asked again (a new attempt, a new branch).
 */
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import { lifecycleWorkflowId, type LifecycleState, type PullRequestEvent, type RetirementRecord } from './definitions.js';
import { deployment, gitops, isFailureOfType, registry } from './activities.js';
import { manualWaitSleep, PR_POLL_MS, runOf, type WaitBounds } from './gitops-steps.js';
import { POLL_MIN_MS } from './waits.js';
import { TAG } from '../mlflow/tags.js';

type Note = (actor: string, action: string, detail?: string) => void;

export type RetireResult = { ok: true; tags: Record<string, string> } | { ok: false; reason: string };

/**
 * One retire attempt. On `ok` the InferenceService no longer serves the version, the previous version (if
 * any) is Production again in MLflow and `tags` are on the retired version; the caller archives it. On
 * failure the phase is `production` again and the version still serves.
 */
export async function retireThroughGitops(
  state: LifecycleState,
  note: Note,
  details: (text: string) => void,
  prEvents: PullRequestEvent[],
  request: { by: string; reason?: string },
  /** The Production lock grant the retire runs under (lifecycles started after the fenced lock). */
  fence?: { token: number; until: number },
  /** Lifecycles started with PATCHES.boundedWaits: the manual revert wait has the policy's deadline. */
  bounds?: WaitBounds,
): Promise<RetireResult> {
  const { model, version, workflowId } = state;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve;
  const onRetire = g.onRetire ?? 'previous';
  const toVersion = onRetire === 'previous' ? state.previousProductionVersion : undefined;
  const r: RetirementRecord = {
    attempt: (state.retirement?.attempt ?? 0) + 1,
    by: request.by,
    ...(request.reason ? { reason: request.reason } : {}),
    onRetire,
    ...(toVersion !== undefined ? { toVersion } : {}),
  };
  state.retirement = r;
  const key = { model, version, policy: g, attempt: r.attempt };
  state.phase = 'deploying';
  const fail = (reason: string): RetireResult => {
    r.failure = reason;
    state.phase = 'production';
    note('modelgate', 'retire failed', `${reason}; v${version} stays in Production and the retire may be asked again`);
    details(`serving in Production; retire attempt ${r.attempt} failed: ${reason}`);
    return { ok: false, reason };
  };

  if (onRetire === 'previous' && toVersion === undefined) {
    // Decided: never fall back to removing the InferenceService unasked; taking serving down must be the policy's word.
    return fail(`v${version} has no previous Production version to go back to (deployment.gitops.onRetire: previous); set onRetire: remove to take the InferenceService down instead`);
  }

  // ---- open and merge the retire PR ----
  details(onRetire === 'previous' ? `retiring: opening the pull request back to v${toVersion}` : 'retiring: opening the pull request that removes the InferenceService');
  let pr;
  try {
    pr = await gitops.openRetirePullRequest({ ...runOf(state), ...key, workflowId, retiredBy: request.by, reason: request.reason, onRetire, previousVersion: toVersion });
  } catch (err) {
    const why = permanentMessage(err);
    if (why === undefined) throw err;
    return fail(`the retire pull request could not be opened: ${why}`);
  }
  r.pullRequest = pr;
  note('modelgate', 'opened retire pull request', pr.url);
  if (!pr.mergeSha) {
    try {
      const merged = await gitops.mergeRetirePullRequest({ ...runOf(state), ...key, expectedHeadSha: pr.headSha, retiredBy: request.by, previousVersion: toVersion });
      pr.mergeSha = merged.mergeSha;
      note('modelgate', 'merged retire pull request', merged.mergeSha);
    } catch (err) {
      const why = permanentMessage(err);
      if (why === undefined) throw err;
      // Not merged: nothing changed on the cluster. Close it so the next attempt starts clean.
      if (!isFailureOfType(err, 'PullRequestClosed')) {
        await gitops.closeRetirePullRequest({ ...runOf(state), ...key, reason: `retire attempt ${r.attempt} failed: ${why}` });
      }
      return fail(`the retire pull request ${pr.url} was not merged: ${why}`);
    }
  }
  const tags: Record<string, string> = { [TAG.retirePrUrl]: pr.url, [TAG.retireMergeSha]: pr.mergeSha };

  // ---- verify on the cluster ----
  if (k) {
    details(`retire merged ${pr.mergeSha.slice(0, 10)}; waiting until ${toVersion !== undefined ? `KServe serves v${toVersion}` : 'the InferenceService is gone'}`);
    const startedAt = new Date().toISOString();
    const common = { namespace: g.namespace, inferenceService: g.inferenceService, mergeSha: pr.mergeSha, kserve: k, startedAt };
    const rollout =
      toVersion !== undefined
        ? await deployment.waitForRollback({ ...common, storageUri: pr.storageUri! })
        : await deployment.waitForRemoval(common);
    if (rollout.outcome === 'failed') {
      note('kserve', 'retire rollout failed', rollout.reason);
      const undone = await undoRetire(state, note, details, prEvents, r, rollout.reason, bounds);
      if (undone === 'timed_out') {
        const why = `retire rollout failed (${rollout.reason}) and revert ${r.revertUrl} was not merged within ${g.manualRevertTimeoutMs! / 60_000} min (manual_revert_timed_out): a person must merge it`;
        await registry.tagVersion({ model, version, tags: { [TAG.reasons]: why.slice(0, 4000) } });
        return fail(why);
      }
      return fail(`retire rollout failed: ${rollout.reason}`);
    }
    note('kserve', toVersion !== undefined ? `v${toVersion} serving again` : 'InferenceService removed', rollout.revision);
  }

  // ---- MLflow: the previous version is Production again; the caller archives this one ----
  if (toVersion !== undefined) {
    await registry.enterProduction({
      model,
      version: toVersion,
      workflowId: lifecycleWorkflowId(model, toVersion),
      at: new Date().toISOString(),
      tags: { [TAG.reinstatedBy]: `retire of v${version} by ${request.by}`, ...(pr.storageUri ? { [TAG.storageUri]: pr.storageUri } : {}) },
      ...(fence ? { fence, previousVersion: version } : {}),
    });
    note('modelgate', `version ${toVersion} is Production again`, `the InferenceService serves it (${pr.url})`);
  }
  await registry.tagVersion({ model, version, tags });
  return { ok: true, tags };
}

/** A merged retire whose rollout failed: revert it (as the policy's kserve.rollback says) and wait until the version serves again. */
async function undoRetire(
  state: LifecycleState,
  note: Note,
  details: (text: string) => void,
  prEvents: PullRequestEvent[],
  r: RetirementRecord,
  reason: string,
  bounds?: WaitBounds,
): Promise<'timed_out' | undefined> {
  const { model, version } = state;
  const g = state.policy!.deployment.gitops!;
  const k = state.policy!.deployment.kserve!;
  const pr = r.pullRequest!;
  details(`retire rollout failed (${reason}); reverting the retire`);
  const revert = await gitops.openRetireRevertPullRequest({
    ...runOf(state),
    model, version, policy: g, attempt: r.attempt, mergeSha: pr.mergeSha!, reason: `retire rollout failed: ${reason}`, workflowId: state.workflowId,
  });
  r.revertUrl = revert.url;
  note('modelgate', 'opened revert of the retire', revert.url);
  let revertSha: string | undefined;
  if (k.rollback === 'auto') {
    revertSha = (await gitops.mergeRevertPullRequest({ ...runOf(state), model, version, policy: g, retireAttempt: r.attempt })).mergeSha;
    note('modelgate', 'merged revert of the retire', revertSha);
  } else {
    details(`retire rollout failed; revert ${revert.url} awaits a person's merge`);
    const deadline = bounds && g.manualRevertTimeoutMs !== undefined ? Date.now() + g.manualRevertTimeoutMs : Number.POSITIVE_INFINITY;
    let pollMs = POLL_MIN_MS;
    let fired = false;
    for (;;) {
      const status = await gitops.getPullRequestStatus({ ...runOf(state), model, version, policy: g, retireAttempt: r.attempt, revert: true });
      if (status?.state === 'merged') {
        revertSha = status.mergeSha;
        break;
      }
      if (fired || (!bounds?.byTimer && Date.now() >= deadline)) {
        note('modelgate', 'manual revert timed out', `revert ${revert.url} of the retire was not merged before ${new Date(deadline).toISOString()}`);
        return 'timed_out';
      }
      ({ fired, pollMs } = await manualWaitSleep(prEvents, pollMs, deadline, bounds, PR_POLL_MS));
    }
    note(revertSha ? 'modelgate' : 'unknown', 'revert of the retire merged', revertSha);
  }
  const back = await deployment.waitForRollback({
    namespace: g.namespace,
    inferenceService: g.inferenceService,
    storageUri: pr.previousStorageUri!,
    mergeSha: revertSha,
    kserve: k,
    startedAt: new Date().toISOString(),
  });
  note('kserve', back.outcome === 'serving' ? `v${version} serving again` : `v${version} not serving`, back.outcome === 'failed' ? back.reason : undefined);
  return undefined;
}

/** The message of a non-retryable activity failure (a person must act); undefined for anything else. */
function permanentMessage(err: unknown): string | undefined {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable) return err.cause.message;
  return undefined;
}
