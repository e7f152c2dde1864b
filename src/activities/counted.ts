/**
 * modelgate_external_errors_total for every activity group, each talking to one outside system: every failed
 * attempt counts once, labelled with the system (MLflow failures met inside another group count as mlflow).
 * Cancellation is not a failure of the system.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { countExternalError, type ExternalSystem } from '../observability/metrics.js';
import { MlflowError } from '../mlflow/errors.js';
import { GitopsFailureTypes as G } from '../gitops/errors.js';
import { FailureTypes as F } from '../workflows/definitions.js';
import { CanaryFailureTypes } from '../canary/types.js';

type Activity = (...args: never[]) => Promise<unknown>;

/**
 * Failures that are modelgate's own findings or a person's doing — bad input, missing configuration, a manifest
 * that needs fixing, a PR someone closed or changed — not a system failing a call: not counted.
 */
const NOT_EXTERNAL = new Set<string>([
  F.InvalidInput, F.NoPolicy, F.RegistrationFailed, F.NotAwaitingApproval, F.UnauthorizedApprover, F.SelfApproval, F.DuplicateApproval,
  F.StaleFence,
  G.ManifestInvalid, G.ManifestNotFound, G.ManifestUnchanged, G.StorageUriUnresolvable, G.RevertNotApplicable,
  G.GitopsNotConfigured, G.PullRequestClosed, G.PullRequestNotMergeable, G.PullRequestHeadChanged,
  'KubernetesNotConfigured',
  CanaryFailureTypes.PrometheusNotConfigured, CanaryFailureTypes.InvalidCanaryMetric,
]);

function systemOf(err: unknown, fallback: ExternalSystem): ExternalSystem {
  if (err instanceof MlflowError) return 'mlflow';
  if (err instanceof ApplicationFailure && err.type?.startsWith('Mlflow')) return 'mlflow';
  return fallback;
}

/** Wraps each activity of `group`; `system` may depend on the activity's input (e.g. the policy's provider). */
export function countFailures<G extends Record<string, Activity>>(group: G, system: ExternalSystem | ((input: unknown) => ExternalSystem)): G {
  const out: Record<string, Activity> = {};
  for (const [name, fn] of Object.entries(group)) {
    out[name] = (async (...args: never[]) => {
      try {
        return await fn(...args);
      } catch (err) {
        const own = err instanceof ApplicationFailure && err.type !== undefined && err.type !== null && NOT_EXTERNAL.has(err.type);
        if (!(err instanceof CancelledFailure) && !own) countExternalError(systemOf(err, typeof system === 'function' ? system(args[0]) : system));
        throw err;
      }
    });
  }
  return out as G;
}
