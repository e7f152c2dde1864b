/**
 * Whether Temporal routes tasks to this worker's deployment version. A versioned worker whose build is neither
 * current nor ramping receives nothing, and every lifecycle waits: the one mistake Worker Versioning adds to a
 * deploy (docs/operations.md "Upgrading while lifecycles are running"), so the worker says so at start.
 */
import { isGrpcServiceError, type Client } from '@temporalio/client';
import type { WorkerDeployment } from './config.js';

/** gRPC status NOT_FOUND (its enum lives in @grpc/grpc-js, only a transitive dependency of ours). */
const GRPC_NOT_FOUND = 5;

export interface VersionRouting {
  /** current / ramping: tasks arrive; idle: this build gets none until set-current-version (or a ramp) names it. */
  routing: 'current' | 'ramping' | 'idle';
  /** The build that is current, if any (none: the deployment is new, or unversioned workers are current). */
  currentBuildId?: string;
}

export async function versionRouting(client: Client, namespace: string, d: WorkerDeployment): Promise<VersionRouting> {
  try {
    const { workerDeploymentInfo } = await client.workflowService.describeWorkerDeployment({ namespace, deploymentName: d.deploymentName });
    const rc = workerDeploymentInfo?.routingConfig;
    const currentBuildId = rc?.currentDeploymentVersion?.buildId ?? undefined;
    const current = currentBuildId ? { currentBuildId } : {};
    if (currentBuildId === d.buildId) return { routing: 'current', ...current };
    if (rc?.rampingDeploymentVersion?.buildId === d.buildId && (rc.rampingVersionPercentage ?? 0) > 0) return { routing: 'ramping', ...current };
    return { routing: 'idle', ...current };
  } catch (err) {
    // The deployment appears once a worker of it has polled: before the first one, nothing routes to it.
    if (isGrpcServiceError(err) && Number(err.code) === GRPC_NOT_FOUND) return { routing: 'idle' };
    throw err;
  }
}
