/**
 * patched() ids of workflow changes that running executions must survive (docs/operations.md). An id stays
 * here until no execution started before it can still be open; then `deprecatePatch`, then removal.
 */
export const PATCHES = {
  /** Verification keys loaded at start, beside the policy (older runs load them on the first decision). */
  attestedDecisions: 'attested-decisions-v1',
  /** A `superseded` signal is acted on only when MLflow's production alias names the superseder. */
  verifiedSupersede: 'verified-supersede-v1',
  /** A retire in GitOps mode merges a PR that takes the InferenceService off the version before archiving it. */
  gitopsRetire: 'gitops-retire-v1',
} as const;
