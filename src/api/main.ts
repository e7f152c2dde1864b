/**
 * Starting the HTTP front door: `startApi` (called by `npm start` beside the worker, and usable alone) builds
 * the server, listens on MODELGATE_API_HOST:MODELGATE_API_PORT and runs the MLflow reconciliation loop. Run as
 * a script (`node dist/src/api/main.js`) it loads the configuration from the environment and connects to an
 * existing Temporal and MLflow.
 */
import { pathToFileURL } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import type { Client } from '@temporalio/client';
import { connectClient } from '../client.js';
import { loadConfig, type Config } from '../config.js';
import { loadApiConfig, type ApiConfig } from '../config/api.js';
import { MlflowClient } from '../mlflow/client.js';
import type { AuditDeps } from '../audit/collect.js';
import { loadUiConfig, type UiConfig } from '../config/ui.js';
import { UiSessions } from '../ui/session.js';
import type { MlflowRegistry } from '../mlflow/types.js';
import { createLogger, type Logger } from '../observability/log.js';
import { loadPolicyFile, type PolicySet } from '../policy/load.js';
import { githubWebhookTargets } from './routes/webhook-github.js';
import type { NotifyLinks } from '../slack/blocks.js';
import { startReconciler, type Reconciler } from '../webhooks/reconcile.js';
import { buildServer, type ApiServer } from './server.js';
import { ActiveVersionCache } from '../active/service.js';
import { loadActiveConfig } from '../config/active.js';
import { activeFastPath, activeRoutes } from './routes/active.js';
import { join } from 'node:path';
import { createDryRun, type DryRunRegistry } from '../dryrun/compute.js';
import { lifecycleView } from '../dryrun/lifecycle-view.js';
import type { DryRun } from '../dryrun/types.js';
import { createProviderFactory, loadGitopsConfig } from '../config/gitops.js';
import { loadRegistryConfig } from '../config/registry.js';

export interface StartApiOptions {
  config: Config;
  /** Default: loadApiConfig(process.env). */
  apiConfig?: ApiConfig;
  /** An already connected client (shared with the worker); default: connect with config.temporal. */
  client?: Client;
  logger?: Logger;
  /** Registry for the reconciliation loop and the rollback route; default: an MlflowClient on config.mlflow.trackingUri. */
  mlflow?: Pick<MlflowRegistry, 'searchModelVersions' | 'getVersionByAlias' | 'getModelVersion'> & Partial<DryRunRegistry> & Partial<AuditDeps['mlflow']>;
  /** The what-if route's engine; default: one over `mlflow`, the policy file, the directory and GitOps reads. */
  dryRun?: DryRun;
  /** Settings of the /ui page; default: loadUiConfig(process.env). */
  uiConfig?: UiConfig;
  /** Policy-listed models; default: the models of config.policyFile. */
  models?: () => string[];
  /** Override of the Temporal UI / MLflow UI links drawn into Slack messages (e.g. the embedded stack's). */
  links?: NotifyLinks;
  /** Override of config.api.host / port (0 = a free port). */
  host?: string;
  port?: number;
  plugins?: FastifyPluginAsync[];
  /**
   * Serve GET /v1/models/:model/active (and its invalidation route) from this cache, with the fast path for
   * fresh hits. `npm start` shares the worker's; run alone, main() builds one on MLFLOW_TRACKING_URI.
   */
  active?: { cache: ActiveVersionCache; internalToken?: string };
}

export interface RunningApi {
  app: ApiServer;
  /** http://host:port actually bound. */
  url: string;
  reconciler?: Reconciler;
  close(): Promise<void>;
}

export async function startApi(opts: StartApiOptions): Promise<RunningApi> {
  const { config } = opts;
  const apiConfig = opts.apiConfig ?? loadApiConfig(process.env);
  const logger = opts.logger ?? createLogger(config.logLevel, { component: 'api' });
  const ownsClient = !opts.client;
  const client =
    opts.client ??
    (await connectClient({
      address: config.temporal.address ?? `127.0.0.1:${config.embedded.temporalPort}`,
      namespace: config.temporal.namespace,
      apiKey: config.temporal.apiKey,
      tls: config.temporal.tls,
    }));
  const trackingUri = config.mlflow.trackingUri;
  let ownedMlflow: MlflowClient | undefined;
  const mlflow =
    opts.mlflow ??
    (trackingUri ? (ownedMlflow = new MlflowClient({ trackingUri, auth: config.mlflow.auth, timeoutMs: config.mlflow.timeoutMs })) : undefined);
  const policies = policyReader(config.policyFile, logger);
  const uiConfig = opts.uiConfig ?? loadUiConfig(process.env);
  if (uiConfig.sessionKeyGenerated) logger.warn('MODELGATE_UI_SESSION_KEY is not set: /ui sessions use a key generated at start (they end on restart and are not shared between replicas)');
  const sessions = new UiSessions({ key: uiConfig.sessionKey, secureCookies: uiConfig.secureCookies, ttlMs: uiConfig.sessionTtlMs });
  // The page reads lineage and metrics as the audit does: it needs the full registry reader.
  const auditMlflow = mlflow && isAuditRegistry(mlflow) ? mlflow : undefined;
  const models = opts.models ?? (() => policies()?.models() ?? []);
  const dryRun = opts.dryRun ?? (mlflow ? defaultDryRun(mlflow, client, policies, apiConfig) : undefined);
  const app = buildServer({
    client,
    ...(dryRun ? { dryRun } : {}),
    config: apiConfig,
    logger,
    mlflow: trackingUri ? { trackingUri } : undefined,
    ...(mlflow ? { registry: mlflow } : {}),
    managedModels: models,
    // GitHub webhooks count only for the repositories and base branches the policies deploy through.
    githubTargets: () => {
      const set = policies();
      return set ? githubWebhookTargets(set) : [];
    },
    links: opts.links ?? {
      temporalUiUrl: config.temporal.uiUrl,
      namespace: config.temporal.namespace,
      mlflowUiUrl: config.mlflow.uiUrl,
    },
    taskQueue: config.temporal.taskQueue,
    plugins: [...(opts.plugins ?? []), ...(opts.active ? [activeRoutes(opts.active.cache, { invalidateToken: opts.active.internalToken })] : [])],
    fastPaths: opts.active ? [activeFastPath(opts.active.cache)] : undefined,
    ui: { sessions, ...(auditMlflow ? { mlflow: auditMlflow } : {}) },
  });
  const host = opts.host ?? config.api.host;
  const port = opts.port ?? config.api.port;
  await app.listen({ host, port });
  const addr = app.server.address();
  const url = typeof addr === 'object' && addr ? `http://${host.includes(':') ? `[${host}]` : host}:${addr.port}` : `http://${host}:${port}`;
  logger.info({ url }, 'modelgate API listening');

  const reconciler =
    mlflow && apiConfig.reconcile.intervalMs > 0
      ? startReconciler({
          client,
          mlflow,
          models,
          logger,
          intervalMs: apiConfig.reconcile.intervalMs,
          lookbackMs: apiConfig.reconcile.lookbackMs,
          maxVersions: apiConfig.reconcile.maxVersions,
          taskQueue: config.temporal.taskQueue,
        })
      : undefined;

  return {
    app,
    url,
    reconciler,
    async close() {
      await reconciler?.stop();
      await app.close();
      await ownedMlflow?.close();
      if (ownsClient) await client.connection.close();
    },
  };
}

/**
 * The dry run reads MLflow, the policy file, the directory and the GitOps base branch; the plain git provider
 * keeps its own cache beside the worker's (`<workdir>/api-reads`) so the two processes' fetches never interleave.
 */
export function defaultDryRun(mlflow: NonNullable<StartApiOptions['mlflow']>, client: Client, policies: () => PolicySet | undefined, apiConfig: ApiConfig): DryRun | undefined {
  if (!mlflow.getRegisteredModel || !mlflow.getRun || !mlflow.getDownloadUri) return undefined;
  const gitopsConfig = loadGitopsConfig(process.env);
  const providers = createProviderFactory({ ...gitopsConfig, git: { ...gitopsConfig.git, workdir: join(gitopsConfig.git.workdir, 'api-reads') } });
  return createDryRun({
    mlflow: mlflow as DryRunRegistry,
    policies,
    identities: apiConfig.identity.directory,
    lifecycle: lifecycleView(client),
    gitops: providers,
    stagesServed: loadRegistryConfig(process.env).stages !== 'off',
  });
}

function isAuditRegistry(m: NonNullable<StartApiOptions['mlflow']>): m is NonNullable<StartApiOptions['mlflow']> & AuditDeps['mlflow'] {
  return typeof m.getRun === 'function' && typeof m.getDownloadUri === 'function' && typeof m.getRegisteredModel === 'function';
}

/** The policy file, re-read at most every 30 s; a broken edit keeps the last good set (and says so). */
function policyReader(file: string, logger: Logger): () => PolicySet | undefined {
  let cached: { at: number; set?: PolicySet } | undefined;
  return () => {
    if (cached && Date.now() - cached.at < 30_000) return cached.set;
    try {
      cached = { at: Date.now(), set: loadPolicyFile(file) };
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'api: policy file unreadable; keeping the previous policy');
      cached = { at: Date.now(), set: cached?.set };
    }
    return cached.set;
  };
}

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, { component: 'api' });
  const activeConfig = loadActiveConfig(process.env);
  // Run apart from the worker, the API keeps its own active-version cache; the worker invalidates it over HTTP
  // (MODELGATE_INVALIDATE_URL + MODELGATE_INTERNAL_TOKEN on both).
  const { trackingUri } = config.mlflow;
  const mlflow = trackingUri ? new MlflowClient({ trackingUri, auth: config.mlflow.auth, timeoutMs: config.mlflow.timeoutMs }) : undefined;
  if (!mlflow) logger.warn('MLFLOW_TRACKING_URI is not set: GET /v1/models/:model/active is not served');
  const active = mlflow ? { cache: new ActiveVersionCache(mlflow, { ...activeConfig.cache, logger }), internalToken: activeConfig.internalToken } : undefined;
  const api = await startApi({ config, logger, mlflow, active });
  const stop = (sig: string) => {
    logger.info({ signal: sig }, 'modelgate API stopping');
    api
      .close()
      .then(() => mlflow?.close())
      .then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'modelgate API: error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`modelgate api: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
