/**
 * Failure types of the GitOps area. Permanent problems (a human must act: fix the manifest, resolve a
 * conflict, re-approve) are non-retryable ApplicationFailures so Temporal stops retrying and the workflow can
 * say why; everything else is thrown as a plain Error and retried by the activity's retry policy.
 */
import { ApplicationFailure } from '@temporalio/common';
import { maskUrlCredentials } from '../util/url-credentials.js';

export const GitopsFailureTypes = {
  ManifestInvalid: 'ManifestInvalid',
  ManifestNotFound: 'ManifestNotFound',
  ManifestUnchanged: 'ManifestUnchanged',
  StorageUriUnresolvable: 'StorageUriUnresolvable',
  BaseBranchNotFound: 'BaseBranchNotFound',
  RefNotFound: 'RefNotFound',
  MergeCommitNotFound: 'MergeCommitNotFound',
  PullRequestNotFound: 'PullRequestNotFound',
  PullRequestClosed: 'PullRequestClosed',
  PullRequestNotMergeable: 'PullRequestNotMergeable',
  PullRequestHeadChanged: 'PullRequestHeadChanged',
  RevertNotApplicable: 'RevertNotApplicable',
  /** The base branch does not serve the version being retired (or it has no previous version to go back to). */
  RetireNotApplicable: 'RetireNotApplicable',
  /** The base branch does not serve the version being canaried (someone changed the manifest mid-canary). */
  CanaryNotApplicable: 'CanaryNotApplicable',
  GitopsNotConfigured: 'GitopsNotConfigured',
  GitopsAuthFailed: 'GitopsAuthFailed',
  GitopsForbidden: 'GitopsForbidden',
  GitopsNotFound: 'GitopsNotFound',
  GitopsRequestInvalid: 'GitopsRequestInvalid',
  /** A branch or PR for (model, version) exists that modelgate did not open (no valid marker), or was edited. */
  ForeignPullRequest: 'ForeignPullRequest',
  /** Retryable: carries nextRetryDelay = time until the GitHub rate limit resets. */
  GitHubRateLimited: 'GitHubRateLimited',
} as const;

export type GitopsFailureType = (typeof GitopsFailureTypes)[keyof typeof GitopsFailureTypes];

export function permanent(type: GitopsFailureType, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

/**
 * One line naming the branch, e.g. "branch modelgate/m/v3 exists but was not opened by modelgate (no valid
 * marker); delete it or close the PR". Nothing of it is adopted.
 */
export function foreignPullRequest(branch: string, reason = 'was not opened by modelgate (no valid marker)'): ApplicationFailure {
  return permanent(GitopsFailureTypes.ForeignPullRequest, `branch ${branch} exists but ${reason}; delete it or close the PR`);
}

/** Thrown by manifest.ts (pure code, no Temporal); activities turn it into ManifestInvalid. */
export class ManifestError extends Error {
  override name = 'ManifestError';
}

/** Credentials in a remote URL (`https://user:token@host/...`) never reach an error message or a log. */
export function redactUrl(text: string): string {
  return maskUrlCredentials(text);
}
