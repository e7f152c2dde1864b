/**
 * modelgate_external_errors_total for the activity groups that talk to one outside system each: every failed
 * attempt counts once, labelled with the system (MLflow failures met inside another group count as mlflow).
 * Cancellation is not a failure of the system. The registry activities count their own MLflow errors.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { countExternalError, type ExternalSystem } from '../observability/metrics.js';
import { MlflowError } from '../mlflow/errors.js';

type Activity = (...args: never[]) => Promise<unknown>;

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
        if (!(err instanceof CancelledFailure)) countExternalError(systemOf(err, typeof system === 'function' ? system(args[0]) : system));
        throw err;
      }
    }) as Activity;
  }
  return out as G;
}
