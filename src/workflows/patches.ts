/**
 * patched() ids of workflow changes that running executions must survive (docs/operations.md). An id stays
 * here until no execution started before it can still be open; then `deprecatePatch`, then removal.
 */
export const PATCHES = {
  /** Verification keys loaded at start, beside the policy (older runs load them on the first decision). */
  attestedDecisions: 'attested-decisions-v1',
  /** A `superseded` signal is acted on only when MLflow's production alias names the superseder. */
  verifiedSupersede: 'verified-supersede-v1',
  /** Lock grants carry a fencing token written to MLflow first; an expired lease is revoked to its holder. */
  fencedLock: 'fenced-lock-v1',
  /**
   * Promotion under a fenced grant: grant wait with re-request, re-check against what serves now, previous
   * version from history, adoption of Production set outside modelgate, retire under the lock, again/rollback.
   */
  fencedPromotion: 'fenced-promotion-v1',
  /** Waiting lifecycles continue as new within a history budget; PR checks back off while nothing changes. */
  boundedHistory: 'bounded-history-v1',
  /**
   * The lock wait counts against the history budget (continue-as-new keeps the queue place) and ends at
   * `deployment.lockWait`; manual merge/revert waits end at their policy timeouts and back off 1 → 15 min.
   */
  boundedWaits: 'bounded-waits-v1',
  /** The lock workflow continues as new within its history budget while a holder holds it, carrying the holder. */
  boundedLock: 'bounded-lock-v1',
  /** A retire in GitOps mode merges a PR that takes the InferenceService off the version before archiving it. */
  gitopsRetire: 'gitops-retire-v1',
  /**
   * GitOps with deployment.canary: the promotion PR sets the first step's canaryTrafficPercent; each later step
   * is a commit of its own; every step waits for KServe's split and runs the analysis (canary-steps.ts).
   */
  canaryRollout: 'canary-rollout-v1',
  /**
   * The approval and lock-wait deadlines are reached when the timer set to them fires (history), not when the
   * clock read in the next task says so: that clock differed between an execution and its replay (TMPRL1100).
   */
  deadlineByTimer: 'deadline-by-timer-v1',
  /** Lifecycles and the lock continue as new a step (≤ 50 events) before the history budget, never past it. */
  budgetHeadroom: 'budget-headroom-v1',
  /** Canary analysis: the metrics due are those whose time the fired timer reached, not those the next clock says. */
  canaryDueByTimer: 'canary-due-by-timer-v1',
} as const;
