/**
 * A narrow Prometheus HTTP API client: one instant query (`GET /api/v1/query`), nothing else. Built once in the
 * worker from MODELGATE_PROMETHEUS_URL. Every failure is a PrometheusError with a kind and a one-line message
 * that names the host (never credentials, never the bearer token) so it can go into history and the audit.
 */
import { request, type Dispatcher } from 'undici';

export type InstantResult =
  | { resultType: 'scalar'; value: number }
  | { resultType: 'vector'; series: Array<{ labels: Record<string, string>; value: number }> }
  | { resultType: 'matrix' | 'string' };

export interface PrometheusQuerier {
  /** Runs `promql` at the server's now; throws PrometheusError. */
  query(promql: string): Promise<InstantResult>;
}

export type PrometheusErrorKind = 'unreachable' | 'timeout' | 'http' | 'query' | 'bad-response';

export class PrometheusError extends Error {
  override name = 'PrometheusError';
  constructor(
    readonly kind: PrometheusErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface PrometheusClientOptions {
  /** Base URL, e.g. http://prometheus.monitoring:9090 (a path prefix is kept: http://host/prometheus). */
  url: string;
  /** Bearer token (MODELGATE_PROMETHEUS_TOKEN); a secret: never in messages. */
  token?: string;
  /** Bound on one query, client side; the server is asked to stop a little earlier. Default 5 s. */
  timeoutMs?: number;
  dispatcher?: Dispatcher;
}

/** What a Prometheus sample value string means as a number ("NaN", "+Inf", "-Inf" included). */
export function parseSampleValue(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  if (v === 'NaN') return Number.NaN;
  if (v === '+Inf' || v === 'Inf') return Number.POSITIVE_INFINITY;
  if (v === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) return undefined;
  return Number(v);
}

/** One scalar needs a few hundred bytes; a huge answer (a query selecting everything) is refused, not buffered. */
const MAX_BODY_BYTES = 1 << 20;

async function readBounded(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      throw new PrometheusError('bad-response', `Prometheus answer larger than ${max} bytes; the query must reduce to one number`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function oneLine(s: string, max = 200): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is being removed
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

export class PrometheusClient implements PrometheusQuerier {
  readonly #base: string;
  readonly #where: string;
  readonly #headers: Record<string, string>;
  readonly #timeoutMs: number;
  readonly #dispatcher?: Dispatcher;

  constructor(opts: PrometheusClientOptions) {
    const u = new URL(opts.url);
    if (u.username || u.password) throw new Error('Prometheus URL must not carry credentials (use a token)');
    this.#base = `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
    this.#where = `Prometheus at ${u.host}`;
    this.#headers = { accept: 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    this.#timeoutMs = opts.timeoutMs ?? 5_000;
    this.#dispatcher = opts.dispatcher;
  }

  async query(promql: string): Promise<InstantResult> {
    // The server gives up a little before the client, so a slow query answers with its own error.
    const serverTimeout = `${Math.max(1, Math.floor(this.#timeoutMs * 0.9))}ms`;
    const url = `${this.#base}/api/v1/query?${new URLSearchParams({ query: promql, timeout: serverTimeout }).toString()}`;
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method: 'GET',
        headers: this.#headers,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: AbortSignal.timeout(this.#timeoutMs),
        ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      });
      status = res.statusCode;
      text = await readBounded(res.body, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof PrometheusError) throw err;
      const e = err as { code?: string; name?: string };
      const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT';
      if (timedOut) throw new PrometheusError('timeout', `${this.#where}: no answer within ${this.#timeoutMs} ms`);
      throw new PrometheusError('unreachable', `${this.#where}: unreachable (${e.code ?? e.name ?? 'error'})`);
    }
    let body: { status?: string; errorType?: string; error?: string; data?: { resultType?: string; result?: unknown } } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = undefined;
    }
    if (status >= 400 || body?.status === 'error') {
      const detail = body?.error ? `: ${body.errorType ?? 'error'}: ${oneLine(body.error)}` : '';
      // 400/422: Prometheus refused the query itself (a PromQL mistake, or the server's timeout); 5xx: its trouble.
      const kind: PrometheusErrorKind = status === 400 || status === 422 ? 'query' : 'http';
      throw new PrometheusError(kind, `${this.#where}: HTTP ${status}${detail}`, status);
    }
    if (!body || body.status !== 'success' || !body.data) {
      throw new PrometheusError('bad-response', `${this.#where}: HTTP ${status} without a Prometheus query result`, status);
    }
    return this.#result(body.data.resultType, body.data.result, status);
  }

  #result(resultType: unknown, result: unknown, status: number): InstantResult {
    const bad = (why: string) => new PrometheusError('bad-response', `${this.#where}: ${why}`, status);
    if (resultType === 'scalar') {
      const value = Array.isArray(result) ? parseSampleValue(result[1]) : undefined;
      if (value === undefined) throw bad('a scalar result without a numeric value');
      return { resultType: 'scalar', value };
    }
    if (resultType === 'vector') {
      if (!Array.isArray(result)) throw bad('a vector result that is not a list');
      const series = result.map((s: { metric?: unknown; value?: unknown }) => {
        const value = Array.isArray(s?.value) ? parseSampleValue(s.value[1]) : undefined;
        if (value === undefined) throw bad('a vector sample without a numeric value');
        const labels = s.metric && typeof s.metric === 'object' ? (s.metric as Record<string, string>) : {};
        return { labels, value };
      });
      return { resultType: 'vector', series };
    }
    if (resultType === 'matrix' || resultType === 'string') return { resultType };
    throw bad(`unknown result type ${JSON.stringify(String(resultType).slice(0, 20))}`);
  }
}
