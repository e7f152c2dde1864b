/**
 * The GitOps commits of a progressive rollout: each traffic step after the first (which rides on the approved
 * promotion PR) is modelgate's own change of `spec.predictor.canaryTrafficPercent` on the base branch: by default
 * one commit straight on the base (`canary.commit: direct`), or, for a base that only takes merges, a branch +
 * merge of its own (`pull-request`). Either way the change is keyed per (model, version, run, step)
 * (`…/v<version>-canary-<step>`, the abort at 0 %: `…-canary-abort`): a retried activity, or a worker that
 * crashed after committing, finds its own signed change (HMAC marker over the manifest it set, as for
 * promotions) among the base's recent commits (or on the branch) and adopts it instead of committing again.
 */
import { applyCanaryPercent, readCanaryPercent } from '../gitops/canary-manifest.js';
import { mergeSealer, requireMarkerSecret } from '../gitops/marker-key.js';
import { foreignPullRequest, ManifestError, permanent, GitopsFailureTypes as T } from '../gitops/errors.js';
import { readServingFields, type ManifestTarget } from '../gitops/manifest.js';
import { parseMarker, renderMarker, verifyMarker, type MarkerFacts } from '../gitops/marker.js';
import { changeCommitMessage } from '../gitops/pr-text.js';
import { canaryBranch } from '../gitops/provider.js';
import type { GitopsPolicy } from '../policy/types.js';
import type { GitopsActivityDeps } from './gitops.js';

export interface CanaryStepInput {
  model: string;
  version: number;
  run?: string;
  policy: GitopsPolicy;
  /** Index in the policy's steps (≥ 1: step 0 is the promotion PR itself), or `abort` (0 % after a failed analysis). */
  step: number | 'abort';
  percent: number;
  /** The canaried version's storageUri: the base branch must still serve it, or the step is not applied. */
  storageUri: string;
  workflowId: string;
  /** One line for the commit message (e.g. the failing query and values of an abort). */
  reason?: string;
  /** `direct` (default): a commit on the base branch; `pull-request`: a branch merged by modelgate (protected bases). */
  commit?: 'direct' | 'pull-request';
}

export interface CanaryStepCommit {
  branch: string;
  url: string;
  /** The commit on the base branch that carries the step. */
  mergeSha: string;
  /** True when an earlier attempt (or run) had already applied it: nothing was committed now. */
  alreadyApplied: boolean;
}

export function createCanaryGitopsActivities(deps: GitopsActivityDeps) {
  const target = (p: GitopsPolicy): ManifestTarget => ({ namespace: p.namespace, name: p.inferenceService });

  async function commitCanaryStep(input: CanaryStepInput): Promise<CanaryStepCommit> {
    const { model, version, policy } = input;
    const secret = markerSecret();
    const provider = deps.providerFor(policy);
    const branch = canaryBranch(model, version, input.step, input.run);
    const file = policy.manifestPath;
    const facts = (content: string): MarkerFacts => ({
      kind: 'canary',
      branch,
      baseBranch: policy.baseBranch,
      model,
      version,
      manifestPath: file,
      content,
      storageUri: input.storageUri,
    });
    const isOwn = (message: string | undefined, content: string | undefined): boolean =>
      content !== undefined && verifyMarker(secret, parseMarker(message, branch), facts(content));
    // The base already sets this percent for this version (a person did it, or the field was already absent at
    // 100): the step is in place; nothing to commit.
    const unchanged = async (err: unknown): Promise<CanaryStepCommit> => {
      if (!isUnchanged(err)) throw err;
      const head = await provider.readFile(file, policy.baseBranch);
      if (!head) throw err;
      return { branch, url: '', mergeSha: head.commit, alreadyApplied: true };
    };

    const renderStep = (current: string) => {
      const serving = manifest(() => readServingFields(current, target(policy), file));
      if (serving.storageUri !== input.storageUri) {
        throw permanent(
          T.CanaryNotApplicable,
          `${file} on ${policy.baseBranch} serves ${serving.storageUri ?? 'nothing'}, not ${model} v${version} (${input.storageUri}): the canary step is not applied`,
        );
      }
      const content = manifest(() => applyCanaryPercent(current, target(policy), input.percent, file));
      const marker = renderMarker(secret, facts(content));
      const title = `modelgate: ${model} v${version} canary ${input.step === 'abort' ? 'aborted, 0%' : `step ${input.step}, ${input.percent}%`}`;
      const what =
        input.percent === 100
          ? `Remove spec.predictor.canaryTrafficPercent of ${policy.namespace}/${policy.inferenceService}: the new revision takes all the traffic.`
          : `Set spec.predictor.canaryTrafficPercent of ${policy.namespace}/${policy.inferenceService} to ${input.percent}.`;
      const lines = [what, ...(input.reason ? ['', `Reason: ${input.reason.replace(/[\r\n]+/g, ' ').slice(0, 500)}`] : []), '', `Modelgate-Model: ${model}`, `Modelgate-Version: ${version}`, `Modelgate-Canary-Step: ${input.step}`];
      const commitMessage = changeCommitMessage(title, lines, marker);
      return { content, title, body: `${what}\n\nWorkflow: \`${input.workflowId}\`\n\n${marker}\n`, commitMessage };
    };
    // Default: a commit of modelgate's own straight on the base branch (no review: the approval covered the
    // rollout). A base that refuses it (protected: only merges) gets the step as a branch + merge instead.
    if ((input.commit ?? 'direct') === 'direct') {
      try {
        const done = await provider.commitOnBase({ key: branch, baseBranch: policy.baseBranch, path: file, render: renderStep, isOwnChange: (c) => isOwn(c.message, c.content) });
        return { branch, url: done.url, mergeSha: done.commit, alreadyApplied: done.alreadyApplied };
      } catch (err) {
        if (!isFailure(err, T.GitopsForbidden)) return unchanged(err);
      }
    }
    let status = await provider.getPullRequest(branch, policy.baseBranch);
    let alreadyApplied = !!status && status.state === 'merged';
    if (!status) {
      try {
        status = await provider.openPromotion({
          branch,
          baseBranch: policy.baseBranch,
          path: file,
          render: renderStep,
          isOwnChange: (c) => isOwn(c.message, c.content),
        });
      } catch (err) {
        return unchanged(err);
      }
    }
    // What was found or created is checked like a promotion PR: only modelgate's own signed change is merged.
    if (status.baseBranch !== policy.baseBranch) throw foreignPullRequest(branch, `its pull request targets ${status.baseBranch}, not ${policy.baseBranch}`);
    const head = status.headSha ? await provider.readFile(file, status.headSha) : null;
    if (!head || !isOwn(status.body, head.content)) {
      throw foreignPullRequest(branch, `was not opened by modelgate (no valid canary marker for the manifest at ${status.headSha?.slice(0, 12) ?? '(none)'})`);
    }
    const wantPercent = input.percent === 100 ? undefined : input.percent;
    if (manifest(() => readCanaryPercent(head.content, target(policy), file)) !== wantPercent) {
      throw foreignPullRequest(branch, `its manifest does not set canaryTrafficPercent ${wantPercent ?? '(absent)'}`);
    }
    if (status.state === 'merged') return { branch, url: status.url, mergeSha: status.mergeSha!, alreadyApplied: true };
    const merged = await provider.merge({
      branch,
      baseBranch: policy.baseBranch,
      expectedHeadSha: status.headSha,
      method: policy.mergeMethod,
      approvedBy: [],
      title: `modelgate: ${model} v${version} canary ${input.step === 'abort' ? 'abort' : `step ${input.step}`} (${input.percent}%)`,
      seal: mergeSealer(provider, markerSecret, branch, policy.baseBranch),
    });
    alreadyApplied ||= merged.alreadyMerged;
    return { branch, url: status.url, mergeSha: merged.mergeSha, alreadyApplied };
  }


  const markerSecret = (): string => requireMarkerSecret(deps.markerSecret, 'canary commits');

  return { commitCanaryStep };
}

export type CanaryGitopsActivities = ReturnType<typeof createCanaryGitopsActivities>;

function isFailure(err: unknown, type: string): boolean {
  return err instanceof Error && (err as Error & { type?: string }).type === type;
}

function isUnchanged(err: unknown): boolean {
  return isFailure(err, T.ManifestUnchanged);
}

function manifest<R>(fn: () => R): R {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ManifestError) throw permanent(T.ManifestInvalid, err.message);
    throw err;
  }
}
