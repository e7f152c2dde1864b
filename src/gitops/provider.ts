/**
 * The one interface both GitOps providers implement (plain git: git-provider.ts; GitHub: github-provider.ts).
 * A "pull request" is identified by its deterministic branch, so every operation is idempotent by business key:
 * calling it again after a retry or a worker crash finds what the first call did instead of doing it twice.
 */
import { createHash } from 'node:crypto';
import type { IdentityRef } from '../identity/types.js';

export type PullRequestState = 'open' | 'merged' | 'closed';
export type ChecksState = 'pending' | 'success' | 'failure' | 'none';

export interface PullRequestStatus {
  provider: 'git' | 'github';
  state: PullRequestState;
  /** GitHub PR number; undefined for plain git. */
  number?: number;
  url: string;
  branch: string;
  baseBranch: string;
  /**
   * The PR head. For a merged PR it is the head that was merged (GitHub keeps `head.sha` of a merged PR; plain
   * git: the `Modelgate-Head:` trailer of modelgate's merge, or the newest branch commit the base contains), so
   * the workflow can compare it with the head that was approved.
   */
  headSha: string;
  /** The commit on the base branch that carries the change (merge, squash or rebase commit). */
  mergeSha?: string;
  /**
   * Who merged, for the timeline only: a GitHub login (read from the GitHub API), or for plain git the
   * `Merged-by:` trailer / committer name of the merge, which anyone can write and is never an identity.
   */
  mergedBy?: string;
  /**
   * The directory identity of the GitHub account that merged (GitHub provider only: `merged_by.login` from the
   * API, mapped through the directory by the activity layer; unmapped → undefined). Never set for plain git.
   */
  mergedByIdentity?: IdentityRef;
  /**
   * Plain git only, for a merged PR: true when the merge commit carries a valid `Modelgate-Seal:` (an HMAC
   * with the marker secret over branch, base branch, merged head and the merge's first parent), i.e. it is
   * modelgate's own merge; false for any merge made by a person, whatever trailers it carries. Set by the
   * activity layer; undefined for GitHub (there `mergedBy` comes from the API and maps through the directory).
   */
  mergedByModelgate?: boolean;
  /** Provider → activity only: the seal trailer of the merge commit and the commit's first parent. */
  mergeSeal?: MergeSeal;
  /** Who closed it without merging (GitHub `closed_by`, plain git `Closed-by:` trailer). */
  closedBy?: string;
  /** Combined commit statuses and check runs of the head; always `none` for plain git. */
  checks: ChecksState;
  title?: string;
  /** The PR description (GitHub PR body; plain git: message of the branch's promotion commit). */
  body?: string;
}

export interface MergeSeal {
  value: string;
  parentSha: string;
}

export interface RenderedChange {
  /** The new file; null deletes it (a retire that removes the InferenceService the file alone held). */
  content: string | null;
  title: string;
  /** Markdown. */
  body: string;
  commitMessage: string;
}

export interface ProposedChange {
  branch: string;
  baseBranch: string;
  /** Path of the file inside the repo. */
  path: string;
  /**
   * Called once with the file as the base branch serves it now (and, for a revert, the file as it was before
   * the merge being reverted); returns the new file and the PR text. May throw ManifestError.
   * `current` is '' when the file does not exist on the base and `mayBeMissing` is set.
   */
  render(current: string, beforeMerge?: string): RenderedChange;
  /** The file may be absent on the base (the revert of a retire that deleted it); otherwise ManifestNotFound. */
  mayBeMissing?: boolean;
  /**
   * Whether a commit found at the head of an already existing branch (without a PR) is modelgate's own change
   * commit (its message carries a valid marker over `content`, the file at that commit). The GitHub provider
   * builds on such a branch only when this is true or the branch holds nothing but base commits; otherwise it
   * fails with ForeignPullRequest.
   */
  isOwnChange(commit: { message: string; content?: string }): boolean;
}

export interface RevertChange extends ProposedChange {
  mergeSha: string;
}

export type MergeMethod = 'merge' | 'squash' | 'rebase';

export interface MergeRequest {
  branch: string;
  baseBranch: string;
  /** When set, the merge only happens if the PR head is still this commit (else PullRequestHeadChanged). */
  expectedHeadSha?: string;
  method: MergeMethod;
  /** Recorded as `Approved-by:` trailers in the merge commit message. */
  approvedBy: string[];
  /** First line of the merge commit. */
  title: string;
  /**
   * Plain git: the value of the `Modelgate-Seal:` trailer for a merge of `headSha` on top of `parentSha` (the
   * activity layer signs it with the marker secret), so modelgate's own merge can be told from a person's.
   */
  seal?: (facts: { headSha: string; parentSha: string }) => string;
}

export interface MergeOutcome {
  mergeSha: string;
  /** Timeline only (see PullRequestStatus.mergedBy). */
  mergedBy?: string;
  /** GitHub only, when a person had already merged it: their directory identity (see PullRequestStatus). */
  mergedByIdentity?: IdentityRef;
  /** The head that was merged. */
  headSha?: string;
  /** Plain git only (see PullRequestStatus.mergedByModelgate). */
  mergedByModelgate?: boolean;
  /** Provider → activity only (see PullRequestStatus.mergeSeal). */
  mergeSeal?: MergeSeal;
  /** True when the PR was already merged (by an earlier attempt or by a human); nothing was done. */
  alreadyMerged: boolean;
}

export interface CloseRequest {
  branch: string;
  baseBranch: string;
  reason: string;
  by?: string;
}

export interface FileAtRef {
  content: string;
  /** The commit the content was read from. */
  commit: string;
}

/**
 * A commit made straight on the base branch (a canary step: modelgate's own traffic change, no review). `key`
 * names the change (e.g. the canary step's branch name, never created): the base's recent commits of `path`
 * whose message carries its marker are offered to `isOwnChange`, so a retried call finds its own commit.
 */
export interface BaseCommit {
  key: string;
  baseBranch: string;
  path: string;
  /** The new file from the file as the base serves it now; may throw ManifestError or a permanent failure. */
  render(current: string): { content: string; commitMessage: string };
  isOwnChange(commit: { message: string; content?: string }): boolean;
}

export interface BaseCommitOutcome {
  commit: string;
  url: string;
  /** An earlier attempt had made it: nothing was committed now. */
  alreadyApplied: boolean;
}

/** How many of the base's latest commits of the file are searched for an earlier attempt's own commit. */
export const OWN_COMMIT_LOOKBACK = 20;

export interface GitopsProvider {
  readonly kind: 'git' | 'github';
  /** Create the branch, the commit and the PR, or adopt what exists for the branch (in any state). */
  openPromotion(change: ProposedChange): Promise<PullRequestStatus>;
  /** The PR from the branch into the base branch (the newest one on GitHub), or null when there is none. */
  getPullRequest(branch: string, baseBranch: string): Promise<PullRequestStatus | null>;
  /** Merge the PR, or return the existing merge when it is already merged. */
  merge(req: MergeRequest): Promise<MergeOutcome>;
  /** Close without merging; returns the PR's state afterwards (a merged PR stays merged), null if none. */
  close(req: CloseRequest): Promise<PullRequestStatus | null>;
  /** Open (or adopt) a PR that undoes the manifest change of `mergeSha`. */
  openRevert(change: RevertChange): Promise<PullRequestStatus>;
  /** Commit the change on the base branch, or find the commit an earlier attempt made (see BaseCommit). */
  commitOnBase(change: BaseCommit): Promise<BaseCommitOutcome>;
  /** The file at a branch name or commit SHA; null when the file does not exist there. */
  readFile(path: string, ref: string): Promise<FileAtRef | null>;
  /**
   * Say something on the open PR of `branch`, once per `key` (retries do not repeat it). Returns false when the
   * host has no PR conversation (plain git) or there is no open PR.
   */
  comment(req: { branch: string; baseBranch: string; key: string; body: string }): Promise<boolean>;
}

/**
 * `modelgate/<model>/v<version>`; model names that are not ref-safe get a short hash so names never collide. A
 * later run of the version (rollback, again) has its own branches: `…/v<version>-<run>` (see promotionRun).
 */
export function promotionBranch(model: string, version: number, run?: string): string {
  return `modelgate/${refSafe(model)}/v${version}${run ? `-${run}` : ''}`;
}

export function revertBranch(model: string, version: number, run?: string): string {
  return `${promotionBranch(model, version, run)}-revert`;
}

/** `modelgate/<model>/v<version>-retire-<attempt>`: each retire attempt of a version has its own branch. */
export function retireBranch(model: string, version: number, attempt: number, run?: string): string {
  return `${promotionBranch(model, version, run)}-retire-${attempt}`;
}

/** The revert of a retire whose rollout failed. */
export function retireRevertBranch(model: string, version: number, attempt: number, run?: string): string {
  return `${retireBranch(model, version, attempt, run)}-revert`;
}

/**
 * `modelgate/<model>/v<version>-canary-<step>` (or `-canary-abort`): one branch per traffic step of a
 * progressive rollout, so a retried step adopts its own earlier commit and never commits twice.
 */
export function canaryBranch(model: string, version: number, step: number | 'abort', run?: string): string {
  return `${promotionBranch(model, version, run)}-canary-${step}`;
}

function refSafe(name: string): string {
  let safe = name
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/^[.-]+|[.-]+$/g, '')
    .replace(/\.lock$/i, '-lock');
  if (safe !== name || safe === '') {
    const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
    safe = safe ? `${safe}-${hash}` : `model-${hash}`;
  }
  return safe;
}
