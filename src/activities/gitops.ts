/**
 * GitOps activities of the lifecycle: open (or adopt) the promotion PR, read its status, merge or close it,
 * open and merge a revert, and read what the base branch serves. Every one is keyed by (model, version):
 * the branch name is derived from it and each provider operation adopts what an earlier attempt did, so
 * retries and worker crashes never create a second branch, commit, PR or merge. Adoption is limited to what
 * modelgate opened: an HMAC marker (gitops/marker.ts) keyed with the workers' secret must verify against the
 * manifest at the PR head and the storage URI recomputed from MLflow; a branch or PR someone else created for
 * the (model, version) fails with ForeignPullRequest.
 */
import { maskUrlCredentials } from '../util/url-credentials.js';
import { ApplicationFailure } from '@temporalio/common';
import { applyCanaryPercent } from '../gitops/canary-manifest.js';
import { mergeSealer, requireMarkerSecret } from '../gitops/marker-key.js';
import { foreignPullRequest, ManifestError, permanent, GitopsFailureTypes as T } from '../gitops/errors.js';
import {
  applyServingFields,
  mapStorageUri,
  readServingFields,
  removeInferenceService,
  type ManifestTarget,
  type ServingFields,
} from '../gitops/manifest.js';
import {
  MIN_MARKER_SECRET_LENGTH,
  parseMarker,
  renderMarker,
  verifyMarker,
  verifyMergeSeal,
  type MarkerFacts,
  type MarkerKind,
} from '../gitops/marker.js';
import {
  changeCommitMessage,
  promotionBody,
  promotionTitle,
  retireBody,
  retireRevertBody,
  retireRevertTitle,
  retireTitle,
  revertBody,
  revertTitle,
  type GitopsLinks,
} from '../gitops/pr-text.js';
import {
  promotionBranch,
  retireBranch,
  retireRevertBranch,
  revertBranch,
  type GitopsProvider,
  type MergeOutcome,
  type PullRequestStatus,
} from '../gitops/provider.js';
import type { IdentityRef } from '../identity/types.js';
import type { MlflowRegistry } from '../mlflow/types.js';
import type { GitopsPolicy } from '../policy/types.js';
import type { EvaluationResult, PullRequestRef } from '../workflows/definitions.js';

export interface GitopsActivityDeps {
  providerFor: (policy: GitopsPolicy) => GitopsProvider;
  mlflow: Pick<MlflowRegistry, 'getDownloadUri' | 'getModelVersion' | 'getRun'>;
  links: GitopsLinks;
  /**
   * HMAC key of the markers that prove a branch/PR is modelgate's (MODELGATE_GITOPS_MARKER_SECRET; the same
   * on every worker, at least 16 characters). Opening and reverting fail with GitopsNotConfigured without it.
   */
  markerSecret: string;
  /** The directory: who a GitHub login is. Only the GitHub provider's merged_by is mapped; plain git never is. */
  identities?: { byGithubLogin(login: string): IdentityRef | undefined };
}

export interface PromotionKey {
  model: string;
  version: number;
  policy: GitopsPolicy;
  /** A later run of the version (rollback, again): its PRs get branches of their own. */
  run?: string;
}

export interface OpenPromotionInput extends PromotionKey {
  workflowId: string;
  evaluation?: EvaluationResult;
  /**
   * Progressive rollout: the first step's traffic percent, set as spec.predictor.canaryTrafficPercent in the
   * same change as the storageUri (KServe splits on that spec update; a later commit would be too late).
   */
  canaryPercent?: number;
}

export interface PullRequestStatusInput extends PromotionKey {
  /** The revert PR (`…/v<version>-revert`) instead of the promotion PR. */
  revert?: boolean;
  /** The PR of this retire attempt (`…/v<version>-retire-<n>`; with `revert`, its revert). */
  retireAttempt?: number;
}

export interface RetireKey extends PromotionKey {
  /** 1, 2, …: every retire attempt of the version has its own branch. */
  attempt: number;
}

export interface OpenRetireInput extends RetireKey {
  workflowId: string;
  /** The identity of the attested retire decision, and its reason: shown in the PR. */
  retiredBy: string;
  reason?: string;
  onRetire: 'previous' | 'remove';
  /** onRetire previous: the version the InferenceService goes back to. */
  previousVersion?: number;
}

export interface MergeRetireInput extends RetireKey {
  /** The head opened; a different head (someone pushed to the branch) fails with PullRequestHeadChanged. */
  expectedHeadSha?: string;
  retiredBy: string;
  previousVersion?: number;
}

export interface CloseRetireInput extends RetireKey {
  reason: string;
}

export interface OpenRetireRevertInput extends RetireKey {
  mergeSha: string;
  reason: string;
  workflowId?: string;
}

/** The retire PR; `storageUri` is what it points KServe at (undefined: removed), `previousStorageUri` the retired version's. */
export interface RetirePullRequestRef extends PullRequestRef {
  /** onRetire remove: the change deletes the manifest file (it held nothing but the InferenceService). */
  deletesFile?: boolean;
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
    const secret = markerSecret();
    const provider = deps.providerFor(policy);
    const branch = promotionBranch(model, version, input.run);
    // Never from PR text: the storage URI always comes from MLflow, also when adopting an earlier attempt's PR.
    const storageUri = await storageUriOf(model, version, policy);
    const existing = await provider.getPullRequest(branch, policy.baseBranch);
    if (existing) return adopt(provider, policy, existing, { kind: 'promotion', model, version, storageUri });

    const mv = await deps.mlflow.getModelVersion(model, version);
    const runId = mv.run_id || undefined;
    const experimentId = runId ? await experimentOf(runId) : undefined;
    const facts = (content: string, previousStorageUri?: string): MarkerFacts => ({
      kind: 'promotion',
      branch,
      baseBranch: policy.baseBranch,
      model,
      version,
      manifestPath: policy.manifestPath,
      content,
      storageUri,
      previousStorageUri,
    });

    const status = await provider.openPromotion({
      branch,
      baseBranch: policy.baseBranch,
      path: policy.manifestPath,
      render: (current) => {
        const previous = manifest(() => readServingFields(current, target(policy), policy.manifestPath));
        const served = manifest(() =>
          applyServingFields(current, target(policy), { storageUri, model, version: String(version), runId }, policy.manifestPath),
        );
        const canary = input.canaryPercent;
        const content = canary === undefined ? served : manifest(() => applyCanaryPercent(served, target(policy), canary, policy.manifestPath));
        const marker = renderMarker(secret, facts(content, previous.storageUri));
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
          marker,
        });
        const commitMessage = changeCommitMessage(
          title,
          [
            `Set spec.predictor.model.storageUri of ${policy.namespace}/${policy.inferenceService} to ${storageUri}.`,
            ...(canary !== undefined && canary < 100 ? [`Canary: ${canary}% of the traffic to the new revision (spec.predictor.canaryTrafficPercent).`] : []),
            '',
            `Modelgate-Model: ${model}`,
            `Modelgate-Version: ${version}`,
            ...(runId ? [`Modelgate-Run: ${runId}`] : []),
          ],
          marker,
        );
        return { content, title, body, commitMessage };
      },
      isOwnChange: (c) => c.content !== undefined && verifyMarker(secret, parseMarker(c.message, branch), facts(c.content)),
    });
    // Also what this call just created is read back and checked: another worker (or a person) may have won
    // the race to create the branch or the PR.
    return adopt(provider, policy, status, { kind: 'promotion', model, version, storageUri });
  }

  async function getPullRequestStatus(input: PullRequestStatusInput): Promise<PullRequestStatus | null> {
    const { model, version, retireAttempt: n } = input;
    const branch =
      n !== undefined
        ? input.revert ? retireRevertBranch(model, version, n, input.run) : retireBranch(model, version, n, input.run)
        : input.revert ? revertBranch(model, version, input.run) : promotionBranch(model, version, input.run);
    const provider = deps.providerFor(input.policy);
    return interpret(provider, branch, input.policy.baseBranch, await provider.getPullRequest(branch, input.policy.baseBranch));
  }

  async function mergePromotionPullRequest(input: MergePromotionInput): Promise<MergeOutcome> {
    const provider = deps.providerFor(input.policy);
    const branch = promotionBranch(input.model, input.version, input.run);
    const outcome = await provider.merge({
      branch,
      baseBranch: input.policy.baseBranch,
      expectedHeadSha: input.expectedHeadSha,
      method: input.policy.mergeMethod,
      approvedBy: input.approvers,
      title: promotionTitle(input.model, input.version),
      seal: mergeSealer(provider, markerSecret, branch, input.policy.baseBranch),
    });
    return interpret(provider, branch, input.policy.baseBranch, outcome);
  }

  async function closePromotionPullRequest(input: ClosePromotionInput): Promise<PullRequestStatus | null> {
    const provider = deps.providerFor(input.policy);
    const branch = promotionBranch(input.model, input.version, input.run);
    const status = await provider.close({ branch, baseBranch: input.policy.baseBranch, reason: input.reason, by: input.by });
    return interpret(provider, branch, input.policy.baseBranch, status);
  }

  async function openRevertPullRequest(input: OpenRevertInput): Promise<PullRequestRef> {
    const { model, version, policy } = input;
    const secret = markerSecret();
    const provider = deps.providerFor(policy);
    const branch = revertBranch(model, version, input.run);
    const file = policy.manifestPath;
    const facts = (content: string, storageUri: string, previousStorageUri?: string): MarkerFacts => ({
      kind: 'revert',
      branch,
      baseBranch: policy.baseBranch,
      model,
      version,
      manifestPath: file,
      content,
      storageUri,
      previousStorageUri,
      mergeSha: input.mergeSha,
    });
    const status = await provider.openRevert({
      branch,
      baseBranch: policy.baseBranch,
      path: file,
      mergeSha: input.mergeSha,
      render: (current, beforeMerge) => {
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
        const marker = renderMarker(secret, facts(content, restored.storageUri, now.storageUri));
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
          marker,
        });
        const commitMessage = changeCommitMessage(
          title,
          [`This reverts commit ${input.mergeSha}.`, '', `Reason: ${input.reason.replace(/[\r\n]+/g, ' ')}`],
          marker,
        );
        return { content, title, body, commitMessage };
      },
      isOwnChange: (c) => {
        const restored = c.content !== undefined ? servingFieldsOrNone(c.content, policy) : undefined;
        return !!restored?.storageUri && verifyMarker(secret, parseMarker(c.message, branch), facts(c.content!, restored.storageUri));
      },
    });
    return adopt(provider, policy, status, { kind: 'revert', model, version, mergeSha: input.mergeSha });
  }

  async function mergeRevertPullRequest(input: PromotionKey & { retireAttempt?: number }): Promise<MergeOutcome> {
    const provider = deps.providerFor(input.policy);
    const n = input.retireAttempt;
    const branch = n !== undefined ? retireRevertBranch(input.model, input.version, n, input.run) : revertBranch(input.model, input.version, input.run);
    const outcome = await provider.merge({
      branch,
      baseBranch: input.policy.baseBranch,
      method: input.policy.mergeMethod,
      approvedBy: [],
      title: n !== undefined ? retireRevertTitle(input.model, input.version) : revertTitle(input.model, input.version),
      seal: mergeSealer(provider, markerSecret, branch, input.policy.baseBranch),
    });
    return interpret(provider, branch, input.policy.baseBranch, outcome);
  }

  /**
   * The retire PR of one attempt: the InferenceService goes back to `previousVersion` (its storage URI and run
   * recomputed from MLflow, never read from PR text or the manifest) or is removed. The base must still serve
   * the retired version (RetireNotApplicable otherwise: a retire undoes nothing else). Adopted on retry like a
   * promotion PR: only with a marker that verifies against the manifest (or its absence) at the head.
   */
  async function openRetirePullRequest(input: OpenRetireInput): Promise<RetirePullRequestRef> {
    const { model, version, policy } = input;
    const secret = markerSecret();
    const provider = deps.providerFor(policy);
    const branch = retireBranch(model, version, input.attempt, input.run);
    const file = policy.manifestPath;
    if (input.onRetire === 'previous' && input.previousVersion === undefined) {
      throw permanent(T.RetireNotApplicable, `${model} v${version} has no previous Production version to go back to (onRetire: previous)`);
    }
    const retiredUri = await storageUriOf(model, version, policy);
    const restores =
      input.onRetire === 'previous'
        ? {
            version: input.previousVersion!,
            storageUri: await storageUriOf(model, input.previousVersion!, policy),
            runId: (await deps.mlflow.getModelVersion(model, input.previousVersion!)).run_id || undefined,
          }
        : undefined;
    const want = restores?.storageUri ?? '';
    const facts = (content: string): MarkerFacts => ({
      kind: 'retire',
      branch,
      baseBranch: policy.baseBranch,
      model,
      version,
      manifestPath: file,
      content,
      storageUri: want,
      previousStorageUri: retiredUri,
    });
    let deletesFile = false;
    const existing = await provider.getPullRequest(branch, policy.baseBranch);
    const status =
      existing ??
      (await provider.openPromotion({
        branch,
        baseBranch: policy.baseBranch,
        path: file,
        render: (current) => {
          const now = manifest(() => readServingFields(current, target(policy), file));
          if (now.storageUri !== retiredUri) {
            throw permanent(
              T.RetireNotApplicable,
              `${file} on ${policy.baseBranch} serves ${now.storageUri ?? 'nothing'}${now.version ? ` (v${now.version})` : ''}, not ${model} v${version} (${retiredUri}): there is nothing to retire there`,
            );
          }
          const content = restores
            ? manifest(() =>
                applyServingFields(current, target(policy), { storageUri: restores.storageUri, model, version: String(restores.version), runId: restores.runId }, file),
              )
            : manifest(() => removeInferenceService(current, target(policy), file));
          deletesFile = content === null;
          const marker = renderMarker(secret, facts(content ?? ''));
          const title = retireTitle(model, version, restores?.version);
          const body = retireBody({
            model,
            version,
            retiredBy: input.retiredBy,
            reason: input.reason,
            replaced: now,
            restores,
            deletesFile,
            workflowId: input.workflowId,
            manifestPath: file,
            inferenceService: target(policy),
            links: deps.links,
            marker,
          });
          const what = restores
            ? `Set spec.predictor.model.storageUri of ${policy.namespace}/${policy.inferenceService} back to ${restores.storageUri} (v${restores.version}).`
            : `Remove ${policy.namespace}/${policy.inferenceService}.`;
          const commitMessage = changeCommitMessage(
            title,
            [what, '', `Modelgate-Model: ${model}`, `Modelgate-Version: ${version}`, `Modelgate-Retired-by: ${input.retiredBy.replace(/[\r\n]+/g, ' ')}`],
            marker,
          );
          return { content, title, body, commitMessage };
        },
        isOwnChange: (c) => verifyMarker(secret, parseMarker(c.message, branch), facts(c.content ?? '')),
      }));
    // What this call found or created is read back and checked, as for a promotion.
    const marker = parseMarker(status.body, branch);
    if (!marker) throw foreignPullRequest(branch);
    if (status.baseBranch !== policy.baseBranch) throw foreignPullRequest(branch, `its pull request targets ${status.baseBranch}, not ${policy.baseBranch}`);
    const head = status.headSha ? await provider.readFile(file, status.headSha) : null;
    const fields = head ? servingFieldsOrNone(head.content, policy) : undefined;
    if ((fields?.storageUri ?? '') !== want) {
      throw foreignPullRequest(branch, `its manifest at ${short(status.headSha)} points at ${fields?.storageUri ?? 'nothing'}, not ${want || 'nothing (removed)'}`);
    }
    if (!verifyMarker(secret, marker, facts(head?.content ?? ''))) {
      throw foreignPullRequest(branch, `was not opened by modelgate (no valid marker for the manifest at ${short(status.headSha)})`);
    }
    return {
      ...toRef(status),
      ...(want ? { storageUri: want } : {}),
      previousStorageUri: retiredUri,
      ...(head === null || deletesFile ? { deletesFile: true } : {}),
    };
  }

  async function mergeRetirePullRequest(input: MergeRetireInput): Promise<MergeOutcome> {
    const provider = deps.providerFor(input.policy);
    const branch = retireBranch(input.model, input.version, input.attempt, input.run);
    const outcome = await provider.merge({
      branch,
      baseBranch: input.policy.baseBranch,
      expectedHeadSha: input.expectedHeadSha,
      method: input.policy.mergeMethod,
      // The retire decision is the approval of this change.
      approvedBy: [input.retiredBy],
      title: retireTitle(input.model, input.version, input.previousVersion),
      seal: mergeSealer(provider, markerSecret, branch, input.policy.baseBranch),
    });
    return interpret(provider, branch, input.policy.baseBranch, outcome);
  }

  async function closeRetirePullRequest(input: CloseRetireInput): Promise<PullRequestStatus | null> {
    const provider = deps.providerFor(input.policy);
    const branch = retireBranch(input.model, input.version, input.attempt, input.run);
    return interpret(provider, branch, input.policy.baseBranch, await provider.close({ branch, baseBranch: input.policy.baseBranch, reason: input.reason }));
  }

  /**
   * Undo a merged retire whose rollout failed: the file as it was before the retire's merge when nothing else
   * changed since (also when the retire deleted it), else only the serving fields of the retired version.
   */
  async function openRetireRevertPullRequest(input: OpenRetireRevertInput): Promise<PullRequestRef> {
    const { model, version, policy } = input;
    const secret = markerSecret();
    const provider = deps.providerFor(policy);
    const branch = retireRevertBranch(model, version, input.attempt, input.run);
    const file = policy.manifestPath;
    const facts = (content: string, storageUri: string, previousStorageUri?: string): MarkerFacts => ({
      kind: 'revert',
      branch,
      baseBranch: policy.baseBranch,
      model,
      version,
      manifestPath: file,
      content,
      storageUri,
      previousStorageUri,
      mergeSha: input.mergeSha,
    });
    const status = await provider.openRevert({
      branch,
      baseBranch: policy.baseBranch,
      path: file,
      mergeSha: input.mergeSha,
      mayBeMissing: true,
      render: (current, beforeMerge) => {
        const restored = manifest(() => readServingFields(beforeMerge ?? '', target(policy), file));
        if (!restored.storageUri) throw permanent(T.RevertNotApplicable, `${file} had no storageUri before ${input.mergeSha}`);
        const now = current === '' ? undefined : servingFieldsOrNone(current, policy);
        let content: string;
        if (current === '') content = beforeMerge!;
        else if (!now) {
          if (current !== manifest(() => removeInferenceService(beforeMerge!, target(policy), file))) {
            throw permanent(T.RevertNotApplicable, `${file} changed on ${policy.baseBranch} since the retire ${input.mergeSha}: restore ${policy.inferenceService} by hand`);
          }
          content = beforeMerge!;
        } else {
          const merged = now.storageUri
            ? manifest(() => applyServingFields(beforeMerge!, target(policy), { ...now, storageUri: now.storageUri! }, file))
            : undefined;
          content =
            merged === current
              ? beforeMerge!
              : manifest(() => applyServingFields(current, target(policy), { ...restored, storageUri: restored.storageUri! }, file));
        }
        const marker = renderMarker(secret, facts(content, restored.storageUri, now?.storageUri));
        const title = retireRevertTitle(model, version);
        const body = retireRevertBody({
          model,
          version,
          mergeSha: input.mergeSha,
          reason: input.reason,
          restored,
          workflowId: input.workflowId,
          manifestPath: file,
          inferenceService: target(policy),
          links: deps.links,
          marker,
        });
        const commitMessage = changeCommitMessage(
          title,
          [`This reverts commit ${input.mergeSha}.`, '', `Reason: ${input.reason.replace(/[\r\n]+/g, ' ')}`],
          marker,
        );
        return { content, title, body, commitMessage };
      },
      isOwnChange: (c) => {
        const restored = c.content !== undefined ? servingFieldsOrNone(c.content, policy) : undefined;
        return !!restored?.storageUri && verifyMarker(secret, parseMarker(c.message, branch), facts(c.content!, restored.storageUri));
      },
    });
    return adopt(provider, policy, status, { kind: 'revert', model, version, mergeSha: input.mergeSha });
  }

  /** Plain git: modelgate's merges carry a seal; without the secret it does not merge at all. */

  async function readServingManifest(input: ReadServingManifestInput): Promise<ServingManifest> {
    const { policy } = input;
    const ref = input.ref ?? policy.baseBranch;
    const file = await deps.providerFor(policy).readFile(policy.manifestPath, ref);
    if (!file) throw permanent(T.ManifestNotFound, `${policy.manifestPath} does not exist at ${ref} of ${policy.repo}`);
    return { ...manifest(() => readServingFields(file.content, target(policy), policy.manifestPath)), commit: file.commit };
  }

  /**
   * The ref of a branch/PR for (model, version), only when it is modelgate's own: its marker must verify
   * against the manifest at its head and the storage URI modelgate computed (a promotion: from MLflow; a
   * revert: the one its authenticated manifest restores). Anything else is ForeignPullRequest; nothing of a
   * foreign or edited PR is adopted.
   */
  async function adopt(
    provider: GitopsProvider,
    policy: GitopsPolicy,
    status: PullRequestStatus,
    want: { kind: MarkerKind; model: string; version: number; storageUri?: string; mergeSha?: string },
  ): Promise<PullRequestRef> {
    const secret = markerSecret();
    const { branch } = status;
    const marker = parseMarker(status.body, branch);
    if (!marker) throw foreignPullRequest(branch);
    if (status.baseBranch !== policy.baseBranch) throw foreignPullRequest(branch, `its pull request targets ${status.baseBranch}, not ${policy.baseBranch}`);
    const file = status.headSha ? await provider.readFile(policy.manifestPath, status.headSha) : null;
    if (!file) throw foreignPullRequest(branch, `${policy.manifestPath} does not exist at its head ${short(status.headSha)}`);
    const fields = servingFieldsOrNone(file.content, policy);
    const storageUri = want.storageUri ?? fields?.storageUri;
    if (!fields?.storageUri || fields.storageUri !== storageUri) {
      const says = want.storageUri ? `${want.storageUri} from MLflow` : 'a storage URI';
      throw foreignPullRequest(branch, `its manifest at ${short(status.headSha)} points at ${fields?.storageUri ?? 'nothing'}, not ${says}`);
    }
    const facts = {
      kind: want.kind,
      branch,
      baseBranch: policy.baseBranch,
      model: want.model,
      version: want.version,
      manifestPath: policy.manifestPath,
      content: file.content,
      storageUri,
      mergeSha: want.mergeSha,
    };
    if (!verifyMarker(secret, marker, facts)) {
      throw foreignPullRequest(branch, `was not opened by modelgate (no valid marker for the manifest at ${short(status.headSha)})`);
    }
    return { ...toRef(status), storageUri, previousStorageUri: marker.previousStorageUri };
  }

  const markerSecret = (): string => requireMarkerSecret(deps.markerSecret, 'pull requests');

  async function storageUriOf(model: string, version: number, policy: GitopsPolicy): Promise<string> {
    const downloadUri = await deps.mlflow.getDownloadUri(model, version);
    const storageUri = mapStorageUri(downloadUri, policy.storageUriPrefixMap);
    if (storageUri.startsWith('models:/')) {
      throw permanent(
        T.StorageUriUnresolvable,
        `MLflow gave ${downloadUri} as the download location of ${model} v${version}; KServe cannot download models:/ URIs (add a storageUriPrefixMap entry or fix the artifact store)`,
      );
    }
    return storageUri;
  }

  /**
   * Who merged, as far as it can be trusted: for GitHub the merger's directory identity (merged_by.login from
   * the API, through `identities`); for plain git whether the merge is modelgate's own (a valid seal) — a
   * committer name is only text and never becomes an identity.
   */
  function interpret<S extends PullRequestStatus | MergeOutcome>(provider: GitopsProvider, branch: string, baseBranch: string, s: S): S;
  function interpret<S extends PullRequestStatus | MergeOutcome>(provider: GitopsProvider, branch: string, baseBranch: string, s: S | null): S | null;
  function interpret<S extends PullRequestStatus | MergeOutcome>(provider: GitopsProvider, branch: string, baseBranch: string, s: S | null): S | null {
    if (!s) return s;
    const { mergedByIdentity: _identity, mergedByModelgate: _own, mergeSeal, ...rest } = s;
    const merged = 'state' in s ? s.state === 'merged' : true;
    if (!merged) return rest as S;
    if (provider.kind === 'git') {
      const key = sealKey();
      const own =
        !!key && !!mergeSeal && !!s.headSha && verifyMergeSeal(key, mergeSeal.value, { branch, baseBranch, headSha: s.headSha, parentSha: mergeSeal.parentSha });
      return { ...rest, mergedByModelgate: own } as S;
    }
    const found = s.mergedBy ? deps.identities?.byGithubLogin(s.mergedBy) : undefined;
    return (found ? { ...rest, mergedByIdentity: { identity: found.identity, groups: [...found.groups] } } : rest) as S;
  }

  function sealKey(): string | undefined {
    return deps.markerSecret.length >= MIN_MARKER_SECRET_LENGTH ? deps.markerSecret : undefined;
  }

  function servingFieldsOrNone(content: string, policy: GitopsPolicy): ServingFields | undefined {
    try {
      return readServingFields(content, target(policy), policy.manifestPath);
    } catch (err) {
      if (err instanceof ManifestError) return undefined;
      throw err;
    }
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

  /** A note on the promotion PR (e.g. why the re-check refused it); once per key, masked, plain git: none. */
  async function commentOnPullRequest(input: PromotionKey & { key: string; body: string }): Promise<boolean> {
    const provider = deps.providerFor(input.policy);
    return provider.comment({
      branch: promotionBranch(input.model, input.version, input.run),
      baseBranch: input.policy.baseBranch,
      key: input.key,
      body: maskUrlCredentials(input.body).slice(0, 60_000),
    });
  }

  return {
    openPromotionPullRequest,
    getPullRequestStatus,
    commentOnPullRequest,
    mergePromotionPullRequest,
    closePromotionPullRequest,
    openRevertPullRequest,
    mergeRevertPullRequest,
    readServingManifest,
    openRetirePullRequest,
    mergeRetirePullRequest,
    closeRetirePullRequest,
    openRetireRevertPullRequest,
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

function short(sha: string | undefined): string {
  return sha ? sha.slice(0, 12) : '(none)';
}

function manifest<R>(fn: () => R): R {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ManifestError) throw permanent(T.ManifestInvalid, err.message);
    throw err;
  }
}
