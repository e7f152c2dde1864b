/**
 * Shapes of the audit trail: narrow inputs (Temporal visibility rows, lifecycle states, serving facts) and the
 * report that answers the audit questions. Plain data, so the report can be printed as a table, Markdown or JSON.
 */
import type { LifecycleState, PromotionRequest } from '../workflows/definitions.js';

/** One lifecycle as Temporal visibility lists it (search attributes decoded). */
export interface VisibilityRow {
  workflowId: string;
  runId: string;
  type: string;
  /** RUNNING, COMPLETED, FAILED, TERMINATED, CANCELLED, TIMED_OUT, CONTINUED_AS_NEW */
  status: string;
  startTime: string;
  closeTime?: string;
  model?: string;
  version?: number;
  stage?: string;
  approvers: string[];
  outcome?: string;
}

/** What the audit reads from Temporal. */
export interface LifecycleReader {
  /** Visibility list query (newest first as the server orders it), at most `limit` rows. */
  list(query: string, opts?: { limit?: number }): Promise<VisibilityRow[]>;
  /** The lifecycle's state, or null when there is no lifecycle or it cannot be read in time. */
  state(model: string, version: number): Promise<LifecycleState | null>;
  /** Every run of the version's lifecycle (one workflow id; re-promotions and rollbacks are new runs), oldest first. */
  runs?(model: string, version: number): Promise<LifecycleRun[]>;
  /** The request (again / rollback) a run was started with; undefined for a version's first run. */
  request?(workflowId: string, runId: string): Promise<RunRequest | undefined>;
}

/** Why a run that is not the version's first was started, and by whom when its state says. */
export type RunRequest = PromotionRequest & { by?: string };

/** One run of a version's lifecycle. */
export interface LifecycleRun {
  workflowId: string;
  runId: string;
  status: string;
  startTime: string;
  closeTime?: string;
  outcome?: string;
  request?: RunRequest;
  /** How many earlier Temporal runs continued as new into this one (one run of the story; bounded histories). */
  continuedAsNew?: number;
  /** The run's state (its result once completed), null when it cannot be read. */
  state: LifecycleState | null;
}

/** What a GitOps manifest (or the cluster) says is deployed for a model. */
export interface ServingFacts {
  /** Where this comes from, e.g. `github:acme/deploy@main:models/churn.yaml` or `cluster:ml/churn`. */
  source: string;
  storageUri?: string;
  /** Commit or resource version read. */
  revision?: string;
  detail?: string;
}

export interface ServingReader {
  describe(model: string): Promise<ServingFacts | null>;
}

/** A period during which a version was the model's Production version; `to` absent: still is. */
export interface ProductionInterval {
  version: number;
  from: string;
  to?: string;
  endedBy?: string;
  source: 'workflow' | 'mlflow-tags';
}

export interface MetricDiffRow {
  metric: string;
  current: number | null;
  previous: number | null;
  /** current − previous, when both exist. */
  delta: number | null;
}

export interface ApprovalRecord {
  by: string;
  at?: string;
  via?: string;
  comment?: string;
  /** false: accepted without a verified identity (policy requireVerifiedIdentity: false). */
  verified?: boolean;
  round?: number;
}

export interface AuditReport {
  model: string;
  version: number;
  generatedAt: string;
  /** Why this version is the subject: asked for, serving now, or serving at `productionAt.at`. */
  subject: 'requested' | 'production' | 'production_at';
  /** Q1: what is serving. */
  serving: {
    productionVersion: number | null;
    subjectIsServing: boolean;
    storageUri: string | null;
    stage: string;
    aliases: string[];
    manifest: (ServingFacts & { agrees: boolean | null }) | null;
  };
  /** Q2: its metrics (the training run's). */
  metrics: Record<string, number>;
  /** Q3: when it was trained. */
  training: {
    runId: string | null;
    runName: string | null;
    experimentId: string | null;
    startedAt: string | null;
    endedAt: string | null;
    user: string | null;
    status: string | null;
  };
  /** Q4: what data (run tags data.* and training.*, and the run's params). */
  data: { tags: Record<string, string>; params: Record<string, string> };
  /** Q5: who approved it and when. */
  approval: {
    source: 'workflow' | 'mlflow-tags' | 'none';
    approvals: ApprovalRecord[];
    approvedAt: string | null;
    /** Who counted as registrant under four-eyes (verified sources only); [] = unknown; null = not recorded. */
    registrants: string[] | null;
    pullRequest: { url: string | null; mergeSha: string | null; mergedBy: string | null };
    promotedAt: string | null;
  };
  /** Q6: how it compares with the previous Production version. */
  comparison: {
    previousVersion: number | null;
    source: 'workflow' | 'mlflow-tags' | 'timeline' | null;
    rows: MetricDiffRow[];
  };
  /** Q7: which version was Production at a given time (when asked). */
  productionAt: { at: string; version: number | null } | null;
  productionHistory: ProductionInterval[];
  lifecycle: { workflowId: string; status: string | null; stage: string | null; phase: string | null; outcome: string | null } | null;
  /** Every run of the subject's lifecycle, oldest first (re-promotions and rollbacks marked with their reason). */
  runs: Array<{ runId: string; status: string; startTime: string; closeTime: string | null; outcome: string | null; request: RunRequest | null }>;
  /** A progressively rolled-out version: per step its commit, the split KServe served and the analysis results. */
  canary: CanaryAudit | null;
  /** Gaps and disagreements found while answering (Temporal unreachable, manifest differs…). */
  notes: string[];
}

export interface CanaryAudit {
  status: string;
  previousRevision: string | null;
  steps: Array<{
    step: number;
    percent: number;
    commit: string | null;
    revision: string | null;
    servedAt: string | null;
    verdict: string | null;
    /** Per metric, the values in order (null: no value, e.g. Prometheus unreachable) and their phases. */
    metrics: Array<{ metric: string; query: string | null; values: Array<number | null>; phases: string[] }>;
  }>;
  pauses: Array<{ id: number; step: number; reason: string; decision: string | null; by: string | null; at: string | null }>;
  failure: { reason: string } | null;
  rollback: { commit: string; previousServing: boolean | null } | null;
}
