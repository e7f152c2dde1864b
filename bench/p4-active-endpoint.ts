/**
 * P4: requests/s and p99 of GET /v1/models/:model/active on cache hits, served by the real API server
 * (buildServer with its hooks and metrics, plus the active routes), against a bare node:http server answering
 * the same bytes with the same headers. Same load generator and settings for both, one run:
 *   - the load generator runs in a worker thread (this file, `workerData.p4Load`), so it does not share the
 *     servers' event loop; keep-alive undici Pool, fixed concurrency, fixed request count after a warm-up;
 *   - loopback only; the servers run on the main thread one after the other.
 * value = active req/s ÷ bare req/s (target ≥ 0.85); p99 ratio = active p99 ÷ bare p99 (target ≤ 1.2).
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { IdentityDirectory } from '../src/identity/directory.js';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from './support.js';

interface LoadJob {
  p4Load: true;
  url: string;
  requests: number;
  warmup: number;
  concurrency: number;
}

interface LoadResult {
  elapsedMs: number;
  /** Per-request latency (ms) of the measured requests. */
  latencies: Float64Array;
  errors: number;
  /** Bytes of the last body, to check both servers answered the same thing. */
  bodyBytes: number;
}

export interface P4Result {
  /** active req/s ÷ bare req/s */
  value: number;
  pass: boolean;
  /** active p99 ÷ bare p99 */
  p99Ratio: number;
  /** Raw figures (req/s, p50/p99 of both sides, settings). */
  detail: string;
}

function quantile(sorted: Float64Array, q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

/** The load loop (worker thread): `concurrency` lanes each issue requests back to back until `requests` are done. */
async function runLoad(job: LoadJob): Promise<LoadResult> {
  const { Pool } = await import('undici');
  const url = new URL(job.url);
  const pool = new Pool(url.origin, { connections: job.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  let errors = 0;
  let bodyBytes = 0;
  const one = async (): Promise<void> => {
    const res = await pool.request({ path: url.pathname, method: 'GET' });
    const buf = await res.body.arrayBuffer();
    if (res.statusCode !== 200) errors++;
    bodyBytes = buf.byteLength;
  };
  const lanes = async (total: number, record?: Float64Array): Promise<void> => {
    let next = 0;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const t0 = performance.now();
          try {
            await one();
          } catch {
            errors++;
          }
          if (record) record[i] = performance.now() - t0;
        }
      }),
    );
  };
  await lanes(job.warmup);
  errors = 0;
  const latencies = new Float64Array(job.requests);
  const t0 = performance.now();
  await lanes(job.requests, latencies);
  const elapsedMs = performance.now() - t0;
  await pool.close();
  return { elapsedMs, latencies, errors, bodyBytes };
}

// The generator thread serves every round, so its JIT is warm after the first (a fresh thread per round made
// each round's start slower than its servers and swung the rounds by ±30%).
if (!isMainThread && (workerData as { p4Load?: boolean } | undefined)?.p4Load) {
  parentPort!.on('message', (job: LoadJob) => {
    runLoad(job).then(
      (r) => parentPort!.postMessage({ ok: true, result: r }, [r.latencies.buffer as ArrayBuffer]),
      (err: unknown) => parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

interface LoadGenerator {
  run(job: Omit<LoadJob, 'p4Load'>): Promise<LoadResult>;
  close(): Promise<void>;
}

function startLoadGenerator(): LoadGenerator {
  const w = new Worker(fileURLToPath(import.meta.url), { workerData: { p4Load: true } });
  return {
    run(job) {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        w.once('error', onError);
        w.once('message', (m: { ok: boolean; result?: LoadResult; error?: string }) => {
          w.off('error', onError);
          if (m.ok) resolve(m.result!);
          else reject(new Error(`load generator: ${m.error}`));
        });
        w.postMessage({ ...job, p4Load: true } satisfies LoadJob);
      });
    },
    async close() {
      await w.terminate();
    },
  };
}

export async function measureP4(
  ctx: BenchContext,
  opts: { requests?: number; warmup?: number; concurrency?: number } = {},
): Promise<P4Result> {
  // Loaded here so the load-generator thread, which imports this file, stays light.
  const { createServer } = await import('node:http');
  const { ActiveVersionCache } = await import('../src/active/service.js');
  const { activeFastPath, activeRoutes } = await import('../src/api/routes/active.js');
  const { buildServer } = await import('../src/api/server.js');
  const { MlflowClient } = await import('../src/mlflow/client.js');
  const { ALIAS, TAG } = await import('../src/mlflow/tags.js');
  const { createLogger } = await import('../src/observability/log.js');
  const { registerTrainedVersion } = await import('../test/support/fixtures.js');
  const { benchId } = await import('./promotion-rig.js');
  const { median } = await import('./support.js');

  const requests = opts.requests ?? Math.max(5_000, Math.round(80_000 * ctx.scale));
  const warmup = opts.warmup ?? Math.max(1_000, Math.round(requests / 10));
  const concurrency = opts.concurrency ?? 32;

  const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const model = benchId('bench-p4');
  const { version } = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.93, f1: 0.91, latency_p99_ms: 31 } });
  await mlflow.transitionStage(model, version, 'Production');
  await mlflow.setAlias(model, ALIAS.production, version);
  for (const [k, v] of Object.entries({ [TAG.stage]: 'Production', [TAG.approvedBy]: 'alice', [TAG.approvedAt]: new Date().toISOString(), [TAG.promotedAt]: new Date().toISOString() })) {
    await mlflow.setVersionTag(model, version, k, v);
  }

  // The API as deployed (src/stack/start.ts): buildServer (error handler, metrics hook, every route), the active
  // routes and their fast path for fresh cache hits.
  const cache = new ActiveVersionCache(mlflow, { ttlMs: 3_600_000, staleWhileRevalidateMs: 0 });
  const app = buildServer({
    client: ctx.client,
    config: { identity: { directory: new IdentityDirectory([]), verificationKeys: {} }, slack: { apiUrl: 'http://127.0.0.1:9/api/', responseUrlPrefixes: [] }, reconcile: { intervalMs: 0, lookbackMs: 1, maxVersions: 1 } },
    logger: createLogger('warn'),
    plugins: [activeRoutes(cache)],
    fastPaths: [activeFastPath(cache)],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const activeUrl = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/models/${model}/active`;

  // Warm the cache and take the exact bytes and headers the endpoint answers with.
  const hit = await cache.get(model);
  if (hit.kind !== 'found') throw new Error(`P4: ${model} is not served (${hit.kind})`);
  const body = Buffer.from(hit.body);
  const bare = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', etag: hit.etag, 'cache-control': 'no-cache', 'content-length': body.length });
    res.end(body);
  });
  bare.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  const bareUrl = `http://127.0.0.1:${(bare.address() as { port: number }).port}/v1/models/${model}/active`;

  try {
    // ABBA rounds (bare, active, active, bare, …): drift of a shared machine hits both sides alike. The
    // load generator is the bottleneck at these rates, so single rounds swing ±20%: many short rounds, and the
    // ratio is the median over ABBA blocks (one slow round moves one block, not the figure).
    const rounds = 16;
    const per = Math.ceil(requests / (rounds / 2));
    ctx.log(`P4: ${per * (rounds / 2)} requests per side in ${rounds} alternating rounds, concurrency ${concurrency}`);
    const sides = { bare: [] as LoadResult[], active: [] as LoadResult[] };
    const generator = startLoadGenerator();
    try {
      // Warm the generator (and both servers) before the first measured round.
      await generator.run({ url: bareUrl, requests: warmup, warmup: 0, concurrency });
      await generator.run({ url: activeUrl, requests: warmup, warmup: 0, concurrency });
      for (let i = 0; i < rounds; i++) {
        const side = [0, 3].includes(i % 4) ? 'bare' : 'active';
        sides[side].push(await generator.run({ url: side === 'bare' ? bareUrl : activeUrl, requests: per, warmup: Math.ceil(warmup / rounds), concurrency }));
      }
    } finally {
      await generator.close();
    }
    const sum = (rs: LoadResult[]) => {
      const all = new Float64Array(rs.reduce((n, r) => n + r.latencies.length, 0));
      let o = 0;
      for (const r of rs) {
        all.set(r.latencies, o);
        o += r.latencies.length;
      }
      all.sort();
      const ms = rs.reduce((n, r) => n + r.elapsedMs, 0);
      return { rps: (all.length / ms) * 1000, p50: quantile(all, 0.5), p99: quantile(all, 0.99), errors: rs.reduce((n, r) => n + r.errors, 0), bodyBytes: rs[0].bodyBytes };
    };
    const a = sum(sides.active);
    const b = sum(sides.bare);
    if (a.errors || b.errors) throw new Error(`P4: non-200 answers (active ${a.errors}, bare ${b.errors})`);
    if (a.bodyBytes !== b.bodyBytes) throw new Error(`P4: bodies differ (${a.bodyBytes} vs ${b.bodyBytes} bytes)`);
    // Each ABBA block holds two rounds per side, in order; both figures are medians over the blocks, so one
    // round that met a GC pause or a scheduler hiccup on either side moves one block, not the figure.
    const blocks = Array.from({ length: rounds / 4 }, (_, k) => ({
      active: sum(sides.active.slice(2 * k, 2 * k + 2)),
      bare: sum(sides.bare.slice(2 * k, 2 * k + 2)),
    }));
    const blockRatios = blocks.map((b) => b.active.rps / b.bare.rps);
    const blockP99Ratios = blocks.map((b) => b.active.p99 / b.bare.p99);
    const value = median(blockRatios);
    const p99Ratio = median(blockP99Ratios);
    const detail =
      `active ${a.rps.toFixed(0)} req/s p50 ${a.p50.toFixed(2)} ms p99 ${a.p99.toFixed(2)} ms; ` +
      `bare ${b.rps.toFixed(0)} req/s p50 ${b.p50.toFixed(2)} ms p99 ${b.p99.toFixed(2)} ms; ` +
      `p99 ratio ${p99Ratio.toFixed(2)} (target ≤ 1.2; median of the blocks' ${blockP99Ratios.map((x) => x.toFixed(2)).join('/')}, pooled ${(a.p99 / b.p99).toFixed(2)}); ` +
      `value = median of the ${blockRatios.length} ABBA blocks' req/s ratios ${blockRatios.map((x) => x.toFixed(2)).join('/')} (pooled ${(a.rps / b.rps).toFixed(2)}); ` +
      `${per * (rounds / 2)} requests per side in ${rounds} rounds, ` +
      `concurrency ${concurrency}, ${body.length}-byte body; per-round req/s active ${sides.active.map((r) => ((r.latencies.length / r.elapsedMs) * 1000).toFixed(0)).join('/')}, ` +
      `bare ${sides.bare.map((r) => ((r.latencies.length / r.elapsedMs) * 1000).toFixed(0)).join('/')}`;
    return { value, pass: value >= 0.85 && p99Ratio <= 1.2, p99Ratio, detail };
  } finally {
    await app.close();
    await new Promise<void>((resolve) => bare.close(() => resolve()));
    await mlflow.close();
  }
}
