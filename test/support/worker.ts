/**
 * An in-process modelgate worker for a test file: the real activities against the real MLflow server, the
 * prebuilt bundle, a task queue of its own. The workflow cache is off by default
 * (MODELGATE_TEST_MAX_CACHED_WORKFLOWS=0) so every workflow task replays the whole history: a
 * non-deterministic workflow change fails the suite.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { createWorker, type WorkerDeps } from '../../src/worker.js';
import type { MlflowRegistry } from '../../src/mlflow/types.js';
import type { PolicySource } from '../../src/activities/registry.js';
import { unique } from './stack.js';
import { TEST_KEYS, testDirectory } from './identity.js';

export const TEST_MAX_CACHED_WORKFLOWS = Number(process.env.MODELGATE_TEST_MAX_CACHED_WORKFLOWS ?? '0');

export interface RunningWorker {
  worker: Worker;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startTestWorker(
  env: TestWorkflowEnvironment,
  deps: { mlflow: MlflowRegistry; policies: PolicySource } & Partial<WorkerDeps>,
): Promise<RunningWorker> {
  const taskQueue = deps.taskQueue ?? unique('modelgate-test');
  const worker = await createWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    client: env.client,
    readyPollMs: 200,
    verificationKeys: () => TEST_KEYS,
    identities: testDirectory(),
    maxCachedWorkflows: TEST_MAX_CACHED_WORKFLOWS,
    ...deps,
    taskQueue,
  });
  const running = worker.run();
  return {
    worker,
    taskQueue,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
    },
  };
}

/** Poll `probe` until it returns a value (not undefined) or the deadline passes; no fixed sleeps in tests. */
export { eventually } from './wait.js';
