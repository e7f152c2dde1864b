/**
 * The resolved, per-model policy. The YAML file (see docs/policy.md) is validated and merged with its
 * `defaults` at worker start; the workflow receives one of these from an activity, so it is recorded in
 * history and a later edit of the file never changes a running promotion's replay.
 * Plain data only: workflow code imports this type.
 */
import type { CanaryPolicy } from '../canary/types.js';

export type Comparator = '>=' | '>' | '<=' | '<' | '==';

export interface MetricThreshold {
  metric: string;
  op: Comparator;
  value: number;
}

export interface RegressionRule {
  metric: string;
  /** higher_is_better: fail when candidate < baseline - tolerance; lower_is_better: candidate > baseline + tolerance. */
  direction: 'higher_is_better' | 'lower_is_better';
  /** Absolute tolerance in metric units. */
  tolerance: number;
}

export interface EvaluationPolicy {
  thresholds: MetricThreshold[];
  requiredTags: string[];
  noRegression: RegressionRule[];
}

export interface ApprovalPolicy {
  /** Identities (or `group:<name>`) allowed to approve or reject. Empty = nobody may (fail closed). `*` = anyone. */
  approvers: string[];
  /** The version's registrant may not approve it. */
  fourEyes: boolean;
  /**
   * Under four-eyes, when nobody can tell who registered the version: `deny` (default) refuses every approval;
   * `allow` accepts them and the audit says the registrant was unknown. Undefined (lifecycles started before
   * this setting existed) = deny.
   */
  unknownRegistrant?: 'deny' | 'allow';
  /**
   * Only decisions attested by a front door count (default true). false is for local experiments: bare
   * Temporal updates are accepted and recorded `verified: false`. Undefined (older lifecycles) = true.
   */
  requireVerifiedIdentity?: boolean;
  /** Distinct approvers needed. */
  quorum: number;
  /** How long a Staging version waits for approval, in milliseconds. */
  expiresAfterMs: number;
  /**
   * When the re-check under the lock fails: `drop` (default) starts a new approval round, since the approvals
   * were given against another serving version; `keep` keeps them and re-checks with back-off until expiry.
   */
  onRecheckFailure?: 'keep' | 'drop';
}

/** How a rollback run is approved (quorum may be 1 for incidents). Undefined = the approval section's values. */
export interface RollbackPolicy {
  quorum: number;
  fourEyes: boolean;
  /** Skip the evaluation gate and the re-check: the version served before. Default true. */
  skipEvaluation: boolean;
}

export interface GitopsPolicy {
  provider: 'git' | 'github';
  /** git: a remote URL or a local path; github: `owner/name`. */
  repo: string;
  /** Target branch the PR merges into. */
  baseBranch: string;
  /** Path of the InferenceService manifest inside the repo. */
  manifestPath: string;
  namespace: string;
  inferenceService: string;
  mergeMethod: 'merge' | 'squash' | 'rebase';
  /** Map an MLflow artifact location prefix to the URI KServe downloads from. */
  storageUriPrefixMap: Array<{ from: string; to: string }>;
  /** When the PR head changes after approval or checks fail, approvals are dropped. */
  reapproveOnChange: boolean;
  /**
   * What a retire does to the InferenceService: `previous` points it back at the previous Production version,
   * `remove` deletes it from the manifest. Undefined (lifecycles started before this setting existed) = previous.
   */
  onRetire?: 'previous' | 'remove';
  /**
   * How long an approved PR modelgate cannot merge (conflict, branch protection) waits for a person to merge
   * it; then the lifecycle ends `manual_merge_timed_out`. Undefined (older lifecycles): the approval's expiry.
   */
  manualMergeTimeoutMs?: number;
  /**
   * How long a revert PR (kserve.rollback: approval) waits for a person to merge it; then the lifecycle ends
   * `manual_revert_timed_out` (a retire attempt fails). Undefined (older lifecycles): no deadline.
   */
  manualRevertTimeoutMs?: number;
}

export interface KservePolicy {
  /** Wait for the ArgoCD Application to sync the merge commit. */
  argocdApplication?: { namespace: string; name: string };
  deploymentMode: 'Serverless' | 'RawDeployment';
  rolloutDeadlineMs: number;
  /** Optional readiness probe of the model server (`/v2/models/<name>/ready`). */
  smokeUrl?: string;
  rollback: 'auto' | 'approval';
}

export interface DeploymentPolicy {
  /** registry: serving loads `models:/<name>@production`; gitops: a PR moves the InferenceService. */
  mode: 'registry' | 'gitops';
  /** How long a promotion may hold the model's Production lock (default: 2 × rollout deadline + 30 min). */
  lockLeaseMs?: number;
  /** How long an approved version waits for the model's Production lock (default 24h; undefined in older lifecycles). */
  lockWaitMs?: number;
  gitops?: GitopsPolicy;
  kserve?: KservePolicy;
  /** Progressive rollout (gitops mode, Serverless KServe only); absent = 0 → 100% at once. */
  canary?: CanaryPolicy;
}

export interface NotifyPolicy {
  slackChannel?: string;
}

export interface ModelPolicy {
  model: string;
  evaluation: EvaluationPolicy;
  approval: ApprovalPolicy;
  deployment: DeploymentPolicy;
  notify: NotifyPolicy;
  rollback?: RollbackPolicy;
}
