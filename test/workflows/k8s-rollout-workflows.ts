/**
 * Test-only workflows that just run one deployment activity with the retry and heartbeat settings a test
 * chooses, so the activity is exercised by a real worker against a real Temporal server.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { DeployActivities, RolloutResult, WaitForRollbackInput, WaitForRolloutInput } from '../../src/activities/deploy.js';

export interface ActivitySettings {
  heartbeatTimeoutMs: number;
  initialIntervalMs: number;
}

function acts(s: ActivitySettings) {
  return proxyActivities<DeployActivities>({
    startToCloseTimeout: '10m',
    heartbeatTimeout: s.heartbeatTimeoutMs,
    retry: { initialInterval: s.initialIntervalMs, backoffCoefficient: 1 },
  });
}

export async function k8sRolloutWorkflow(input: WaitForRolloutInput, s: ActivitySettings): Promise<RolloutResult> {
  return acts(s).waitForRollout(input);
}

export async function k8sRollbackWorkflow(input: WaitForRollbackInput, s: ActivitySettings): Promise<RolloutResult> {
  return acts(s).waitForRollback(input);
}
