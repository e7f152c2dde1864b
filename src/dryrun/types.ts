/**
 * The answer to "what would happen if I promoted this version now?", computed without a side effect anywhere:
 * it only reads MLflow, reads the GitOps base branch and at most queries the version's lifecycle. Plain,
 * JSON-serialisable data (no Dates, no Maps, no undefined-vs-null tricks): the API returns it as is, the CLI
 * formats it and the web page's "What if?" panel renders it. Fields are only ever added, never renamed.
 */
import type { IdentityRef } from '../identity/types.js';
import type { EvaluationResult, Phase, Stage } from '../workflows/definitions.js';
import type { ModelPolicy } from '../policy/types.js';

/** Who asks: the API's bearer identity (or the CLI user's). Absent = nobody in particular (no caller section). */
export type DryRunCaller = IdentityRef;

export interface DryRunInput {
  model: string;
  version: number;
  caller?: DryRunCaller;
  /** A policy file's text that is not deployed yet: used for this report only (validated like the deployed file). */
  policyYaml?: string;
}

/** What the page calls; the API's `POST /v1/models/<m>/versions/<v>/dry-run` returns the same report. */
export type DryRun = (input: DryRunInput) => Promise<DryRunReport>;

/** The overall answer, most decisive first. */
export type DryRunOutcome =
  /** Evaluation passes and approvals can be collected: a promotion would go ahead once approved. */
  | 'would_await_approval'
  /** The version serves already: nothing would change. */
  | 'already_serving'
  /** The evaluation gate would reject the version. */
  | 'rejected_by_evaluation'
  /** Nobody could approve it (empty approver list, or four-eyes cannot tell who registered it). */
  | 'no_approver_possible'
  /** Older than the serving version and not a rollback target: going back needs `modelgate rollback`. */
  | 'not_promotable';

export interface DryRunEligibility {
  /** Whether this identity may approve the version now (under the rules the report shows). */
  may: boolean;
  /** Why not, in words for a person ("you registered this version (four-eyes)", "not in the approver list"). */
  reason?: string;
  /** Stable machine code of `reason`: self_approval, not_an_approver, already_approved, unknown_registrant, not_awaiting_approval. */
  code?: string;
}

export interface DryRunReport {
  model: string;
  version: number;
  /** When the report was computed (ISO 8601); it is a snapshot, the real run re-reads everything. */
  generatedAt: string;
  outcome: DryRunOutcome;
  /** One line per reason the promotion would not go through (empty when it would await approval). */
  blockers: string[];
  /** Things worth knowing that do not block (e.g. the baseline has no value for a metric). */
  notes: string[];

  policy: {
    /** `model`: the model has its own entry; `defaults`: it is not in the policy and gets the file's defaults. */
    source: 'model' | 'defaults';
    /** `deployed`: the policy the worker runs with; `supplied`: the text sent with the request (--policy). */
    file: 'deployed' | 'supplied';
    /** File name the policy was read from (as given; no contents). */
    fileName: string;
    /** The resolved policy the run would work under (the rollback section applied when it is a rollback). */
    effective: ModelPolicy;
  };

  /** The version as MLflow has it now. */
  candidate: {
    stage: Stage;
    status: string;
    runId?: string;
    createdAt: string;
    /** MLflow's server-side user, mapped through the directory (a registrant under four-eyes). */
    registrant?: string;
    /** When modelgate last made it Production: set = a rollback target. */
    promotedBefore?: string;
  };

  /** What serves now (registry: the production alias/stage; GitOps: the base branch manifest's version when known). */
  serving: {
    version?: number;
    /** Where that answer came from. */
    source: 'registry' | 'gitops-manifest' | 'none';
  };

  /** promote: newer than serving (or nothing serves); rollback: older and served before; none: it serves already. */
  move: {
    kind: 'promote' | 'rollback' | 'none' | 'refused';
    detail: string;
  };

  evaluation: {
    /** A rollback skips the gate unless `rollback.skipEvaluation: false`. */
    skipped: boolean;
    /** The gate's result against the version serving now (absent when skipped). */
    result?: EvaluationResult;
  };

  approval: {
    approvers: string[];
    quorum: number;
    fourEyes: boolean;
    expiresAfterMs: number;
    /** Who counts as the version's registrant (MLflow user mapped, verified requesters of a running lifecycle). */
    registrants: string[];
    /** False when four-eyes is on, nobody knows the registrant and the policy denies then (fail closed). */
    fourEyesSatisfiable: boolean;
    /** Approvals already given in the current round of a running lifecycle (identities). */
    approvedBy: string[];
    /** The lifecycle's current round; absent when no lifecycle is awaiting approval. */
    round?: number;
    /** Whether the promotion would start a new approval round (and why), e.g. a rollback or an ended lifecycle. */
    reapproval: { needed: boolean; reason: string };
    /** Present when the report was asked for by someone: whether they may approve, and why not. */
    caller?: DryRunEligibility & { identity: string };
  };

  /** The version's lifecycle as its state query says (read only; absent = no lifecycle was ever started). */
  lifecycle?: {
    workflowId: string;
    /** running: a lifecycle is open; ended: its last run finished (a promotion would be a new run). */
    status: 'running' | 'ended';
    phase?: Phase;
    outcome?: string;
  };

  /** GitOps mode: the pull request the promotion would open. */
  gitops?: {
    provider: 'git' | 'github';
    repo: string;
    baseBranch: string;
    manifestPath: string;
    title: string;
    /** What the base branch points KServe at now, and what the PR would point it at. */
    currentStorageUri?: string;
    proposedStorageUri: string;
    /** A unified diff of the manifest (empty when the base already serves this version). */
    diff: string;
    /** Set when the base branch manifest could not be read (the rest of the report still stands). */
    error?: string;
  };

  /** What the run would wait for after the change, before it calls the version Production. */
  rollout: {
    mode: 'registry' | 'gitops';
    /** One line a person reads, e.g. "InferenceService ml/churn Ready on the new storageUri within 15m". */
    waitsFor: string;
    namespace?: string;
    inferenceService?: string;
    deploymentMode?: 'Serverless' | 'RawDeployment';
    deadlineMs?: number;
    argocdApplication?: { namespace: string; name: string };
    /** A readiness probe of the model server is checked too. */
    smokeCheck?: boolean;
    /** auto: a failed rollout is reverted automatically; approval: it waits for a person. */
    onFailure?: 'auto' | 'approval';
  };
}
