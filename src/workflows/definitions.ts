/**
 * The one module shared by workflow code, activities, the client, the API and tests: names of workflows,
 * signals, updates, queries, search-attribute keys, the task queue, and the payload types they carry.
 * Workflow code imports it, so it may only import `@temporalio/workflow`, `@temporalio/common` and types.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ModelPolicy } from '../policy/types.js';
import type { Attestation } from '../identity/types.js';
import type { VerificationKeys } from './attestation.js';
import type { Measurement, MetricVerdict } from '../canary/types.js';

export const TASK_QUEUE = 'modelgate';
export const LIFECYCLE_WORKFLOW = 'modelLifecycle';
export const LOCK_WORKFLOW = 'modelProductionLock';

/** Workflow IDs come from the business key, so a second start for the same version finds the first. */
export function lifecycleWorkflowId(model: string, version: number): string {
  return `modelgate/${model}/v${version}`;
}

/** One lock workflow per model serializes every change of its Production version. */
export function lockWorkflowId(model: string): string {
  return `modelgate-lock/${model}`;
}

// ---- search attributes (registered on the server by the embedded stack and by docs for production) ----
export const MODEL_NAME = defineSearchAttributeKey('ModelName', SearchAttributeType.KEYWORD);
export const MODEL_VERSION = defineSearchAttributeKey('ModelVersion', SearchAttributeType.INT);
export const MODEL_STAGE = defineSearchAttributeKey('ModelStage', SearchAttributeType.KEYWORD);
export const APPROVER = defineSearchAttributeKey('Approver', SearchAttributeType.KEYWORD_LIST);
export const OUTCOME = defineSearchAttributeKey('ModelgateOutcome', SearchAttributeType.KEYWORD);

/** Name → Temporal CLI type, used to register them (`--search-attribute Name=Type`). */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'Int' | 'KeywordList'> = {
  ModelName: 'Keyword',
  ModelVersion: 'Int',
  ModelStage: 'Keyword',
  Approver: 'KeywordList',
  ModelgateOutcome: 'Keyword',
};

// ---- domain types ----
export type Stage = 'None' | 'Staging' | 'Production' | 'Archived';

export type Phase =
  | 'awaiting_registration'
  | 'evaluating'
  | 'awaiting_approval'
  | 'deploying'
  | 'production'
  | 'done';

/** How a lifecycle ended; also the `ModelgateOutcome` search attribute. */
export type Outcome =
  | 'rejected_by_evaluation'
  | 'rejected'
  | 'expired'
  | 'superseded'
  | 'retired'
  | 'rolled_back'
  | 'registration_failed'
  /** Approved, but the model's Production lock was not granted within `deployment.lockWait`. */
  | 'lock_wait_timed_out'
  /** Approved, modelgate could not merge the PR, and no person merged it within `deployment.gitops.manualMergeTimeout`. */
  | 'manual_merge_timed_out'
  /** The rollout failed and no person merged the revert PR within `deployment.gitops.manualRevertTimeout`. */
  | 'manual_revert_timed_out';

/** Outcomes of a bounded wait that ran out (docs/operations.md "Bounded histories"). */
export const TIMED_OUT_OUTCOMES = ['lock_wait_timed_out', 'manual_merge_timed_out', 'manual_revert_timed_out'] as const;
export type TimedOutOutcome = (typeof TIMED_OUT_OUTCOMES)[number];

export type TriggerSource = 'cli' | 'api' | 'mlflow-webhook' | 'kubeflow' | 'reconciler' | 'test';

/**
 * A run that is not a version's first: `again` promotes an ended (expired, rejected, archived) version anew;
 * `rollback` returns a version that was Production before. The reason is part of the signed start request.
 */
export interface PromotionRequest {
  kind: 'again' | 'rollback';
  reason: string;
}

/** What a lifecycle hands to its next run when it continues as new (the entity pattern). */
export interface LifecycleCarry {
  state: LifecycleState;
  slack?: { channel?: string; ts?: string };
  /** Approvals kept after a failed re-check: not re-checked before this time (epoch ms). */
  recheckAt?: number;
  recheckFailures?: number;
  /** A pull-request hint arrived just before: the next run checks the PR first. */
  prHinted?: boolean;
  /** The PR check interval reached by back-off. */
  prPollMs?: number;
  /**
   * A lock grant that arrived while the run was continuing as new (between deciding and completing): the next
   * run holds it instead of asking again. The lock request itself needs no carrying: its id is the business
   * key, so the next run's re-request is a no-op that keeps the queue place.
   */
  grant?: LockGrant;
  /** A retire asked while waiting for the lock: the next run goes on retiring. */
  retireRequest?: { by: string; reason?: string };
}

/** Events after which a waiting lifecycle continues as new (Temporal warns at 10,240 and stops at 51,200). */
export const HISTORY_BUDGET = 5_000;

export interface LifecycleInput {
  model: string;
  version: number;
  /** Absent on a version's first run. The start's attestation must be kind `promote` (again) or `rollback`. */
  request?: PromotionRequest;
  /** Set by the lifecycle itself when it continues as new: everything the next run needs to go on waiting. */
  carry?: LifecycleCarry;
  /**
   * Continue as new once the history reaches this many events (default HISTORY_BUDGET, or earlier when the
   * server suggests it). Tests set it low to force continue-as-new.
   */
  historyBudget?: number;
  /**
   * `by` is informational; only `attestation` (a signed `promote` decision of a front door) makes the requester
   * a verified registrant for four-eyes.
   */
  trigger: { source: TriggerSource; by?: string; attestation?: Attestation };
}

export interface MetricCheck {
  /** e.g. `accuracy >= 0.9` or `no regression of accuracy beyond 0.01` */
  rule: string;
  passed: boolean;
  actual?: number;
  detail: string;
}

export interface EvaluationResult {
  passed: boolean;
  checks: MetricCheck[];
  /** One line per failed check, written to the version's tags. */
  reasons: string[];
  baselineVersion?: number;
  candidateMetrics: Record<string, number>;
  baselineMetrics?: Record<string, number>;
}

export interface VersionFacts {
  model: string;
  version: number;
  runId?: string;
  /** MLflow's server-side user of the version (`user_id`, set only when MLflow runs with auth). */
  registeredBy?: string;
  /** registeredBy mapped through the identity directory: a registrant under four-eyes. */
  registrant?: string;
  source: string;
  status: string;
  createdAt: string;
  /** When modelgate last made this version Production (its `modelgate.promoted_at` tag): a rollback target. */
  promotedBefore?: string;
}

export interface Approval {
  by: string;
  at: string;
  comment?: string;
  via: string;
  /** The approval round it belongs to; a dropped round clears its approvals. */
  round?: number;
  /** True when a front door attested it (or the Git host said who merged); false only without requireVerifiedIdentity. */
  verified?: boolean;
}

export interface TimelineEntry {
  at: string;
  actor: string;
  action: string;
  detail?: string;
}

export interface PullRequestRef {
  provider: 'git' | 'github';
  id: string;
  url: string;
  branch: string;
  headSha?: string;
  mergeSha?: string;
  mergedBy?: string;
  /** What the manifest points KServe at for this version. */
  storageUri?: string;
  /** What the target branch served before this PR (the rollback target). */
  previousStorageUri?: string;
  /** A merge nobody approved (or of another head), and the revert that undid it. */
  unapprovedMerge?: { sha: string; by: string; revertUrl: string; reason: string };
}

/** The latest retire attempt in GitOps mode: the pull request that takes the InferenceService off this version. */
export interface RetirementRecord {
  /** 1, 2, …: a failed retire may be asked again; each attempt has its own branch. */
  attempt: number;
  by: string;
  reason?: string;
  onRetire: 'previous' | 'remove';
  /** onRetire previous: the version the InferenceService goes back to. */
  toVersion?: number;
  pullRequest?: PullRequestRef;
  /** The revert of a merged retire whose rollout failed. */
  revertUrl?: string;
  /** Why this attempt failed (the version stayed in Production). */
  failure?: string;
}

/** One traffic step of a progressive rollout, as it happened (timeline, audit). */
export interface CanaryStepRecord {
  /** Index in the policy's steps. */
  step: number;
  percent: number;
  /** The commit on the base branch that set this step (step 0: the promotion PR's merge). */
  commit?: { sha: string; url?: string; alreadyApplied?: boolean };
  /** When the wait for KServe's split started (ISO): its deadline counts from here across worker restarts. */
  waitStartedAt?: string;
  /** KServe reported the split: the canary revision and when. */
  revision?: string;
  servedAt?: string;
  /** Every analysis sample of this step, in order (all analysis rounds: a continue after a pause adds a round). */
  measurements: Measurement[];
  /** The verdict of the step's last analysis round. */
  verdict?: MetricVerdict;
}

/** A canary waiting for a person (inconclusive analysis); continue or abort, attested like an approval. */
export interface CanaryPause {
  /** 1, 2, …: the decision's attestation names it (claims.round), so one made for an earlier pause is stale. */
  id: number;
  step: number;
  reason: string;
  since: string;
  /** No decision by then: aborted (rolled back). */
  deadline: string;
  decision?: { kind: 'continue' | 'abort'; by: string; at: string; verified: boolean; reason?: string };
}

export interface CanaryState {
  /** The step being applied / analysed (index in the policy's steps); carried so a restart resumes there. */
  step: number;
  status: 'running' | 'paused' | 'rolling_back' | 'succeeded' | 'rolled_back' | 'refused';
  /** The KServe revision that served all the traffic before the canary (the `prev` of every split). */
  previousRevision?: string;
  steps: CanaryStepRecord[];
  /** How many pauses so far (the next pause's id is pauses + 1). */
  pauses: number;
  pause?: CanaryPause;
  /** A failed or aborted canary: the failing metric(s) with query and values, and the 0 % commit. */
  failure?: { reason: string; metrics: Array<{ metric: string; query?: string; values: Array<number | null>; phases: string[] }> };
  rollback?: { sha: string; url?: string; previousServing?: boolean; detail?: string };
}

export interface LifecycleState {
  model: string;
  version: number;
  workflowId: string;
  stage: Stage;
  phase: Phase;
  outcome?: Outcome;
  outcomeReason?: string;
  facts?: VersionFacts;
  policy?: ModelPolicy;
  evaluation?: EvaluationResult;
  approvals: Approval[];
  /** Starts at 1; a dropped round (PR head moved, checks failed) starts the next one. Undefined = 1. */
  approvalRound?: number;
  rejection?: { by: string; reason: string; at: string; verified?: boolean };
  /** Verification keys of attested decisions, loaded from the worker by an activity (never from a message). */
  trust?: { keys: VerificationKeys; loadedAt: string };
  /** Who asked for the promotion, from a verified `promote` attestation (and on whose behalf). */
  requestedBy?: { identity: string; onBehalfOf?: string; channel: string };
  /** Further verified promotion requests of the same version (each is a registrant too). */
  alsoRequestedBy?: Array<{ identity: string; onBehalfOf?: string; channel: string }>;
  approvalDeadline?: string;
  pullRequest?: PullRequestRef;
  previousProductionVersion?: number;
  /** Copied from the input: this run re-promotes or rolls back (the audit marks it). */
  request?: PromotionRequest & {
    by?: string;
    /** This run's key for its own GitOps branches: `<kind>-<start time>` (set once, carried across continue-as-new). */
    run?: string;
  };
  /** The fencing token of the Production lock grant this run holds or last held. */
  fence?: number;
  /** Waiting for the model's Production lock: give up (lock_wait_timed_out) at this time. Carried across runs. */
  lockWaitDeadline?: string;
  /** The evaluation re-run under the lock against what served at that moment. */
  recheck?: EvaluationResult;
  /** How many times this run of the lifecycle continued as new (one story across Temporal runs). */
  continuedAsNew?: number;
  supersededBy?: number;
  /** GitOps mode: the latest retire attempt (retire-steps.ts). */
  retirement?: RetirementRecord;
  promotedAt?: string;
  /** GitOps with deployment.canary: the progressive rollout (canary-steps.ts). */
  canary?: CanaryState;
  timeline: TimelineEntry[];
}

/**
 * A decision: a front door's `attestation` (who, channel, comment and reason are then taken from its signed
 * claims), or — only where the policy sets requireVerifiedIdentity: false — the bare fields, recorded unverified.
 */
export interface ApproveInput {
  attestation?: Attestation;
  by?: string;
  comment?: string;
  /** cli, api, slack, github … recorded in the timeline. */
  via?: string;
}

export interface RejectInput {
  attestation?: Attestation;
  by?: string;
  reason?: string;
  via?: string;
}

export interface RetireInput {
  attestation?: Attestation;
  by?: string;
  reason?: string;
  via?: string;
}

/** Continue or abort a paused canary: attested (kinds canary-continue / canary-abort), like an approval. */
export interface CanaryDecisionInput {
  attestation?: Attestation;
  by?: string;
  comment?: string;
  reason?: string;
  via?: string;
}

export interface SupersededInput {
  byVersion: number;
  byWorkflowId: string;
}

export interface SupersedeAckInput {
  version: number;
}

/**
 * A webhook's word that something happened to the PR. Only a hint: the lifecycle re-reads the PR from the Git
 * host before acting, so nothing here is trusted (any Temporal client can send this signal).
 */
export interface PullRequestEvent {
  action?: 'merged' | 'closed';
  hint?: true;
  deliveryId?: string;
  /** Sent by older front doors; ignored. */
  by?: string;
  mergeSha?: string;
  headSha?: string;
}

export interface LockRequest {
  requestId: string;
  workflowId: string;
  /** How long the holder may keep the lock before it is taken back (covers the rollout deadline). */
  leaseMs?: number;
}

export interface LockGrant {
  requestId: string;
  /**
   * Fencing token of this grant (monotonic per model, also the registered model's `modelgate.lock_token` tag):
   * Production-changing activities refuse a token that is not the newest. Absent from older lock runs.
   */
  token?: number;
  /** The lease the lock granted; the holder stops changing Production when it runs out. */
  leaseMs?: number;
}

// ---- lifecycle messages ----
export const approveUpdate = defineUpdate<LifecycleState, [ApproveInput]>('approve');
export const rejectUpdate = defineUpdate<LifecycleState, [RejectInput]>('reject');
export const retireUpdate = defineUpdate<LifecycleState, [RetireInput]>('retire');
/** A paused (inconclusive) canary goes on with its step's analysis anew. */
export const canaryContinueUpdate = defineUpdate<LifecycleState, [CanaryDecisionInput]>('canaryContinue');
/** A paused canary is rolled back to the previous version (canaryTrafficPercent: 0). */
export const canaryAbortUpdate = defineUpdate<LifecycleState, [CanaryDecisionInput]>('canaryAbort');
export const supersededSignal = defineSignal<[SupersededInput]>('superseded');
export const supersedeAckSignal = defineSignal<[SupersedeAckInput]>('supersedeAck');
export const pullRequestSignal = defineSignal<[PullRequestEvent]>('pullRequest');
export const lockGrantedSignal = defineSignal<[LockGrant]>('lockGranted');
/** The lock took a grant back (lease ran out): the holder must stop; its token is already stale. */
export const lockRevokedSignal = defineSignal<[LockGrant]>('lockRevoked');
export const stateQuery = defineQuery<LifecycleState>('state');
/**
 * A verified promotion request for a lifecycle that was already running (started by a webhook or the
 * reconciler): it names its requester as a registrant, which only ever makes four-eyes stricter.
 */
export const requestPromotionUpdate = defineUpdate<LifecycleState, [{ attestation: Attestation }]>('requestPromotion');
/** Reload the worker's verification keys (a front door asks after a decision was refused for an unknown key id). */
export const refreshTrustUpdate = defineUpdate<{ kids: string[] }, []>('refreshTrust');

// ---- lock messages ----
export const acquireLockSignal = defineSignal<[LockRequest]>('acquire');
export const releaseLockSignal = defineSignal<[LockGrant]>('release');
export const lockStateQuery = defineQuery<{ holder?: LockRequest & { token?: number; grantedAt?: string }; queue: LockRequest[]; token?: number }>('lockState');

/** ApplicationFailure types the client and CLI map to one-line errors. */
export const FailureTypes = {
  NotAwaitingApproval: 'NotAwaitingApproval',
  UnauthorizedApprover: 'UnauthorizedApprover',
  SelfApproval: 'SelfApproval',
  DuplicateApproval: 'DuplicateApproval',
  InvalidInput: 'InvalidInput',
  NoPolicy: 'NoPolicy',
  RegistrationFailed: 'RegistrationFailed',
  VersionNotFound: 'VersionNotFound',
  MlflowPermanent: 'MlflowPermanent',
  /** No attestation, or one that does not verify for this decision. */
  UnverifiedDecision: 'UnverifiedDecision',
  /** Signed with a key id the workflow has not loaded: the front door refreshes the keys and retries once. */
  UntrustedKey: 'UntrustedKey',
  /** Attested for an earlier approval round or another PR head. */
  StaleDecision: 'StaleDecision',
  /** Four-eyes cannot tell who registered the version, so nobody may approve it (fail closed). */
  UnknownRegistrant: 'UnknownRegistrant',
  /** A Production-changing activity saw a newer fencing token than its grant's: another holder owns the lock. */
  StaleFence: 'StaleFence',
  /** A rollback to a version that never was Production, or that serves already. */
  NotARollbackTarget: 'NotARollbackTarget',
  /** A plain approval of a version older than the one serving: that is a rollback. */
  OlderThanServing: 'OlderThanServing',
  /** A canary decision while no canary of the version waits for one. */
  CanaryNotPaused: 'CanaryNotPaused',
} as const;
