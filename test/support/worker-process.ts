/**
 * The deployed worker (`node dist/src/worker-main.js`) as a child process of a fault test, configured from the
 * environment alone like the compose service: the tests' identities and attestation key, a policy file, its own
 * task queue. The test kills it (SIGKILL) or stops it (SIGTERM) and reads its exit code and output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';
import { TEST_IDENTITIES_YAML, TEST_KEYS, TEST_KID } from './identity.js';
import { eventually } from './wait.js';

// temporal.api.enums.v1 values (the proto package is not a dependency of ours): a normal queue's workflow pollers.
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;

export const WORKER_MAIN = join(PROJECT_ROOT, 'dist', 'src', 'worker-main.js');

export interface WorkerProcess {
  child: ChildProcess;
  /** The SDK's default worker identity (pid@host): how Temporal lists this worker among a queue's pollers. */
  identity: string;
  /** Exit code (null when killed by a signal) and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** SIGKILL; resolves once it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (what Kubernetes and compose send first); resolves with the exit. */
  terminate(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnWorkerProcess(opts: {
  temporalAddress: string;
  mlflowUri: string;
  policyFile: string;
  taskQueue: string;
  env?: Record<string, string>;
}): WorkerProcess {
  const child = spawn(process.execPath, [WORKER_MAIN], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: opts.temporalAddress,
      MLFLOW_TRACKING_URI: opts.mlflowUri,
      MODELGATE_POLICY_FILE: opts.policyFile,
      MODELGATE_TASK_QUEUE: opts.taskQueue,
      MODELGATE_LOG_LEVEL: 'warn',
      MODELGATE_ATTESTATION_PUBLIC_KEYS: `${TEST_KID}=${TEST_KEYS[TEST_KID]}`,
      MODELGATE_IDENTITIES: TEST_IDENTITIES_YAML,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    identity: `${child.pid}@${hostname()}`,
    exited,
    output: () => output,
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
    terminate() {
      if (running()) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Until Temporal lists `worker` among the workflow pollers of `taskQueue` (it is started and polling). */
export function polling(client: Client, taskQueue: string, worker: WorkerProcess, timeoutMs = 30_000): Promise<true> {
  return eventually(
    `${worker.identity} polling ${taskQueue}`,
    async () => {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
        taskQueueType: TASK_QUEUE_TYPE_WORKFLOW,
      });
      return res.pollers.some((p) => p.identity === worker.identity) || undefined;
    },
    timeoutMs,
  );
}
