/**
 * Names modelgate writes into MLflow. The lifecycle records every transition in an alias and these tags, and
 * the stage once: MLflow's stage while the registry serves stages, else the `modelgate.stage` tag. The
 * timestamps (staged_at, promoted_at, archived_at) and superseded_by tell the story without stages too.
 */
export const ALIAS = { staging: 'staging', production: 'production' } as const;

export const TAG = {
  stage: 'modelgate.stage',
  workflowId: 'modelgate.workflow_id',
  outcome: 'modelgate.outcome',
  reasons: 'modelgate.reasons',
  evaluation: 'modelgate.evaluation',
  evaluatedAt: 'modelgate.evaluated_at',
  /** `failed` when the re-check under the lock refused the promotion (reasons in modelgate.reasons). */
  recheck: 'modelgate.recheck',
  stagedAt: 'modelgate.staged_at',
  approvedBy: 'modelgate.approved_by',
  approvedAt: 'modelgate.approved_at',
  rejectedBy: 'modelgate.rejected_by',
  promotedAt: 'modelgate.promoted_at',
  previousVersion: 'modelgate.previous_production_version',
  supersededBy: 'modelgate.superseded_by',
  archivedAt: 'modelgate.archived_at',
  prUrl: 'modelgate.pr_url',
  mergeSha: 'modelgate.merge_sha',
  storageUri: 'modelgate.storage_uri',
  readyRevision: 'modelgate.ready_revision',
  deploy: 'modelgate.deploy',
  flag: 'modelgate.flag',
  /** GitOps retire: the PR that took the InferenceService off the version, and its merge. */
  retirePrUrl: 'modelgate.retire_pr_url',
  retireMergeSha: 'modelgate.retire_merge_sha',
  /** On the previous version a GitOps retire (onRetire: previous) made Production again: which retire. */
  reinstatedBy: 'modelgate.reinstated_by',
} as const;


/** Tags on the registered model itself. */
export const TAG_MODEL = {
  /** The Production lock's current fencing token (decimal); Production-changing activities check it first. */
  lockToken: 'modelgate.lock_token',
} as const;
