/**
 * Typed MLflow REST client (undici + zod) for /api/2.0/mlflow. Every answer is validated against schemas.ts and
 * turned into the plain types of types.ts; every failure is an MlflowError that says whether retrying can help.
 * It does not retry itself (activities throw and Temporal's retry policy decides), with one exception: a GET sent on
 * a kept-alive connection the server closed at that moment is sent once more on a new one (see STALE_SOCKET_CODES).
 */
import { Agent, type Dispatcher } from 'undici';
import type { z } from 'zod';
import { MlflowError, MlflowSchemaError, oneLine } from './errors.js';
import { describeZodIssue, responses, type ResponseSchemas } from './schemas.js';
import type {
  MlflowAuthoring,
  MlflowRegistry,
  MlflowStage,
  ModelVersion,
  Page,
  RegisteredModel,
  Run,
  SearchVersionsQuery,
} from './types.js';

export type MlflowAuth = { kind: 'bearer'; token: string } | { kind: 'basic'; username: string; password: string };

export interface MlflowClientOptions {
  /** Base URL of the tracking server, e.g. http://127.0.0.1:5000 (a path prefix is kept). */
  trackingUri: string;
  auth?: MlflowAuth;
  /** Connect, headers and body-idle timeout of every call. */
  timeoutMs: number;
  /** Injected transport (tests, shared pools); the client then does not close it. */
  dispatcher?: Dispatcher;
}

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
type Query = Record<string, string | number | string[] | undefined>;

/** Transport failures worth another attempt: connection trouble and timeouts. */
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const NETWORK_CODES = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNABORTED',
]);

/**
 * A kept-alive connection the server closed just as a request went out on it. Only a GET is sent again (once, on a
 * new connection): it changes nothing, while a POST may have been applied before the close.
 */
const STALE_SOCKET_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);
const isStaleSocket = (err: unknown): boolean => {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && STALE_SOCKET_CODES.has(code);
};

/**
 * Idle connections are closed by us before the server closes them: MLflow's uvicorn closes after 5 s and sends no
 * Keep-Alive hint, so a longer client timeout races the server's close ("other side closed").
 */
export const MLFLOW_KEEP_ALIVE_MS = 4_000;

/** MLflow's log-batch limits per request. */
const BATCH_LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000 };

export class MlflowClient implements MlflowRegistry, MlflowAuthoring {
  /** Normalised base URL, without credentials or trailing slash. */
  readonly trackingUri: string;
  readonly timeoutMs: number;
  // #private so that logging or inspecting the client never shows the credentials.
  readonly #origin: string;
  readonly #basePath: string;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #authorization: string | undefined;
  readonly #secrets: string[];

  constructor(opts: MlflowClientOptions) {
    let url: URL;
    try {
      url = new URL(opts.trackingUri);
    } catch {
      throw new Error(`MlflowClient: trackingUri is not a URL (got ${JSON.stringify(opts.trackingUri)})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`MlflowClient: trackingUri must be http(s) (got ${url.protocol})`);
    }
    if (url.username || url.password) {
      // The URI travels into logs and links; credentials belong in `auth`.
      throw new Error('MlflowClient: trackingUri must not contain credentials; pass them as auth');
    }
    if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs <= 0) {
      throw new Error(`MlflowClient: timeoutMs must be a positive integer (got ${opts.timeoutMs})`);
    }
    this.#origin = url.origin;
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.trackingUri = `${this.#origin}${this.#basePath}`;
    this.timeoutMs = opts.timeoutMs;
    this.#ownsDispatcher = !opts.dispatcher;
    this.#dispatcher =
      opts.dispatcher ??
      new Agent({
        keepAliveTimeout: MLFLOW_KEEP_ALIVE_MS,
        connections: 16,
        connect: { timeout: opts.timeoutMs },
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
    const auth = opts.auth;
    if (auth?.kind === 'bearer') {
      this.#authorization = `Bearer ${auth.token}`;
      this.#secrets = [auth.token];
    } else if (auth?.kind === 'basic') {
      const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
      this.#authorization = `Basic ${encoded}`;
      this.#secrets = [auth.password, encoded];
    } else {
      this.#authorization = undefined;
      this.#secrets = [];
    }
  }

  /** Close the connection pool (only when the client created it). */
  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  // ---------------------------------------------------------------- registry (read side and stage/alias/tag writes)

  async getRegisteredModel(name: string): Promise<RegisteredModel> {
    const r = await this.#call('GET', 'registered-models/get', 'registered-models/get', { query: { name } });
    return r.registered_model;
  }

  async getModelVersion(name: string, version: number): Promise<ModelVersion> {
    const r = await this.#call('GET', 'model-versions/get', 'model-versions/get', {
      query: { name, version: v(version, 'model-versions/get') },
    });
    return r.model_version;
  }

  async searchModelVersions(q: SearchVersionsQuery): Promise<Page<ModelVersion>> {
    const r = await this.#call('GET', 'model-versions/search', 'model-versions/search', {
      query: { filter: q.filter, max_results: q.maxResults, order_by: q.orderBy, page_token: q.pageToken },
    });
    return { items: r.model_versions, nextPageToken: r.next_page_token };
  }

  async getLatestVersions(name: string, stages?: MlflowStage[]): Promise<ModelVersion[]> {
    const r = await this.#call('GET', 'registered-models/get-latest-versions', 'registered-models/get-latest-versions', {
      query: { name, stages: stages?.length ? stages : undefined },
    });
    return r.model_versions;
  }

  /** Never archives other versions: exclusivity of Production is modelgate's job (the server does not lock). */
  async transitionStage(name: string, version: number, stage: MlflowStage): Promise<ModelVersion> {
    const r = await this.#call('POST', 'model-versions/transition-stage', 'model-versions/transition-stage', {
      body: { name, version: v(version, 'model-versions/transition-stage'), stage, archive_existing_versions: false },
    });
    return r.model_version;
  }

  async setAlias(name: string, alias: string, version: number): Promise<void> {
    await this.#call('POST', 'registered-models/alias', 'empty', {
      body: { name, alias, version: v(version, 'registered-models/alias') },
    });
  }

  /** Deleting an alias that is not set succeeds (MLflow answers 200). */
  async deleteAlias(name: string, alias: string): Promise<void> {
    await this.#call('DELETE', 'registered-models/alias', 'empty', { body: { name, alias } });
  }

  async getVersionByAlias(name: string, alias: string): Promise<ModelVersion | null> {
    try {
      const r = await this.#call('GET', 'registered-models/alias', 'registered-models/alias:get', { query: { name, alias } });
      return r.model_version;
    } catch (err) {
      if (isAliasNotSet(err, alias)) return null;
      throw err;
    }
  }

  async setVersionTag(name: string, version: number, key: string, value: string): Promise<void> {
    await this.#call('POST', 'model-versions/set-tag', 'empty', {
      body: { name, version: v(version, 'model-versions/set-tag'), key, value },
    });
  }

  /** A tag on the registered model itself (modelgate keeps the Production lock's fencing token there). */
  async setRegisteredModelTag(name: string, key: string, value: string): Promise<void> {
    await this.#call('POST', 'registered-models/set-tag', 'empty', { body: { name, key, value } });
  }

  /** Deleting a tag that is not set succeeds (MLflow answers 200). */
  async deleteVersionTag(name: string, version: number, key: string): Promise<void> {
    await this.#call('DELETE', 'model-versions/delete-tag', 'empty', {
      body: { name, version: v(version, 'model-versions/delete-tag'), key },
    });
  }

  /**
   * Where the version's files physically are. MLflow resolves `models:/m-…` sources itself; for `runs:/<id>/<path>`
   * sources it returns the source unchanged, so this resolves it against the run's artifact_uri (as MLflow's
   * Python client does when downloading).
   */
  async getDownloadUri(name: string, version: number): Promise<string> {
    const r = await this.#call('GET', 'model-versions/get-download-uri', 'model-versions/get-download-uri', {
      query: { name, version: v(version, 'model-versions/get-download-uri') },
    });
    const runs = parseRunsUri(r.artifact_uri);
    if (!runs) return r.artifact_uri;
    const run = await this.getRun(runs.runId);
    if (!run.artifact_uri) {
      throw new MlflowError({
        status: 200,
        errorCode: 'INVALID_RESPONSE',
        endpoint: 'runs/get',
        detail: `run ${runs.runId} has no artifact_uri, cannot resolve ${r.artifact_uri}`,
        retryable: false,
      });
    }
    return runs.path ? `${run.artifact_uri.replace(/\/+$/, '')}/${runs.path}` : run.artifact_uri;
  }

  async getRun(runId: string): Promise<Run> {
    const r = await this.#call('GET', 'runs/get', 'runs/get', { query: { run_id: runId } });
    return r.run;
  }

  // ---------------------------------------------------------------- authoring (demo, tests, benchmarks)

  async createRegisteredModel(
    name: string,
    opts: { description?: string; tags?: Record<string, string> } = {},
  ): Promise<RegisteredModel> {
    const r = await this.#call('POST', 'registered-models/create', 'registered-models/create', {
      body: { name, description: opts.description, tags: kvList(opts.tags) },
    });
    return r.registered_model;
  }

  /** Race-safe: a concurrent creator wins and both get the same id. */
  async getOrCreateExperiment(name: string): Promise<string> {
    const found = await this.#findExperiment(name);
    if (found) return found;
    try {
      const r = await this.#call('POST', 'experiments/create', 'experiments/create', { body: { name } });
      return r.experiment_id;
    } catch (err) {
      if (!(err instanceof MlflowError && err.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw err;
      const again = await this.#findExperiment(name);
      if (again) return again;
      throw err;
    }
  }

  async createRun(
    experimentId: string,
    opts: { runName?: string; startTime?: number; tags?: Record<string, string> } = {},
  ): Promise<Run> {
    const r = await this.#call('POST', 'runs/create', 'runs/create', {
      body: {
        experiment_id: experimentId,
        run_name: opts.runName,
        start_time: opts.startTime ?? Date.now(),
        tags: kvList(opts.tags),
      },
    });
    return r.run;
  }

  /** Splits into as many log-batch calls as MLflow's per-request limits need. */
  async logBatch(
    runId: string,
    data: { metrics?: Record<string, number>; params?: Record<string, string>; tags?: Record<string, string> },
  ): Promise<void> {
    const timestamp = Date.now();
    const metrics = Object.entries(data.metrics ?? {}).map(([key, value]) => ({
      key,
      value: metricJson(value),
      timestamp,
      step: 0,
    }));
    const params = kvList(data.params) ?? [];
    const tags = kvList(data.tags) ?? [];
    while (metrics.length || params.length || tags.length) {
      const p = params.splice(0, BATCH_LIMITS.params);
      const t = tags.splice(0, BATCH_LIMITS.tags);
      const m = metrics.splice(0, Math.min(BATCH_LIMITS.metrics, BATCH_LIMITS.total - p.length - t.length));
      await this.#call('POST', 'runs/log-batch', 'empty', { body: { run_id: runId, metrics: m, params: p, tags: t } });
    }
  }

  async finishRun(runId: string, status: 'FINISHED' | 'FAILED' = 'FINISHED'): Promise<void> {
    await this.#call('POST', 'runs/update', 'empty', { body: { run_id: runId, status, end_time: Date.now() } });
  }

  /**
   * `models:/m-<id>` sources (MLflow 3 logged models) need the server to be told the model_id; it is taken from
   * the source when not given.
   */
  async createModelVersion(opts: {
    name: string;
    source: string;
    runId?: string;
    modelId?: string;
    tags?: Record<string, string>;
    description?: string;
  }): Promise<ModelVersion> {
    const modelId = opts.modelId ?? /^models:\/(m-[^/]+)$/.exec(opts.source)?.[1];
    const r = await this.#call('POST', 'model-versions/create', 'model-versions/create', {
      body: {
        name: opts.name,
        source: opts.source,
        run_id: opts.runId,
        model_id: modelId,
        tags: kvList(opts.tags),
        description: opts.description,
      },
    });
    return r.model_version;
  }

  /** An MLflow 3 logged model (its versions are registered from `models:/<modelId>`). */
  async createLoggedModel(
    experimentId: string,
    opts: { name?: string; sourceRunId?: string } = {},
  ): Promise<{ modelId: string; artifactUri: string }> {
    const r = await this.#call('POST', 'logged-models', 'logged-models:create', {
      body: { experiment_id: experimentId, name: opts.name, source_run_id: opts.sourceRunId },
    });
    return { modelId: r.model.info.model_id, artifactUri: r.model.info.artifact_uri };
  }

  // ---------------------------------------------------------------- transport

  async #findExperiment(name: string): Promise<string | undefined> {
    try {
      const r = await this.#call('GET', 'experiments/get-by-name', 'experiments/get-by-name', {
        query: { experiment_name: name },
      });
      return r.experiment.experiment_id;
    } catch (err) {
      if (err instanceof MlflowError && err.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw err;
    }
  }

  async #call<K extends keyof ResponseSchemas>(
    method: Method,
    endpoint: string,
    schema: K,
    input: { query?: Query; body?: unknown },
  ): Promise<z.output<ResponseSchemas[K]>> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'modelgate' };
    if (this.#authorization) headers.authorization = this.#authorization;
    let body: string | undefined;
    if (input.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(input.body);
    }
    const path = `${this.#basePath}/api/2.0/mlflow/${endpoint}${queryString(input.query)}`;

    const send = () => this.#send(method, path, headers, body);
    const answer = await send()
      // A GET on a connection the server had just closed is sent once more; the second failure is the answer.
      .catch((err: unknown) => {
        if (method === 'GET' && isStaleSocket(err)) return send();
        throw err;
      })
      .catch((err: unknown) => {
        throw this.#transportError(endpoint, err);
      });
    const { status, contentType, text } = answer;

    if (status < 200 || status >= 300) throw this.#httpError(endpoint, status, contentType, text);

    let json: unknown;
    try {
      json = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      throw new MlflowSchemaError({
        status,
        endpoint,
        field: '(body)',
        problem: `not JSON (content-type ${contentType || 'none'}): ${oneLine(this.#redact(text), 120)}`,
      });
    }
    const parsed = responses[schema].safeParse(json);
    if (!parsed.success) {
      const { field, problem } = describeZodIssue(parsed.error);
      throw new MlflowSchemaError({ status, endpoint, field, problem });
    }
    return parsed.data;
  }

  async #send(method: Method, path: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; contentType: string; text: string }> {
    const res = await this.#dispatcher.request({ origin: this.#origin, path, method, headers, body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
    return { status: res.statusCode, contentType: String(res.headers['content-type'] ?? ''), text: await res.body.text() };
  }

  #httpError(endpoint: string, status: number, contentType: string, raw: string): MlflowError {
    // Redact before any truncation, so a cut can never leave part of a secret behind.
    const text = this.#redact(raw);
    let errorCode = 'HTTP_ERROR';
    let detail: string;
    try {
      const body = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof body?.error_code === 'string' && body.error_code) {
        errorCode = body.error_code;
        detail = typeof body.message === 'string' && body.message ? body.message : errorCode;
      } else {
        detail = `HTTP ${status} with a JSON body that is not an MLflow error: ${oneLine(text, 200)}`;
      }
    } catch {
      // A proxy or load balancer answered (HTML error page, plain text, empty body).
      detail = text.trim()
        ? `HTTP ${status} non-JSON answer (content-type ${contentType || 'none'}): ${oneLine(text, 200)}`
        : `HTTP ${status} with an empty body`;
    }
    return new MlflowError({ status, errorCode, endpoint, detail });
  }

  #transportError(endpoint: string, err: unknown): MlflowError {
    const code = (err as { code?: unknown })?.code;
    const name = (err as { name?: unknown })?.name;
    const message = err instanceof Error ? err.message : String(err);
    const isTimeout = (typeof code === 'string' && TIMEOUT_CODES.has(code)) || name === 'TimeoutError';
    const isNetwork = typeof code === 'string' && NETWORK_CODES.has(code);
    if (isTimeout || isNetwork) {
      return new MlflowError({
        status: 0,
        errorCode: isTimeout ? 'TIMEOUT' : 'NETWORK_ERROR',
        endpoint,
        detail: this.#redact(`${String(code ?? name)}: ${message}${isTimeout ? ` (timeout ${this.timeoutMs} ms)` : ''}`),
        cause: err,
      });
    }
    // Anything else is a bug or misuse on our side (invalid argument, …): retrying will not help.
    return new MlflowError({
      status: 0,
      errorCode: typeof code === 'string' ? code : 'CLIENT_ERROR',
      endpoint,
      detail: this.#redact(message),
      retryable: false,
      cause: err,
    });
  }

  /** Server and proxy text may echo request headers back: never let a credential through. */
  #redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) if (s) out = out.split(s).join('***');
    return out;
  }
}

/**
 * MLflow 3 answers a missing alias with INVALID_PARAMETER_VALUE "Registered model alias X not found." (SQL and
 * file stores), not RESOURCE_DOES_NOT_EXIST; other servers may use the latter. A missing *model* (RESOURCE_DOES_NOT_EXIST
 * "Registered Model with name=… not found") stays an error.
 */
function isAliasNotSet(err: unknown, alias: string): boolean {
  if (!(err instanceof MlflowError)) return false;
  if (err.errorCode !== 'INVALID_PARAMETER_VALUE' && err.errorCode !== 'RESOURCE_DOES_NOT_EXIST') return false;
  const quoted = alias.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`alias\\W+${quoted}\\W+(not found|does not exist)`, 'i').test(err.detail);
}

/** Our versions are numbers, MLflow's are strings; a bad one never leaves the process (and is not retryable). */
function v(version: number, endpoint: string): string {
  if (!Number.isInteger(version) || version < 1) {
    throw new MlflowError({
      status: 0,
      errorCode: 'INVALID_PARAMETER_VALUE',
      endpoint,
      detail: `model version must be a positive integer (got ${version})`,
      retryable: false,
    });
  }
  return String(version);
}

function kvList(record: Record<string, string> | undefined): Array<{ key: string; value: string }> | undefined {
  return record ? Object.entries(record).map(([key, value]) => ({ key, value })) : undefined;
}

/** JSON has no NaN/Infinity; protobuf JSON accepts them as strings. */
function metricJson(value: number): number | string {
  if (Number.isFinite(value)) return value;
  return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity';
}

function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue;
    // Repeated fields (order_by, stages) are repeated keys.
    if (Array.isArray(value)) for (const item of value) params.append(key, item);
    else params.append(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** `runs:/<run_id>/<path>` → parts; undefined for any other URI. */
export function parseRunsUri(uri: string): { runId: string; path: string } | undefined {
  const m = /^runs:\/([^/]+)\/?(.*)$/.exec(uri);
  if (!m) return undefined;
  return { runId: m[1], path: m[2].replace(/\/+$/, '') };
}
