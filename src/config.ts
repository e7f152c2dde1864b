/**
 * The one configuration module. Every setting comes from the environment, is validated here at start, and a
 * bad value stops the process with the key and the reason. Nothing else in the code reads process.env for
 * settings or hard-codes an address.
 */
import { z } from 'zod';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const port = z.coerce.number().int().min(1).max(65535);
const url = z.string().url();
const durationMs = z.coerce.number().int().positive();

const schema = z.object({
  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d+$/, 'expected host:port').optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: z.enum(['true', 'false']).default('false'),
  TEMPORAL_UI_URL: url.optional(),
  MODELGATE_TASK_QUEUE: z.string().min(1).optional(),

  MLFLOW_TRACKING_URI: url.optional(),
  /** Public base URL for links (PR bodies, Slack). Defaults to MLFLOW_TRACKING_URI. */
  MLFLOW_UI_URL: url.optional(),
  MLFLOW_TRACKING_TOKEN: z.string().min(1).optional(),
  MLFLOW_TRACKING_USERNAME: z.string().min(1).optional(),
  MLFLOW_TRACKING_PASSWORD: z.string().min(1).optional(),
  MLFLOW_HTTP_TIMEOUT_MS: durationMs.default(15_000),

  MODELGATE_POLICY_FILE: z.string().min(1).default('policies/policy.yaml'),
  MODELGATE_DATA_DIR: z.string().min(1).default('.data'),
  MODELGATE_TEMPORAL_PORT: port.default(7233),
  MODELGATE_TEMPORAL_UI_PORT: port.default(8233),
  MODELGATE_MLFLOW_PORT: port.default(5000),
  MODELGATE_API_HOST: z.string().min(1).default('127.0.0.1'),
  MODELGATE_API_PORT: port.default(8080),
  /** The CLI's modelgate API (decisions go through it, so the identity comes from a token). Default: the embedded one. */
  MODELGATE_API_URL: url.optional(),
  /** The CLI's API token (a secret), or a file holding it. */
  MODELGATE_TOKEN: z.string().min(1).optional(),
  MODELGATE_TOKEN_FILE: z.string().min(1).optional(),
  MODELGATE_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).optional(),
  /**
   * A stopping worker (SIGTERM) stops polling and lets its in-flight activities finish this long; then it cancels
   * them, and an attempt that gives up is handed back to Temporal for another worker. 0: cancel at once.
   */
  MODELGATE_WORKER_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(60_000),
  /**
   * A stopping worker that still has work after this gives up and exits non-zero; must exceed the grace and stay
   * under the pod's terminationGracePeriodSeconds (90 s), so the exit is the worker's own, not a SIGKILL.
   */
  MODELGATE_WORKER_SHUTDOWN_FORCE_MS: durationMs.default(80_000),
  /**
   * How long a workflow task waits on the sticky queue of the worker that has the workflow cached before any
   * worker may take it: bounds how long a killed worker's workflows stall (the SDK's 10 s is too slow for us).
   */
  MODELGATE_STICKY_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(1000).max(60_000).default(3000),
  /**
   * Worker Versioning (docs/operations.md "Upgrading while lifecycles are running"), off unless both are set:
   * the worker polls as version <deployment name>:<build id> with AUTO_UPGRADE, and receives tasks only once
   * `temporal worker deployment set-current-version` (or a ramp) names its build. patched() stays required.
   */
  MODELGATE_WORKER_DEPLOYMENT_NAME: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/, 'expected letters, digits, - or _ (no dots), at most 100').optional(),
  MODELGATE_WORKER_BUILD_ID: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/, 'expected letters, digits, . _ + or -, at most 100 (e.g. the image tag)').optional(),
  MODELGATE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type RawConfig = z.infer<typeof schema>;

export interface Config {
  temporal: {
    /** Undefined: start the embedded dev server. */
    address?: string;
    namespace: string;
    apiKey?: string;
    tls: boolean;
    uiUrl?: string;
    taskQueue?: string;
  };
  mlflow: {
    /** Undefined: start the embedded MLflow server. */
    trackingUri?: string;
    uiUrl?: string;
    auth?: { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string };
    timeoutMs: number;
  };
  policyFile: string;
  dataDir: string;
  embedded: { temporalPort: number; temporalUiPort: number; mlflowPort: number };
  api: { host: string; port: number };
  /** What the CLI talks to, and with which credential. */
  cli: { apiUrl: string; token?: string; tokenFile?: string };
  worker: {
    maxCachedWorkflows?: number;
    shutdownGraceMs: number;
    shutdownForceMs: number;
    stickyQueueTimeoutMs: number;
    /** Worker Versioning: this worker's deployment version; undefined: unversioned (every worker takes every task). */
    deployment?: WorkerDeployment;
  };
  logLevel: RawConfig['MODELGATE_LOG_LEVEL'];
}

/** A Worker Deployment Version: the deployment (one per task queue's workers) and this release's build. */
export interface WorkerDeployment {
  deploymentName: string;
  buildId: string;
}

/**
 * Parse the env keys a zod object names; throws ConfigError("KEY: reason") on the first bad key. Section
 * modules under src/config/ use it for their own keys and loadConfig composes them.
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: NodeJS.ProcessEnv): z.infer<z.ZodObject<S>> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  const parsed = z.object(shape).safeParse(picked);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0]);
    // Never echo the value of a secret.
    const shown = /TOKEN|PASSWORD|KEY|SECRET/.test(key) ? '' : ` (got ${JSON.stringify(picked[key])})`;
    throw new ConfigError(`${key}: ${issue.message}${shown}`);
  }
  return parsed.data;
}

/** Validate the environment; throws ConfigError("KEY: reason") on the first bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const c = parseEnv(schema.shape, env);
  if (c.MLFLOW_TRACKING_USERNAME && !c.MLFLOW_TRACKING_PASSWORD) {
    throw new ConfigError('MLFLOW_TRACKING_PASSWORD: required when MLFLOW_TRACKING_USERNAME is set');
  }
  if (c.MODELGATE_WORKER_SHUTDOWN_FORCE_MS <= c.MODELGATE_WORKER_SHUTDOWN_GRACE_MS) {
    throw new ConfigError(
      `MODELGATE_WORKER_SHUTDOWN_FORCE_MS: must exceed MODELGATE_WORKER_SHUTDOWN_GRACE_MS (${c.MODELGATE_WORKER_SHUTDOWN_GRACE_MS}) (got ${c.MODELGATE_WORKER_SHUTDOWN_FORCE_MS})`,
    );
  }
  // Half a version would silently run unversioned while the operator believes it pinned to a ramp: refuse.
  if (!!c.MODELGATE_WORKER_DEPLOYMENT_NAME !== !!c.MODELGATE_WORKER_BUILD_ID) {
    const [missing, set] = c.MODELGATE_WORKER_DEPLOYMENT_NAME
      ? ['MODELGATE_WORKER_BUILD_ID', 'MODELGATE_WORKER_DEPLOYMENT_NAME']
      : ['MODELGATE_WORKER_DEPLOYMENT_NAME', 'MODELGATE_WORKER_BUILD_ID'];
    throw new ConfigError(`${missing}: required when ${set} is set (Worker Versioning needs both)`);
  }
  const auth = c.MLFLOW_TRACKING_TOKEN
    ? ({ kind: 'bearer', token: c.MLFLOW_TRACKING_TOKEN } as const)
    : c.MLFLOW_TRACKING_USERNAME
      ? ({ kind: 'basic', username: c.MLFLOW_TRACKING_USERNAME, password: c.MLFLOW_TRACKING_PASSWORD! } as const)
      : undefined;
  return {
    temporal: {
      address: c.TEMPORAL_ADDRESS,
      namespace: c.TEMPORAL_NAMESPACE,
      apiKey: c.TEMPORAL_API_KEY,
      tls: c.TEMPORAL_TLS === 'true' || !!c.TEMPORAL_API_KEY,
      uiUrl: c.TEMPORAL_UI_URL,
      taskQueue: c.MODELGATE_TASK_QUEUE,
    },
    mlflow: {
      trackingUri: c.MLFLOW_TRACKING_URI?.replace(/\/+$/, ''),
      uiUrl: (c.MLFLOW_UI_URL ?? c.MLFLOW_TRACKING_URI)?.replace(/\/+$/, ''),
      auth,
      timeoutMs: c.MLFLOW_HTTP_TIMEOUT_MS,
    },
    policyFile: c.MODELGATE_POLICY_FILE,
    dataDir: c.MODELGATE_DATA_DIR,
    embedded: {
      temporalPort: c.MODELGATE_TEMPORAL_PORT,
      temporalUiPort: c.MODELGATE_TEMPORAL_UI_PORT,
      mlflowPort: c.MODELGATE_MLFLOW_PORT,
    },
    api: { host: c.MODELGATE_API_HOST, port: c.MODELGATE_API_PORT },
    cli: {
      apiUrl: (c.MODELGATE_API_URL ?? `http://${c.MODELGATE_API_HOST === '0.0.0.0' ? '127.0.0.1' : c.MODELGATE_API_HOST}:${c.MODELGATE_API_PORT}`).replace(/\/+$/, ''),
      token: c.MODELGATE_TOKEN,
      tokenFile: c.MODELGATE_TOKEN_FILE,
    },
    worker: {
      maxCachedWorkflows: c.MODELGATE_MAX_CACHED_WORKFLOWS,
      shutdownGraceMs: c.MODELGATE_WORKER_SHUTDOWN_GRACE_MS,
      shutdownForceMs: c.MODELGATE_WORKER_SHUTDOWN_FORCE_MS,
      stickyQueueTimeoutMs: c.MODELGATE_STICKY_QUEUE_TIMEOUT_MS,
      ...(c.MODELGATE_WORKER_DEPLOYMENT_NAME && c.MODELGATE_WORKER_BUILD_ID
        ? { deployment: { deploymentName: c.MODELGATE_WORKER_DEPLOYMENT_NAME, buildId: c.MODELGATE_WORKER_BUILD_ID } }
        : {}),
    },
    logLevel: c.MODELGATE_LOG_LEVEL,
  };
}
