/**
 * The P1/P2 rig: one real modelgate worker (createWorker, real activities, real MLflow, SDK default settings)
 * and one baseline worker with the same settings, each on its own task queue in this process; plus the real
 * promotion as a client sees it (startLifecycle → getState until awaiting_approval → approve → getState until
 * production) and the MLflow fixtures that stand in for a training job.
 */
import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { getState } from '../src/client.js';
import { approve, startLifecycle, TEST_KEYS } from '../test/support/identity.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { createWorker } from '../src/worker.js';
import { lifecycleWorkflowId, type Phase } from '../src/workflows/definitions.js';
import { registerTrainedVersion, type TrainedVersion } from '../test/support/fixtures.js';
import { createBaselineWorker, type PromotionTiming } from './skeleton-workflows.js';
import { meteredRegistry, pollUntil, StopPolling, type BenchContext, type CallMeter } from './support.js';

export interface PromotionRig {
  realQueue: string;
  skeletonQueue: string;
  /** MLflow time of the real worker's activities. */
  meter: CallMeter;
  /** Authoring client for fixtures (not metered: registering is the training job's work). */
  authoring: MlflowClient;
  stop(): Promise<void>;
}

export function benchId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

export async function startRig(ctx: BenchContext, baselineBundlePath: string): Promise<PromotionRig> {
  const realQueue = benchId('bench-real');
  const skeletonQueue = benchId('bench-skeleton');
  const workerMlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 15_000 });
  const { registry, meter } = meteredRegistry(workerMlflow);
  const authoring = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const real = await createWorker({
    connection: ctx.connection,
    namespace: ctx.namespace,
    taskQueue: realQueue,
    client: ctx.client,
    mlflow: registry,
    policies: ctx.policies,
    verificationKeys: () => TEST_KEYS,
  });
  const skeleton = await createBaselineWorker({
    connection: ctx.connection,
    namespace: ctx.namespace,
    taskQueue: skeletonQueue,
    bundlePath: baselineBundlePath,
  });
  const runs = [real.run(), skeleton.run()];
  const stopOne = (w: Worker) => {
    if (w.getState() === 'RUNNING') w.shutdown();
  };
  return {
    realQueue,
    skeletonQueue,
    meter,
    authoring,
    async stop() {
      stopOne(real);
      stopOne(skeleton);
      await Promise.allSettled(runs);
      await workerMlflow.close();
      await authoring.close();
    },
  };
}

export type ReadyVersion = TrainedVersion;

/** A trained, READY version of a fresh model; done before the clock starts. */
export async function readyVersion(mlflow: MlflowClient, model: string): Promise<ReadyVersion> {
  const v = await registerTrainedVersion(mlflow, model, { user: 'dana', metrics: { accuracy: 0.93, latency_p99_ms: 31 } });
  await pollUntil(
    `${model} v${v.version} READY`,
    async () => ((await mlflow.getModelVersion(model, v.version)).status === 'READY' ? true : undefined),
    { intervalMs: 50, timeoutMs: 60_000 },
  );
  return v;
}

/** One real promotion, timed from the client's side. Fails fast if the lifecycle ends instead. */
export async function runRealPromotion(
  ctx: BenchContext,
  taskQueue: string,
  model: string,
  version: number,
  pollMs: number,
): Promise<PromotionTiming> {
  const { client } = ctx;
  const handle = client.workflow.getHandle(lifecycleWorkflowId(model, version));
  let polls = 0;
  const phaseIs = (phase: Phase) =>
    pollUntil(
      `${model} v${version} in ${phase}`,
      async () => {
        const s = await getState(client, model, version);
        if (s.phase === 'done') throw new StopPolling(`${model} v${version} ended ${s.outcome}: ${s.outcomeReason}`);
        if (s.phase === phase) return true;
        // A lifecycle that failed (e.g. a non-retryable activity error) still answers queries: look now and then.
        if (++polls % 25 === 0) {
          const { status } = await handle.describe();
          if (status.name !== 'RUNNING') throw new StopPolling(`${model} v${version}: lifecycle ${status.name} in phase ${s.phase}`);
        }
        return undefined;
      },
      { intervalMs: pollMs, timeoutMs: 300_000 },
    );
  const t0 = performance.now();
  await startLifecycle(client, model, version, { source: 'test', by: 'bench' }, taskQueue);
  await phaseIs('awaiting_approval');
  const t1 = performance.now();
  await approve(client, model, version, { by: 'alice', via: 'bench' });
  const t2 = performance.now();
  await phaseIs('production');
  const t3 = performance.now();
  return { toAwaitingMs: t1 - t0, approveMs: t2 - t1, toProductionMs: t3 - t2, totalMs: t3 - t0 };
}
