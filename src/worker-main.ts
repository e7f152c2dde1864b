/**
 * The worker process, `node dist/src/worker-main.js` (the image's default command, the compose
 * modelgate-worker service): runs a worker from the environment. Validates every configuration section first
 * (a bad key stops the start with the key and the reason), then builds each external client once and hands it
 * to createWorker (worker.ts, the library). `npm start` imports buildWorkerFromConfig from here.
 */
import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config, type WorkerDeployment } from './config.js';
import { loadK8sConfig, createK8sClient } from './config/k8s.js';
import { loadApiConfig } from './config/api.js';
import { loadActiveConfig } from './config/active.js';
import { loadRegistryConfig } from './config/registry.js';
import { loadGitopsConfig, createProviderFactory } from './config/gitops.js';
import { MlflowClient } from './mlflow/client.js';
import { createInvalidationClient } from './active/invalidation-client.js';
import { loadPolicyFile } from './policy/load.js';
import { createWorker } from './worker.js';
import { createLogger, type Logger } from './observability/log.js';
import { versionRouting } from './worker-version.js';
import { createSlackClient } from './slack/client.js';
import { loadObservabilityConfig } from './config/observability.js';
import { createPrometheusClient, loadPrometheusConfig } from './config/prometheus.js';
import { installTemporalRuntimeMetrics } from './observability/temporal-metrics.js';
import { startMetricsServer } from './observability/metrics-server.js';
import { TASK_QUEUE } from './workflows/definitions.js';

export interface WorkerRuntime {
  worker: Worker;
  config: Config;
  /** The worker's own Temporal client and MLflow client, for whatever else runs in the same process (npm start). */
  client: Client;
  mlflow: MlflowClient;
  close(): Promise<void>;
}

/** Build (but do not run) a worker from env. Shared by `node dist/src/worker-main.js` and `npm start`. */
export async function buildWorkerFromConfig(
  env: NodeJS.ProcessEnv,
  local?: { invalidate(model: string): void },
): Promise<WorkerRuntime> {
  const config = loadConfig(env);
  if (!config.temporal.address) throw new ConfigError('TEMPORAL_ADDRESS: required to run a worker (host:port)');
  if (!config.mlflow.trackingUri) throw new ConfigError('MLFLOW_TRACKING_URI: required to run a worker (http(s) URL)');
  const k8sConfig = loadK8sConfig(env);
  const apiConfig = loadApiConfig(env);
  const activeConfig = loadActiveConfig(env);
  const registryConfig = loadRegistryConfig(env);
  const gitopsConfig = loadGitopsConfig(env);
  const prometheusConfig = loadPrometheusConfig(env);
  // Policy errors name file and line; fail before connecting to anything.
  const policies = loadPolicyFile(config.policyFile);
  const logger = createLogger(config.logLevel, { component: 'worker' });

  const connection = await NativeConnection.connect({
    address: config.temporal.address,
    tls: config.temporal.tls || undefined,
    apiKey: config.temporal.apiKey,
  });
  const clientConnection = await Connection.connect({
    address: config.temporal.address,
    tls: config.temporal.tls || undefined,
    apiKey: config.temporal.apiKey,
  });
  const client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
  const mlflow = new MlflowClient({ trackingUri: config.mlflow.trackingUri, auth: config.mlflow.auth, timeoutMs: config.mlflow.timeoutMs });
  const links = { mlflowUiUrl: config.mlflow.uiUrl, temporalUiUrl: config.temporal.uiUrl };
  const k8s = k8sClientOrNone(k8sConfig);
  // Few SDK retries: the activity's own retry policy decides, within its timeout.
  // Every API replica hears of each Production change (DNS fan-out over a headless Service, or a list).
  const invalidator = activeConfig.invalidateUrls.length
    ? createInvalidationClient({ urls: activeConfig.invalidateUrls, token: activeConfig.internalToken, dns: activeConfig.invalidateDns })
    : undefined;
  const slack = apiConfig.slack.botToken ? createSlackClient({ token: apiConfig.slack.botToken, apiUrl: apiConfig.slack.apiUrl }) : undefined;

  const worker = await createWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue ?? TASK_QUEUE,
    client,
    mlflow,
    policies,
    registryStages: registryConfig.stages,
    verificationKeys: () => apiConfig.identity.verificationKeys,
    identities: apiConfig.identity.directory,
    gitops: { ...createProviderFactory(gitopsConfig), markerSecret: gitopsConfig.markerSecret },
    k8s: { k8s, argocdRefresh: k8sConfig.argocdRefresh },
    notify: { slack, links: { ...links, namespace: config.temporal.namespace } },
    cache: { invalidator, local, logger },
    canary: { prometheus: createPrometheusClient(prometheusConfig) },
    links,
    maxCachedWorkflows: config.worker.maxCachedWorkflows,
    shutdown: { graceMs: config.worker.shutdownGraceMs, forceMs: config.worker.shutdownForceMs },
    stickyQueueTimeoutMs: config.worker.stickyQueueTimeoutMs,
    ...(config.worker.deployment ? { deployment: config.worker.deployment } : {}),
    logger,
  });
  const kids = Object.keys(apiConfig.identity.verificationKeys);
  // Fail loud, not closed in silence: without keys no decision verifies and nothing can be approved.
  if (!kids.length) logger.warn('no attestation verification keys (MODELGATE_ATTESTATION_PUBLIC_KEYS): no decision can be verified');
  // A versioned worker gets no task until its build is current (or ramping): say which build to make current.
  if (config.worker.deployment) await tellRouting(client, config.temporal.namespace, config.worker.deployment, logger);
  logger.info({ taskQueue: config.temporal.taskQueue ?? TASK_QUEUE, policyFile: config.policyFile, models: policies.models(), attestationKeys: kids }, 'worker ready');
  return {
    worker,
    config,
    client,
    mlflow,
    async close() {
      await connection.close();
      await clientConnection.close();
      await mlflow.close();
      await invalidator?.close();
    },
  };
}

/** One line at start on whether this build gets tasks; a warning when it does not (a lookup failure is no reason to stop). */
async function tellRouting(client: Client, namespace: string, deployment: WorkerDeployment, logger: Logger): Promise<void> {
  const { deploymentName, buildId } = deployment;
  try {
    const r = await versionRouting(client, namespace, deployment);
    if (r.routing === 'idle') {
      logger.warn(
        { deploymentName, buildId, currentBuildId: r.currentBuildId ?? null },
        'Worker Versioning: this build is not current: no task arrives until `temporal worker deployment set-current-version` (or a ramp) names it',
      );
    } else logger.info({ deploymentName, buildId, routing: r.routing }, 'Worker Versioning on (AUTO_UPGRADE)');
  } catch (err) {
    logger.warn({ deploymentName, buildId, error: err instanceof Error ? err.message : String(err) }, 'Worker Versioning: could not read the deployment');
  }
}

/**
 * An explicitly configured cluster (MODELGATE_KUBECONFIG, in-cluster) must load or the start fails; without
 * one, a worker on a laptop has no cluster and only policies that verify rollouts need it (their activity
 * then fails saying so).
 */
function k8sClientOrNone(cfg: ReturnType<typeof loadK8sConfig>) {
  try {
    return createK8sClient(cfg);
  } catch (err) {
    if (cfg.source.kind !== 'default') throw err;
    return undefined;
  }
}

export async function runWorkerFromConfig(env: NodeJS.ProcessEnv): Promise<void> {
  // The SDK runtime is installed once, before the first connection: with the Prometheus exporter when asked for.
  const observability = loadObservabilityConfig(env);
  const config = loadConfig(env);
  installTemporalRuntimeMetrics({ bindAddress: observability.temporalMetricsAddress, logLevel: config.logLevel, globalTags: { service: 'modelgate-worker' } });
  // The lifecycle metrics (promotions, stage and approval durations, rollouts, external errors) are recorded
  // by this process's activities: a worker running apart from the API serves them itself.
  const metrics = observability.metricsAddress ? await startMetricsServer(observability.metricsAddress) : undefined;
  if (metrics) createLogger(config.logLevel, { component: 'worker' }).info({ metrics: metrics.url }, 'modelgate metrics served');
  const rt = await buildWorkerFromConfig(env);
  // The SDK's runtime stops the worker on these signals (polling stops, in-flight activities get the grace, then
  // are cancelled); one line says so, since the process may stay up for the whole grace.
  const stopping = (signal: NodeJS.Signals) =>
    createLogger(config.logLevel, { component: 'worker' }).info(
      { signal, shutdownGraceMs: rt.config.worker.shutdownGraceMs, shutdownForceMs: rt.config.worker.shutdownForceMs },
      'worker stopping: in-flight activities may finish within the grace, then are cancelled and handed back',
    );
  process.once('SIGTERM', stopping);
  process.once('SIGINT', stopping);
  try {
    await rt.worker.run();
  } finally {
    await rt.close();
    await metrics?.close();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runWorkerFromConfig(process.env).catch((err: unknown) => {
    process.stderr.write(`modelgate worker: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
