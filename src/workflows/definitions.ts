/**
 * The one module shared by workflow code, activities, the client, the API and tests: names of workflows,
 * signals, updates, queries, search-attribute keys, the task queue, and the payload types they carry.
 * Workflow code imports it, so it may only import `@temporalio/workflow`, `@temporalio/common` and types.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { ModelPolicy } from '../policy/types.js';

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
  | 'registration_failed';

export type TriggerSource = 'cli' | 'api' | 'mlflow-webhook' | 'kubeflow' | 'reconciler' | 'test';

export interface LifecycleInput {
  model: string;
  version: number;
  trigger: { source: TriggerSource; by?: string };
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
  /** Who registered the version (MLflow `user_id`, else the run's user). Four-eyes compares against it. */
  registeredBy?: string;
  source: string;
  status: string;
  createdAt: string;
}

export interface Approval {
  by: string;
  at: string;
  comment?: string;
  via: string;
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
  rejection?: { by: string; reason: string; at: string };
  approvalDeadline?: string;
  pullRequest?: PullRequestRef;
  previousProductionVersion?: number;
  supersededBy?: number;
  promotedAt?: string;
  timeline: TimelineEntry[];
}

export interface ApproveInput {
  by: string;
  comment?: string;
  /** cli, api, slack, github … recorded in the timeline. */
  via?: string;
}

export interface RejectInput {
  by: string;
  reason: string;
  via?: string;
}

export interface RetireInput {
  by: string;
  reason?: string;
}

export interface SupersededInput {
  byVersion: number;
  byWorkflowId: string;
}

export interface SupersedeAckInput {
  version: number;
}

export interface PullRequestEvent {
  action: 'merged' | 'closed';
  by: string;
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
}

// ---- lifecycle messages ----
export const approveUpdate = defineUpdate<LifecycleState, [ApproveInput]>('approve');
export const rejectUpdate = defineUpdate<LifecycleState, [RejectInput]>('reject');
export const retireUpdate = defineUpdate<LifecycleState, [RetireInput]>('retire');
export const supersededSignal = defineSignal<[SupersededInput]>('superseded');
export const supersedeAckSignal = defineSignal<[SupersedeAckInput]>('supersedeAck');
export const pullRequestSignal = defineSignal<[PullRequestEvent]>('pullRequest');
export const lockGrantedSignal = defineSignal<[LockGrant]>('lockGranted');
export const stateQuery = defineQuery<LifecycleState>('state');

// ---- lock messages ----
export const acquireLockSignal = defineSignal<[LockRequest]>('acquire');
export const releaseLockSignal = defineSignal<[LockGrant]>('release');
export const lockStateQuery = defineQuery<{ holder?: LockRequest; queue: LockRequest[] }>('lockState');

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
} as const;
