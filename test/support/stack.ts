/**
 * What every test file shares: the addresses of the real Temporal and MLflow servers started by
 * scripts/run-tests.ts, the prebuilt workflow bundle, and unique names so files never collide.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';

export interface TestStack {
  temporalAddress: string;
  mlflowUri: string;
  dataDir: string;
}

export function testStack(): TestStack {
  const temporalAddress = process.env.MODELGATE_TEST_TEMPORAL_ADDRESS;
  const mlflowUri = process.env.MODELGATE_TEST_MLFLOW_URI;
  const dataDir = process.env.MODELGATE_TEST_DATA_DIR;
  if (!temporalAddress || !mlflowUri || !dataDir) {
    throw new Error('run tests through `npm test` (scripts/run-tests.ts starts Temporal and MLflow)');
  }
  return { temporalAddress, mlflowUri, dataDir };
}

/** One environment per test file, on the shared real server. */
export async function connectTestEnv(): Promise<TestWorkflowEnvironment> {
  // Before the first connection creates the Runtime: keep test output to warnings and the runner's report.
  try {
    Runtime.install({ logger: new DefaultLogger((process.env.MODELGATE_TEST_SDK_LOG as 'WARN') ?? 'WARN') });
  } catch {
    // Already installed by an earlier call in this process.
  }
  return TestWorkflowEnvironment.createFromExistingServer({ address: testStack().temporalAddress, namespace: 'default' });
}

export const WORKFLOW_BUNDLE = { codePath: join(PROJECT_ROOT, 'dist', 'workflow-bundle.js') };

export function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
