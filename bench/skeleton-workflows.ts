/**
 * The baselines' worker side and client side: bundles bench/workflows once, runs them on a worker with the same
 * settings as the modelgate worker (SDK defaults, same connection), and drives a skeleton promotion with the
 * same client protocol as a real one (start → poll state → update → poll state).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { bundleWorkflowCode, Worker, type NativeConnection } from '@temporalio/worker';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { pollUntil } from './support.js';
import {
  SKELETON_WORKFLOW,
  skeletonApproveUpdate,
  skeletonStateQuery,
  type NoopActivities,
  type SkeletonInput,
  type SkeletonPhase,
} from './workflows/definitions.js';

/** Bundles the baselines into `<dir>/baseline-bundle.js` (a file, so a child worker process can load it too). */
export async function bundleBaselines(dir: string): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(PROJECT_ROOT, 'dist', 'bench', 'workflows', 'index.js'),
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  const path = join(dir, 'baseline-bundle.js');
  writeFileSync(path, code);
  return path;
}

export const noopActivities: NoopActivities = {
  async noop() {},
};

/**
 * Same options as createWorker passes when nothing is overridden: connection, namespace, queue, bundle.
 * `activities: {}` makes a workflow-only worker (P6 measures workflow memory apart from activity I/O).
 */
export async function createBaselineWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  bundlePath: string;
  activities?: object;
}): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    activities: opts.activities ?? noopActivities,
    workflowBundle: { codePath: opts.bundlePath },
  });
}

export interface PromotionTiming {
  /** start → client sees awaiting approval. */
  toAwaitingMs: number;
  /** the approve update's round trip. */
  approveMs: number;
  /** update answered → client sees production. */
  toProductionMs: number;
  totalMs: number;
}

/** One skeleton promotion, timed like a real one. */
export async function runSkeletonPromotion(
  client: Client,
  taskQueue: string,
  workflowId: string,
  shape: SkeletonInput,
  pollMs: number,
): Promise<PromotionTiming> {
  const t0 = performance.now();
  const handle = await client.workflow.start(SKELETON_WORKFLOW, { taskQueue, workflowId, args: [shape] });
  const phaseIs = (phase: SkeletonPhase) =>
    pollUntil(
      `${workflowId} in ${phase}`,
      async () => ((await handle.query(skeletonStateQuery)).phase === phase ? true : undefined),
      { intervalMs: pollMs, timeoutMs: 300_000 },
    );
  await phaseIs('awaiting_approval');
  const t1 = performance.now();
  await handle.executeUpdate(skeletonApproveUpdate, { args: [{ by: 'alice' }], updateId: 'approve:alice' });
  const t2 = performance.now();
  await phaseIs('production');
  const t3 = performance.now();
  return { toAwaitingMs: t1 - t0, approveMs: t2 - t1, toProductionMs: t3 - t2, totalMs: t3 - t0 };
}
