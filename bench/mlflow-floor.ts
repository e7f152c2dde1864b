/**
 * The MLflow floor of a promotion: the exact REST calls one real promotion made (method and arguments, from
 * the worker's call trace), issued back to back by a plain loop against another fresh version — no Temporal,
 * no modelgate logic. Any promotion that records stage, alias and tags in MLflow pays at least this, so
 * (skeleton + floor) ÷ skeleton is the lowest P1 the real server allows.
 */
import type { MlflowRegistry } from '../src/mlflow/types.js';
import type { ReadyVersion } from './promotion-rig.js';
import type { TracedCall } from './support.js';

/** Rewrites the recorded promotion's model, version and run ids to the target version's. */
function retarget(args: unknown[], from: ReadyVersion, to: ReadyVersion): unknown[] {
  return args.map((a) => {
    if (a === from.model) return to.model;
    if (a === from.version) return to.version;
    if (from.runId && a === from.runId) return to.runId;
    return a;
  });
}

/** Replays `trace` (recorded on `from`) against `to`, one call after another; returns the wall time in ms. */
export async function replayCalls(mlflow: MlflowRegistry, trace: TracedCall[], from: ReadyVersion, to: ReadyVersion): Promise<number> {
  const t0 = performance.now();
  for (const call of trace) {
    if (call.failed) continue;
    const fn = (mlflow as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[call.method];
    if (typeof fn !== 'function') throw new Error(`MLflow client has no method ${call.method} to replay`);
    await fn.apply(mlflow, retarget(call.args, from, to));
  }
  return performance.now() - t0;
}
