/**
 * The one interface both GitOps providers implement (plain git: git-provider.ts; GitHub: github-provider.ts).
 * A "pull request" is identified by its deterministic branch, so every operation is idempotent by business key:
 * calling it again after a retry or a worker crash finds what the first call did instead of doing it twice.
 */
import type { IdentityRef } from '../identity/types.js';
import { createHash } from 'node:crypto';

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
  headSha: string;
  /** The commit on the base branch that carries the change (merge, squash or rebase commit). */
  mergeSha?: string;
  /** Who merged: a GitHub login, or for plain git the `Merged-by:` trailer / committer of the merge. */
  mergedBy?: string;
  /**
   * The merger mapped through the identity directory — only from the Git host's own record of who merged
   * (GitHub `merged_by`); never set for plain git, whose commit metadata anyone can write.
   */
  mergedByIdentity?: IdentityRef;
  /** Who closed it without merging (GitHub `closed_by`, plain git `Closed-by:` trailer). */
  closedBy?: string;
  /** Combined commit statuses and check runs of the head; always `none` for plain git. */
  checks: ChecksState;
  title?: string;
  /** The PR description (GitHub PR body; plain git: message of the branch's promotion commit). */
  body?: string;
}

export interface RenderedChange {
  content: string;
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
   */
  render(current: string, beforeMerge?: string): RenderedChange;
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
}

export interface MergeOutcome {
  mergeSha: string;
  mergedBy?: string;
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

export interface GitopsProvider {
  readonly kind: 'git' | 'github';
  /** Create the branch, the commit and the PR, or adopt what exists for the branch (in any state). */
  openPromotion(change: ProposedChange): Promise<PullRequestStatus>;
  /** The PR for the branch (the newest one on GitHub), or null when there is none. */
  getPullRequest(branch: string, baseBranch: string): Promise<PullRequestStatus | null>;
  /** Merge the PR, or return the existing merge when it is already merged. */
  merge(req: MergeRequest): Promise<MergeOutcome>;
  /** Close without merging; returns the PR's state afterwards (a merged PR stays merged), null if none. */
  close(req: CloseRequest): Promise<PullRequestStatus | null>;
  /** Open (or adopt) a PR that undoes the manifest change of `mergeSha`. */
  openRevert(change: RevertChange): Promise<PullRequestStatus>;
  /** The file at a branch name or commit SHA; null when the file does not exist there. */
  readFile(path: string, ref: string): Promise<FileAtRef | null>;
}

/** `modelgate/<model>/v<version>`; model names that are not ref-safe get a short hash so names never collide. */
export function promotionBranch(model: string, version: number): string {
  return `modelgate/${refSafe(model)}/v${version}`;
}

export function revertBranch(model: string, version: number): string {
  return `${promotionBranch(model, version)}-revert`;
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
