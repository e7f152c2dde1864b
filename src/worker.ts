/**
 * The worker as a library: hands the external clients it is given, as narrow interfaces, to the activity
 * factories and runs the prebuilt workflow bundle. `createWorker` is what worker-main.ts (the deployed
 * process, `node dist/src/worker-main.js`), `npm start`, tests and benchmarks build on; this module imports
 * nothing of them and runs nothing when imported.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createRegistryActivities, type PolicySource } from './activities/registry.js';
import { createLockActivities } from './activities/lock.js';
import { createGitopsActivities, type GitopsActivityDeps } from './activities/gitops.js';
import { createCanaryGitopsActivities } from './activities/canary-gitops.js';
import { createCanaryK8sActivities } from './activities/canary-k8s.js';
import type { CanaryActivities } from './canary/types.js';
import { createDeployActivities } from './activities/deploy.js';
import { createNotifyActivities } from './activities/notify.js';
import { createCacheActivities } from './activities/cache.js';
import { createTrustActivities } from './activities/trust.js';
import { createCanaryActivities, type CanaryActivityDeps } from './activities/canary.js';
import { countFailures } from './activities/counted.js';
import { activityLogging } from './observability/activity-log.js';
import type { Logger } from './observability/log.js';
import type { MlflowRegistry } from './mlflow/types.js';
import type { StagesMode } from './config/registry.js';
import type { GitopsPolicy } from './policy/types.js';
import type { GitopsProvider } from './gitops/provider.js';
import type { IdentityDirectory } from './identity/directory.js';
import type { VerificationKeys } from './workflows/attestation.js';
import { PROJECT_ROOT } from './stack/embedded.js';
import { TASK_QUEUE } from './workflows/definitions.js';
import type { WorkerDeployment } from './config.js';

export interface WorkerDeps {
  connection: NativeConnection;
  namespace: string;
  taskQueue?: string;
  /** For the lock activity's signal-with-start. */
  client: Client;
  mlflow: MlflowRegistry;
  policies: PolicySource;
  /** MODELGATE_REGISTRY_STAGES: whether the registry serves stages (default auto: found out once per process). */
  registryStages?: StagesMode;
  /**
   * Verification keys of the front doors' attestations (kid → raw Ed25519 public key). None: no decision can be
   * verified, so under the default policy nothing can be approved.
   */
  verificationKeys?: () => VerificationKeys;
  /** The identity directory: MLflow users and GitHub logins → identities. */
  identities?: IdentityDirectory;
  gitops?: {
    providerFor(policy: GitopsPolicy): GitopsProvider;
    /** MODELGATE_GITOPS_MARKER_SECRET: signs and verifies modelgate's PR markers (same on every worker). */
    markerSecret?: string;
  };
  k8s?: Parameters<typeof createDeployActivities>[0];
  notify?: Parameters<typeof createNotifyActivities>[0];
  cache?: Parameters<typeof createCacheActivities>[0];
  /** Canary analysis: the Prometheus client (MODELGATE_PROMETHEUS_URL); none: canaries fail PrometheusNotConfigured. */
  canary?: CanaryActivityDeps;
  /**
   * Replaces the Prometheus-backed `measureCanary` (benchmarks and tests that need no real Prometheus); the
   * deployed worker never sets it, so there is exactly one `measureCanary` either way.
   */
  canaryAnalysis?: CanaryActivities;
  links?: { mlflowUiUrl?: string; temporalUiUrl?: string };
  maxCachedWorkflows?: number;
  /**
   * On shutdown (SIGTERM): how long in-flight activities may finish before they are cancelled (graceMs), and when
   * the worker gives up waiting and its run() throws (forceMs). Unset: the SDK's (no grace, wait forever).
   */
  shutdown?: { graceMs: number; forceMs?: number };
  /** Sticky queue schedule-to-start timeout: how soon another worker takes a dead worker's cached workflows. */
  stickyQueueTimeoutMs?: number;
  /**
   * Worker Versioning (MODELGATE_WORKER_DEPLOYMENT_NAME / _BUILD_ID): poll as this deployment version, every
   * workflow AUTO_UPGRADE. Never PINNED: a Production lifecycle stays open for months, so it must move to new
   * builds, which is what patched() makes safe. Unset: unversioned, as before.
   */
  deployment?: WorkerDeployment;
  /** Pino logger for one line per activity attempt (model, version, workflow id); none: no activity lines. */
  logger?: Logger;
  /** Overrides for tests (poll intervals, identity). */
  workerOptions?: Partial<WorkerOptions>;
  readyPollMs?: number;
}

export const WORKFLOW_BUNDLE_PATH = join(PROJECT_ROOT, 'dist', 'workflow-bundle.js');

export async function createWorker(deps: WorkerDeps): Promise<Worker> {
  const taskQueue = deps.taskQueue ?? TASK_QUEUE;
  const gitopsDeps: GitopsActivityDeps = {
    providerFor: (policy) => {
      if (!deps.gitops) throw new Error('GitOps is not configured for this worker');
      return deps.gitops.providerFor(policy);
    },
    mlflow: deps.mlflow,
    links: { ...deps.links, namespace: deps.namespace },
    // Empty: opening a PR fails with GitopsNotConfigured (never an unsigned or guessable marker).
    markerSecret: deps.gitops?.markerSecret ?? '',
    identities: deps.identities,
  };
  const gitopsService = (input: unknown) => ((input as { policy?: GitopsPolicy } | undefined)?.policy?.provider === 'github' ? 'github' : 'git');
  const activities = {
    ...countFailures(
      createRegistryActivities({
        mlflow: deps.mlflow,
        policies: deps.policies,
        readyPollMs: deps.readyPollMs,
        identities: deps.identities,
        stages: deps.registryStages,
      }),
      'mlflow',
    ),
    ...createTrustActivities({ keys: deps.verificationKeys ?? (() => ({})) }),
    ...countFailures(createLockActivities({ client: deps.client, taskQueue, mlflow: deps.mlflow }), 'temporal'),
    ...countFailures(createGitopsActivities(gitopsDeps), gitopsService),
    ...countFailures(createCanaryGitopsActivities(gitopsDeps), gitopsService),
    ...countFailures(createCanaryK8sActivities({ k8s: deps.k8s?.k8s, heartbeatIntervalMs: deps.k8s?.heartbeatIntervalMs, watchTimeoutSeconds: deps.k8s?.watchTimeoutSeconds }), 'kubernetes'),
    ...countFailures(createDeployActivities(deps.k8s ?? { k8s: undefined }), 'kubernetes'),
    ...countFailures(createNotifyActivities(deps.notify ?? { slack: undefined, links: { ...deps.links, namespace: deps.namespace } }), 'slack'),
    ...createCacheActivities(deps.cache ?? {}),
    // Prometheus trouble is a measurement (phase error), so what is counted here is only misconfiguration.
    ...countFailures({ ...(deps.canaryAnalysis ?? createCanaryActivities(deps.canary ?? {})) }, 'prometheus'),
  };
  // The bundle is built once by `npm run build`; bundling at start would cost seconds on every restart.
  const workflowOptions = existsSync(WORKFLOW_BUNDLE_PATH)
    ? { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }
    : { workflowsPath: join(PROJECT_ROOT, 'dist', 'src', 'workflows', 'index.js') };
  return Worker.create({
    connection: deps.connection,
    namespace: deps.namespace,
    taskQueue,
    activities,
    ...workflowOptions,
    ...(deps.maxCachedWorkflows !== undefined ? { maxCachedWorkflows: deps.maxCachedWorkflows } : {}),
    ...(deps.shutdown ? { shutdownGraceTime: deps.shutdown.graceMs } : {}),
    ...(deps.shutdown?.forceMs !== undefined ? { shutdownForceTime: deps.shutdown.forceMs } : {}),
    ...(deps.stickyQueueTimeoutMs !== undefined ? { stickyQueueScheduleToStartTimeout: deps.stickyQueueTimeoutMs } : {}),
    ...(deps.deployment
      ? { workerDeploymentOptions: { version: deps.deployment, useWorkerVersioning: true, defaultVersioningBehavior: 'AUTO_UPGRADE' as const } }
      : {}),
    ...(deps.logger ? { interceptors: { activity: [activityLogging(deps.logger)] } } : {}),
    ...deps.workerOptions,
  });
}
