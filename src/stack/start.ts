/**
 * `npm start`: the embedded stack and the service in one process tree. Starts Temporal and MLflow from the
 * venv unless TEMPORAL_ADDRESS / MLFLOW_TRACKING_URI point at existing servers (how production runs), creates
 * the local GitOps repository of the demo, then runs the worker and the HTTP API until SIGINT/SIGTERM.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../config.js';
import { loadActiveConfig } from '../config/active.js';
import { loadApiConfig } from '../config/api.js';
import { loadIdentityConfig } from '../config/identity.js';
import { ensureDemoCredentials } from './demo-credentials.js';
import { buildWorkerFromConfig } from '../worker-main.js';
import { startApi } from '../api/main.js';
import { loadUiConfig } from '../config/ui.js';
import { ActiveVersionCache } from '../active/service.js';
import { initLocalGitopsRepo } from '../gitops/git-provider.js';
import { createLogger } from '../observability/log.js';
import { installTemporalRuntimeMetrics } from '../observability/temporal-metrics.js';
import { loadObservabilityConfig } from '../config/observability.js';
import { startMlflow, startTemporal, type MlflowServer, type TemporalServer } from './embedded.js';

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const config = loadConfig(env);
  const log = createLogger(config.logLevel, { component: 'stack' });
  const dataDir = resolve(config.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // One runtime for the process: MODELGATE_LOG_LEVEL for the SDK's lines, and the SDK's Prometheus exporter when
  // MODELGATE_TEMPORAL_METRICS_ADDRESS asks for it; this process stops the worker itself on Ctrl-C.
  installTemporalRuntimeMetrics({
    bindAddress: loadObservabilityConfig(env).temporalMetricsAddress,
    logLevel: config.logLevel,
    shutdownSignals: [],
    globalTags: { service: 'modelgate' },
  });

  let temporal: TemporalServer | undefined;
  let mlflow: MlflowServer | undefined;
  const stopAll = async () => {
    await Promise.all([temporal?.process.stop(), mlflow?.process.stop()]);
  };
  try {
    if (!config.temporal.address) {
      temporal = await startTemporal({
        dataDir: join(dataDir, 'temporal'),
        port: config.embedded.temporalPort,
        uiPort: config.embedded.temporalUiPort,
      });
      env.TEMPORAL_ADDRESS = temporal.address;
      env.TEMPORAL_UI_URL ??= temporal.uiUrl;
    }
    if (!config.mlflow.trackingUri) {
      mlflow = await startMlflow({ dataDir: join(dataDir, 'mlflow'), port: config.embedded.mlflowPort });
      env.MLFLOW_TRACKING_URI = mlflow.url;
    }
    // The demo GitOps repository (plain-git provider): a bare repo with a sample InferenceService manifest.
    const gitopsRepo = join(dataDir, 'gitops.git');
    if (!existsSync(gitopsRepo)) {
      await initLocalGitopsRepo(gitopsRepo, { model: 'demo-gitops', namespace: 'models', name: 'demo-gitops' });
    }
    env.MODELGATE_GITOPS_REPO ??= gitopsRepo;

    const tokenFiles = ensureDemoCredentials(env, dataDir, loadIdentityConfig(env).directory);
    const full = loadConfig(env);
    const active = loadActiveConfig(env);
    // Worker and API share the process (and its Temporal and MLflow clients): the lifecycle invalidates this
    // cache directly on Production changes. The cache reads MLflow only when asked, after the worker exists.
    let cache: ActiveVersionCache | undefined = undefined;
    const worker = await buildWorkerFromConfig(env, { invalidate: (model) => cache?.invalidate(model) });
    cache = new ActiveVersionCache(worker.mlflow, { ...active.cache, logger: log });
    const client = worker.client;
    const api = await startApi({
      config: full,
      apiConfig: loadApiConfig(env),
      uiConfig: loadUiConfig(env),
      client,
      logger: log.child({ component: 'api' }),
      active: { cache, internalToken: active.internalToken },
    });

    const lines = [
      'modelgate is running',
      `  Temporal      ${env.TEMPORAL_ADDRESS}${temporal ? ' (embedded)' : ''}`,
      `  Temporal UI   ${env.TEMPORAL_UI_URL ?? '(not configured: set TEMPORAL_UI_URL)'}`,
      `  MLflow UI     ${env.MLFLOW_TRACKING_URI}${mlflow ? ' (embedded)' : ''}`,
      `  API           ${api.url}  (active version: ${api.url}/v1/models/<model>/active)`,
      `  Web page      ${api.url}/ui/  (sign in with a demo identity's token from the files below)`,
      `  GitOps repo   ${env.MODELGATE_GITOPS_REPO}`,
      `  policy        ${full.policyFile}`,
      `  data          ${dataDir}`,
    ];
    if (Object.keys(tokenFiles).length) {
      lines.push('  demo identities (API tokens, one file each; the CLI reads MODELGATE_TOKEN_FILE):');
      for (const [name, file] of Object.entries(tokenFiles)) lines.push(`    ${name.padEnd(20)} MODELGATE_TOKEN_FILE=${file}`);
    }
    lines.push('Ctrl-C stops everything.');
    process.stdout.write(`${lines.join('\n')}\n`);

    let stopping = false;
    const stop = () => {
      if (stopping) return;
      stopping = true;
      process.stdout.write('modelgate: stopping\n');
      worker.worker.shutdown();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    await worker.worker.run();
    await api.close();
    await worker.close();
  } finally {
    await stopAll();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`modelgate: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
