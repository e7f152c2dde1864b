/**
 * The marker secret as the GitOps activities need it: refused (permanently) when it is too short to sign with,
 * and the merge seal a plain-git provider records beside a merge (hosted providers keep their own record).
 */
import { permanent, GitopsFailureTypes as T } from './errors.js';
import { MIN_MARKER_SECRET_LENGTH, mergeSeal } from './marker.js';
import type { GitopsProvider, MergeRequest } from './provider.js';

/** `what` names what cannot be signed without it (e.g. "pull requests"), for the one-line error. */
export function requireMarkerSecret(secret: string, what: string): string {
  if (secret.length < MIN_MARKER_SECRET_LENGTH) {
    throw permanent(
      T.GitopsNotConfigured,
      `MODELGATE_GITOPS_MARKER_SECRET is not set (or shorter than ${MIN_MARKER_SECRET_LENGTH} characters): modelgate cannot sign or verify its ${what}`,
    );
  }
  return secret;
}

export function mergeSealer(provider: GitopsProvider, key: () => string, branch: string, baseBranch: string): MergeRequest['seal'] {
  if (provider.kind !== 'git') return undefined;
  const secret = key();
  return (f) => mergeSeal(secret, { branch, baseBranch, ...f });
}
