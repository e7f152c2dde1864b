/**
 * A model-server stand-in for canary tests: serves Prometheus text format on GET /metrics with, per
 * (model, version, revision), a request counter, an error counter and a latency histogram — the metric names
 * docs/policy.md's canary example queries:
 *
 *   model_requests_total{model,version,revision}
 *   model_errors_total{model,version,revision}
 *   model_request_duration_seconds_bucket{model,version,revision,le} (+ _sum, _count)
 *
 * A load loop "serves" requests at a fixed total rate, split between the registered versions by weight (the
 * traffic split a test sets, e.g. 90/10), with each version's error rate and latency. Deterministic: errors are
 * an exact running fraction, not random, so a test's expectations never depend on luck.
 * Behaviour is set from the test (`setVersion`) or over HTTP: POST /control/versions with
 * `{ model, version, revision?, errorRate?, latencyMs?, weight? }`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const LATENCY_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface VersionBehaviour {
  /** Fraction of requests that fail, 0..1. */
  errorRate: number;
  /** Latency of every request, ms. */
  latencyMs: number;
  /** Share of the total request rate (weights are normalised over all versions of the model). */
  weight: number;
}

export interface VersionKey {
  model: string;
  version: number | string;
  revision?: string;
}

interface Series {
  key: Required<Pick<VersionKey, 'model'>> & { version: string; revision: string };
  behaviour: VersionBehaviour;
  requests: number;
  errors: number;
  /** Fractional request and error carry, so rates are exact over time. */
  requestCarry: number;
  errorCarry: number;
  buckets: number[];
  sumSeconds: number;
}

export interface ModelServer {
  /** http://127.0.0.1:<port> */
  url: string;
  /** host:port, for a Prometheus scrape target. */
  target: string;
  setVersion(key: VersionKey, behaviour: Partial<VersionBehaviour>): void;
  /** Counters of one version so far (for assertions). */
  counts(key: VersionKey): { requests: number; errors: number } | undefined;
  stop(): Promise<void>;
}

export interface ModelServerOptions {
  /** Requests per second over all versions (default 200). */
  requestsPerSecond?: number;
  /** Load loop period (default 100 ms). */
  tickMs?: number;
}

const idOf = (k: VersionKey) => `${k.model}\u0000${String(k.version)}\u0000${k.revision ?? ''}`;

/** A label value in the text exposition format. */
function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export async function startModelServer(opts: ModelServerOptions = {}): Promise<ModelServer> {
  const rps = opts.requestsPerSecond ?? 200;
  const tickMs = opts.tickMs ?? 100;
  const series = new Map<string, Series>();

  function setVersion(key: VersionKey, b: Partial<VersionBehaviour>): void {
    const id = idOf(key);
    const s = series.get(id) ?? {
      key: { model: key.model, version: String(key.version), revision: key.revision ?? '' },
      behaviour: { errorRate: 0, latencyMs: 20, weight: 1 },
      requests: 0,
      errors: 0,
      requestCarry: 0,
      errorCarry: 0,
      buckets: LATENCY_BUCKETS_S.map(() => 0),
      sumSeconds: 0,
    };
    s.behaviour = { ...s.behaviour, ...b };
    if (!(s.behaviour.errorRate >= 0 && s.behaviour.errorRate <= 1)) throw new Error('errorRate must be within 0..1');
    if (!(s.behaviour.weight >= 0) || !(s.behaviour.latencyMs >= 0)) throw new Error('weight and latencyMs must be 0 or more');
    series.set(id, s);
  }

  function tick(): void {
    const byModel = new Map<string, number>();
    for (const s of series.values()) byModel.set(s.key.model, (byModel.get(s.key.model) ?? 0) + s.behaviour.weight);
    for (const s of series.values()) {
      const total = byModel.get(s.key.model) ?? 0;
      if (total <= 0 || s.behaviour.weight <= 0) continue;
      s.requestCarry += (rps * tickMs) / 1000 * (s.behaviour.weight / total);
      const n = Math.floor(s.requestCarry);
      s.requestCarry -= n;
      if (n === 0) continue;
      s.requests += n;
      s.errorCarry += n * s.behaviour.errorRate;
      const e = Math.floor(s.errorCarry + 1e-9);
      s.errorCarry -= e;
      s.errors += e;
      const seconds = s.behaviour.latencyMs / 1000;
      LATENCY_BUCKETS_S.forEach((le, k) => {
        if (seconds <= le) s.buckets[k] += n;
      });
      s.sumSeconds += seconds * n;
    }
  }

  function exposition(): string {
    const lines = [
      '# HELP model_requests_total Prediction requests served.',
      '# TYPE model_requests_total counter',
    ];
    const labels = (s: Series) => `model="${label(s.key.model)}",version="${label(s.key.version)}",revision="${label(s.key.revision)}"`;
    for (const s of series.values()) lines.push(`model_requests_total{${labels(s)}} ${s.requests}`);
    lines.push('# HELP model_errors_total Prediction requests that failed.', '# TYPE model_errors_total counter');
    for (const s of series.values()) lines.push(`model_errors_total{${labels(s)}} ${s.errors}`);
    lines.push('# HELP model_request_duration_seconds Prediction latency.', '# TYPE model_request_duration_seconds histogram');
    for (const s of series.values()) {
      LATENCY_BUCKETS_S.forEach((le, k) => lines.push(`model_request_duration_seconds_bucket{${labels(s)},le="${le}"} ${s.buckets[k]}`));
      lines.push(`model_request_duration_seconds_bucket{${labels(s)},le="+Inf"} ${s.requests}`);
      lines.push(`model_request_duration_seconds_sum{${labels(s)}} ${s.sumSeconds}`);
      lines.push(`model_request_duration_seconds_count{${labels(s)}} ${s.requests}`);
    }
    return lines.join('\n') + '\n';
  }

  async function readJson(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'GET' && req.url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(exposition());
      return;
    }
    if (req.method === 'POST' && req.url === '/control/versions') {
      try {
        const b = (await readJson(req)) as VersionKey & Partial<VersionBehaviour>;
        if (typeof b.model !== 'string' || (typeof b.version !== 'number' && typeof b.version !== 'string')) throw new Error('model and version required');
        const { model, version, revision, ...behaviour } = b;
        setVersion({ model, version, ...(revision !== undefined ? { revision } : {}) }, behaviour);
        res.writeHead(204).end();
      } catch (err) {
        res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
      }
      return;
    }
    res.writeHead(404).end();
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const timer = setInterval(tick, tickMs);
  timer.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    target: `127.0.0.1:${port}`,
    setVersion,
    counts(key) {
      const s = series.get(idOf(key));
      return s ? { requests: s.requests, errors: s.errors } : undefined;
    },
    async stop() {
      clearInterval(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
