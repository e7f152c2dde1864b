/**
 * The answer of `GET /v1/models/:model/active`, shared by the API and the gateway client. Every field is always
 * present (null when unknown) so gateways can map it without optional-chaining; `stale` appears only when
 * the value could not be confirmed with MLflow.
 */
export interface ActiveVersion {
  model: string;
  version: number;
  runId: string | null;
  /** Where the serving runtime loads the files from (tag modelgate.storage_uri, else MLflow's download URI). */
  storageUri: string | null;
  /** MLflow stage of the version (Production while the lifecycle holds it). */
  stage: string;
  aliases: string[];
  /** Key metrics of the training run (finite values only; JSON has no NaN). */
  metrics: Record<string, number>;
  approvedBy: string[];
  approvedAt: string | null;
  /** Pull request URL of the GitOps change, when the model deploys through GitOps. */
  pullRequest: string | null;
  mergeSha: string | null;
  promotedAt: string | null;
  workflowId: string | null;
  /** true: MLflow was unreachable; this is the last value read from it. */
  stale?: true;
}

/** Error bodies of the endpoint. */
export interface ActiveError {
  code: 'no_production_version' | 'unavailable' | 'invalid_input' | 'unauthorized' | 'invalidation_disabled';
  message: string;
}
