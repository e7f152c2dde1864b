/**
 * Activity proxies of the lifecycle, one per group with timeouts that fit what the group does. Only types are
 * imported from the activity modules: their code runs in the worker, never in the workflow sandbox.
 */
import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { RegistryActivities } from '../activities/registry.js';
import type { LockActivities } from '../activities/lock.js';
import type { GitopsActivities } from '../activities/gitops.js';
import type { DeployActivities } from '../activities/deploy.js';
import type { NotifyActivities } from '../activities/notify.js';
import type { CacheActivities } from '../activities/cache.js';
import type { TrustActivities } from '../activities/trust.js';
import type { CanaryGitopsActivities } from '../activities/canary-gitops.js';
import type { CanaryK8sActivities } from '../activities/canary-k8s.js';
import type { CanaryActivities } from '../canary/types.js';

const retry = { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '1m' };

/** Short MLflow reads and writes; transient errors retry forever (MLflow down must not lose a promotion). */
export const registry = proxyActivities<RegistryActivities>({ startToCloseTimeout: '30s', retry });

/** Waiting for MLflow to finish registering: polls and heartbeats. */
export const registryWaits = proxyActivities<Pick<RegistryActivities, 'waitForVersionReady'>>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '30s',
  retry,
});

export const lockActs = proxyActivities<LockActivities>({ startToCloseTimeout: '30s', retry });

/** Verification keys from the worker's configuration; a local read, so a short timeout and few attempts. */
export const trust = proxyActivities<TrustActivities>({ startToCloseTimeout: '10s', retry: { ...retry, maximumAttempts: 5 } });

/** Git pushes and GitHub calls; rate-limit waits happen inside, hence the long timeout. */
export const gitops = proxyActivities<GitopsActivities>({ startToCloseTimeout: '15m', heartbeatTimeout: '2m', retry });

/** Notes on a PR (why it was not promoted): best effort, like notifications; never holds the lifecycle for long. */
export const gitopsNotes = proxyActivities<Pick<GitopsActivities, 'commentOnPullRequest'>>({
  startToCloseTimeout: '2m',
  retry: { ...retry, maximumAttempts: 5 },
});

/** Rollout waits last up to the policy deadline and heartbeat their watch position. */
export const deployment = proxyActivities<DeployActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '20s',
  retry: { ...retry, maximumInterval: '10s' },
});

/** Canary step commits: git pushes / GitHub calls like the promotion PR's. */
export const canaryGitops = proxyActivities<CanaryGitopsActivities>({ startToCloseTimeout: '15m', heartbeatTimeout: '2m', retry });

/** Canary cluster reads and split waits (bounded by the rollout deadline inside). */
export const canaryCluster = proxyActivities<CanaryK8sActivities>({
  startToCloseTimeout: '6h',
  heartbeatTimeout: '20s',
  retry: { ...retry, maximumInterval: '10s' },
});

/**
 * One analysis sample per call: Prometheus trouble is a measurement (phase error), not a failure, so a retry
 * is only for a lost worker — a few, then the workflow counts it as an error sample.
 */
export const canaryAnalysis = proxyActivities<CanaryActivities>({ startToCloseTimeout: '30s', retry: { ...retry, maximumAttempts: 3 } });

/** Notifications and cache invalidation are best effort: bounded retries, never block the lifecycle for long. */
export const notify = proxyActivities<NotifyActivities>({ startToCloseTimeout: '30s', retry: { ...retry, maximumAttempts: 5 } });
export const cache = proxyActivities<CacheActivities>({ startToCloseTimeout: '10s', retry: { ...retry, maximumAttempts: 3 } });

/** True when err is an activity failure caused by an ApplicationFailure of this type. */
export function isFailureOfType(err: unknown, type: string): boolean {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type;
}

/**
 * Notifications and cache invalidation must never fail a promotion: after their bounded retries, the failure
 * is logged by the SDK and the lifecycle goes on.
 */
export async function bestEffort<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ActivityFailure) return undefined;
    throw err;
  }
}
