/**
 * GitOps activities of the lifecycle: open (or adopt) the promotion PR, read its status, merge or close it,
 * open and merge a revert, and read what the base branch serves. Every one is keyed by (model, version):
 * the branch name is derived from it and each provider operation adopts what an earlier attempt did, so
 * retries and worker crashes never create a second branch, commit, PR or merge.
 */
import { ApplicationFailure } from '@temporalio/common';
import { ManifestError, permanent, GitopsFailureTypes as T } from '../gitops/errors.js';
import { applyServingFields, mapStorageUri, readServingFields, type ManifestTarget, type ServingFields } from '../gitops/manifest.js';
import {
  changeCommitMessage,
  parseMarker,
  promotionBody,
  promotionTitle,
  revertBody,
  revertTitle,
  type GitopsLinks,
} from '../gitops/pr-text.js';
import { promotionBranch, revertBranch, type GitopsProvider, type MergeOutcome, type PullRequestStatus } from '../gitops/provider.js';
import type { MlflowRegistry } from '../mlflow/types.js';
import type { GitopsPolicy } from '../policy/types.js';
import type { EvaluationResult, PullRequestRef } from '../workflows/definitions.js';

export interface GitopsActivityDeps {
  providerFor: (policy: GitopsPolicy) => GitopsProvider;
  mlflow: Pick<MlflowRegistry, 'getDownloadUri' | 'getModelVersion' | 'getRun'>;
  links: GitopsLinks;
}

export interface PromotionKey {
  model: string;
  version: number;
  policy: GitopsPolicy;
}

export interface OpenPromotionInput extends PromotionKey {
  workflowId: string;
  evaluation?: EvaluationResult;
}

export interface PullRequestStatusInput extends PromotionKey {
  /** The revert PR (`…/v<version>-revert`) instead of the promotion PR. */
  revert?: boolean;
}

export interface MergePromotionInput extends PromotionKey {
  /** The head the approvals were given for; a different head fails with PullRequestHeadChanged. */
  expectedHeadSha?: string;
  approvers: string[];
}

export interface ClosePromotionInput extends PromotionKey {
  reason: string;
  /** Who rejected (recorded in the close comment / `Closed-by:` trailer). */
  by?: string;
}

export interface OpenRevertInput extends PromotionKey {
  mergeSha: string;
  reason: string;
  workflowId?: string;
}

export interface ReadServingManifestInput {
  policy: GitopsPolicy;
  /** Branch or commit; defaults to the policy's base branch. */
  ref?: string;
}

export interface ServingManifest extends ServingFields {
  /** The commit the manifest was read from. */
  commit: string;
}

export type { MergeOutcome, PullRequestStatus };

export function createGitopsActivities(deps: GitopsActivityDeps) {
  const target = (p: GitopsPolicy): ManifestTarget => ({ namespace: p.namespace, name: p.inferenceService });

  async function openPromotionPullRequest(input: OpenPromotionInput): Promise<PullRequestRef> {
    const { model, version, policy } = input;
    const provider = deps.providerFor(policy);
    const branch = promotionBranch(model, version);
    // A retry after the PR exists needs no MLflow calls.
    const existing = await provider.getPullRequest(branch, policy.baseBranch);
    if (existing) return adopt(provider, policy, existing);

    const mv = await deps.mlflow.getModelVersion(model, version);
    const downloadUri = await deps.mlflow.getDownloadUri(model, version);
    const storageUri = mapStorageUri(downloadUri, policy.storageUriPrefixMap);
    if (storageUri.startsWith('models:/')) {
      throw permanent(
        T.StorageUriUnresolvable,
        `MLflow gave ${downloadUri} as the download location of ${model} v${version}; KServe cannot download models:/ URIs (add a storageUriPrefixMap entry or fix the artifact store)`,
      );
    }
    const runId = mv.run_id || undefined;
    const experimentId = runId ? await experimentOf(runId) : undefined;

    let previousStorageUri: string | undefined;
    let rendered = false;
    const status = await provider.openPromotion({
      branch,
      baseBranch: policy.baseBranch,
      path: policy.manifestPath,
      render: (current) => {
        const previous = manifest(() => readServingFields(current, target(policy), policy.manifestPath));
        previousStorageUri = previous.storageUri;
        rendered = true;
        const content = manifest(() =>
          applyServingFields(current, target(policy), { storageUri, model, version: String(version), runId }, policy.manifestPath),
        );
        const title = promotionTitle(model, version);
        const body = promotionBody({
          model,
          version,
          runId,
          experimentId,
          storageUri,
          previous,
          evaluation: input.evaluation,
          workflowId: input.workflowId,
          manifestPath: policy.manifestPath,
          inferenceService: target(policy),
          links: deps.links,
        });
        const commitMessage = changeCommitMessage(title, [
          `Set spec.predictor.model.storageUri of ${policy.namespace}/${policy.inferenceService} to ${storageUri}.`,
          '',
          `Modelgate-Model: ${model}`,
          `Modelgate-Version: ${version}`,
          ...(runId ? [`Modelgate-Run: ${runId}`] : []),
        ]);
        return { content, title, body, commitMessage };
      },
    });
    // Another worker may have won the race to create it: then its PR text is the truth.
    return rendered ? { ...toRef(status), storageUri, previousStorageUri } : adopt(provider, policy, status);
  }

  async function getPullRequestStatus(input: PullRequestStatusInput): Promise<PullRequestStatus | null> {
    const branch = input.revert ? revertBranch(input.model, input.version) : promotionBranch(input.model, input.version);
    return deps.providerFor(input.policy).getPullRequest(branch, input.policy.baseBranch);
  }

  async function mergePromotionPullRequest(input: MergePromotionInput): Promise<MergeOutcome> {
    return deps.providerFor(input.policy).merge({
      branch: promotionBranch(input.model, input.version),
      baseBranch: input.policy.baseBranch,
      expectedHeadSha: input.expectedHeadSha,
      method: input.policy.mergeMethod,
      approvedBy: input.approvers,
      title: promotionTitle(input.model, input.version),
    });
  }

  async function closePromotionPullRequest(input: ClosePromotionInput): Promise<PullRequestStatus | null> {
    return deps.providerFor(input.policy).close({
      branch: promotionBranch(input.model, input.version),
      baseBranch: input.policy.baseBranch,
      reason: input.reason,
      by: input.by,
    });
  }

  async function openRevertPullRequest(input: OpenRevertInput): Promise<PullRequestRef> {
    const { model, version, policy } = input;
    const provider = deps.providerFor(policy);
    const branch = revertBranch(model, version);
    let uris: { storageUri?: string; previousStorageUri?: string } | undefined;
    const status = await provider.openRevert({
      branch,
      baseBranch: policy.baseBranch,
      path: policy.manifestPath,
      mergeSha: input.mergeSha,
      render: (current, beforeMerge) => {
        const file = policy.manifestPath;
        const now = manifest(() => readServingFields(current, target(policy), file));
        if (now.version !== undefined && now.version !== String(version)) {
          throw permanent(T.RevertNotApplicable, `${file} on ${policy.baseBranch} serves ${model} v${now.version}, not v${version}: there is nothing to revert`);
        }
        const restored = manifest(() => readServingFields(beforeMerge ?? '', target(policy), file));
        if (!restored.storageUri) throw permanent(T.RevertNotApplicable, `${file} had no storageUri before ${input.mergeSha}`);
        // When nothing else changed since the merge, restore the old file byte for byte; otherwise restore
        // only the serving fields so later, unrelated edits survive.
        const merged = now.storageUri
          ? manifest(() => applyServingFields(beforeMerge!, target(policy), { ...now, storageUri: now.storageUri! }, file))
          : undefined;
        const content =
          merged === current
            ? beforeMerge!
            : manifest(() => applyServingFields(current, target(policy), { ...restored, storageUri: restored.storageUri! }, file));
        uris = { storageUri: restored.storageUri, previousStorageUri: now.storageUri };
        const title = revertTitle(model, version);
        const body = revertBody({
          model,
          version,
          mergeSha: input.mergeSha,
          reason: input.reason,
          restored,
          replaced: now.storageUri,
          workflowId: input.workflowId,
          manifestPath: file,
          inferenceService: target(policy),
          links: deps.links,
        });
        const commitMessage = changeCommitMessage(title, [`This reverts commit ${input.mergeSha}.`, '', `Reason: ${input.reason.replace(/[\r\n]+/g, ' ')}`]);
        return { content, title, body, commitMessage };
      },
    });
    return uris ? { ...toRef(status), ...uris } : adopt(provider, policy, status);
  }

  async function mergeRevertPullRequest(input: PromotionKey): Promise<MergeOutcome> {
    return deps.providerFor(input.policy).merge({
      branch: revertBranch(input.model, input.version),
      baseBranch: input.policy.baseBranch,
      method: input.policy.mergeMethod,
      approvedBy: [],
      title: revertTitle(input.model, input.version),
    });
  }

  async function readServingManifest(input: ReadServingManifestInput): Promise<ServingManifest> {
    const { policy } = input;
    const ref = input.ref ?? policy.baseBranch;
    const file = await deps.providerFor(policy).readFile(policy.manifestPath, ref);
    if (!file) throw permanent(T.ManifestNotFound, `${policy.manifestPath} does not exist at ${ref} of ${policy.repo}`);
    return { ...manifest(() => readServingFields(file.content, target(policy), policy.manifestPath)), commit: file.commit };
  }

  /** The ref of a PR made earlier: storage URIs from the PR's marker, else from the manifest at its head. */
  async function adopt(provider: GitopsProvider, policy: GitopsPolicy, status: PullRequestStatus): Promise<PullRequestRef> {
    const marker = parseMarker(status.body);
    if (marker) return { ...toRef(status), storageUri: marker.storageUri, previousStorageUri: marker.previousStorageUri };
    const file = status.headSha ? await provider.readFile(policy.manifestPath, status.headSha) : null;
    const fields = file ? manifest(() => readServingFields(file.content, target(policy), policy.manifestPath)) : undefined;
    return { ...toRef(status), storageUri: fields?.storageUri };
  }

  async function experimentOf(runId: string): Promise<string | undefined> {
    try {
      return (await deps.mlflow.getRun(runId)).experiment_id;
    } catch (err) {
      // Only the link needs it; a deleted run must not block the promotion.
      if (err instanceof ApplicationFailure && err.nonRetryable) return undefined;
      throw err;
    }
  }

  return {
    openPromotionPullRequest,
    getPullRequestStatus,
    mergePromotionPullRequest,
    closePromotionPullRequest,
    openRevertPullRequest,
    mergeRevertPullRequest,
    readServingManifest,
  };
}

export type GitopsActivities = ReturnType<typeof createGitopsActivities>;

function toRef(s: PullRequestStatus): PullRequestRef {
  return {
    provider: s.provider,
    id: s.number !== undefined ? String(s.number) : s.branch,
    url: s.url,
    branch: s.branch,
    headSha: s.headSha,
    ...(s.mergeSha ? { mergeSha: s.mergeSha } : {}),
    ...(s.mergedBy ? { mergedBy: s.mergedBy } : {}),
  };
}

function manifest<R>(fn: () => R): R {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ManifestError) throw permanent(T.ManifestInvalid, err.message);
    throw err;
  }
}
