/**
 * P5: how long after a Production change the active-version endpoint serves it, against one Temporal update
 * round trip. A change is what the lifecycle does: the `production` alias moves in MLflow, then the cache
 * activity tells the API (POST /internal/models/:model/invalidate with the bearer token). Measured from the
 * moment the alias move returned, through the invalidation, until GET /v1/models/:model/active answers with the
 * new version (the cache TTL is an hour here, so only the invalidation can make it fresh).
 * value = median(freshness) ÷ median(update round trip); target ≤ 3.
 * The update round trip is the caller's (`opts.updateRoundTrip`), else one `executeUpdate` on a bare skeleton
 * workflow (bench/workflows) run by a worker on this connection.
 */
import { mkdirSync } from 'node:fs';
import { IdentityDirectory } from '../src/identity/directory.js';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ActiveVersionCache } from '../src/active/service.js';
import { createCacheActivities } from '../src/activities/cache.js';
import { activeRoutes } from '../src/api/routes/active.js';
import { buildServer } from '../src/api/server.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS } from '../src/mlflow/tags.js';
import { createLogger } from '../src/observability/log.js';
import { registerTrainedVersion } from '../test/support/fixtures.js';
import { benchId } from './promotion-rig.js';
import { bundleBaselines, createBaselineWorker } from './skeleton-workflows.js';
import { median, pollUntil, type BenchContext } from './support.js';
import { releaseSignal, SKELETON_WORKFLOW, skeletonApproveUpdate, skeletonStateQuery } from './workflows/definitions.js';

export interface P5Options {
  /** Production changes (and update round trips) measured; default 5. */
  samples?: number;
  /** One Temporal update round trip, performed by the caller (resolves when the update's result is back). */
  updateRoundTrip?: () => Promise<unknown>;
}

export interface P5Result {
  value: number;
  pass: boolean;
  freshnessMs: number;
  updateRoundTripMs: number;
  detail: string;
}

const TOKEN = 'bench-p5-internal-token-0123456789';

/** Times `samples` update round trips on skeleton workflows (one update each: the skeleton takes one approval). */
async function skeletonUpdateTimes(ctx: BenchContext, samples: number): Promise<number[]> {
  const dir = join(ctx.dataDir, 'p5');
  mkdirSync(dir, { recursive: true });
  const taskQueue = benchId('bench-p5');
  const worker = await createBaselineWorker({ connection: ctx.connection, namespace: ctx.namespace, taskQueue, bundlePath: await bundleBaselines(dir) });
  const running = worker.run();
  const times: number[] = [];
  try {
    // One warm-up, not counted: the first update of a fresh worker pays for caches.
    for (let i = 0; i <= samples; i++) {
      const handle = await ctx.client.workflow.start(SKELETON_WORKFLOW, {
        taskQueue,
        workflowId: benchId('bench-p5-update'),
        args: [{ activitiesBeforeApproval: 0, activitiesAfterApproval: 0 }],
      });
      await pollUntil('skeleton awaiting approval', async () => ((await handle.query(skeletonStateQuery)).phase === 'awaiting_approval' ? true : undefined), {
        intervalMs: 10,
        timeoutMs: 60_000,
      });
      const t0 = performance.now();
      await handle.executeUpdate(skeletonApproveUpdate, { args: [{ by: 'alice' }], updateId: 'approve:alice' });
      if (i > 0) times.push(performance.now() - t0);
      await handle.signal(releaseSignal);
    }
  } finally {
    worker.shutdown();
    await running;
  }
  return times;
}

export async function measureP5(ctx: BenchContext, opts: P5Options = {}): Promise<P5Result> {
  const samples = opts.samples ?? 5;
  const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const model = benchId('bench-p5');
  const versions: number[] = [];
  for (let i = 0; i <= samples; i++) versions.push((await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.9 + i / 1000 } })).version);
  await mlflow.setAlias(model, ALIAS.production, versions[0]);

  const cache = new ActiveVersionCache(mlflow, { ttlMs: 3_600_000, staleWhileRevalidateMs: 0, maxWaitMs: 30_000 });
  const app = buildServer({
    client: ctx.client,
    config: { identity: { directory: new IdentityDirectory([]), verificationKeys: {} }, slack: { apiUrl: 'http://127.0.0.1:9/api/', responseUrlPrefixes: [] }, reconcile: { intervalMs: 0, lookbackMs: 1, maxVersions: 1 } },
    logger: createLogger('warn'),
    plugins: [activeRoutes(cache, { invalidateToken: TOKEN })],
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const agent = new Agent({ connections: 4, keepAliveTimeout: 60_000 });
  const acts = createCacheActivities({ invalidateUrl: base, token: TOKEN, dispatcher: agent });
  const served = async (): Promise<number | undefined> => {
    const res = await request(`${base}/v1/models/${model}/active`, { dispatcher: agent });
    const body = (await res.body.json()) as { version?: number };
    return res.statusCode === 200 ? body.version : undefined;
  };

  try {
    await pollUntil(`${model} v${versions[0]} served`, async () => ((await served()) === versions[0] ? true : undefined), { intervalMs: 10, timeoutMs: 60_000 });
    const freshness: number[] = [];
    let polls = 0;
    for (let i = 1; i <= samples; i++) {
      const target = versions[i];
      await mlflow.setAlias(model, ALIAS.production, target);
      const t0 = performance.now();
      const r = await acts.invalidateActiveVersion({ model });
      if (r.remote !== 'ok') throw new Error(`P5: invalidation failed: ${r.detail}`);
      // No pause between polls: the first answer with the new version ends the clock.
      for (;;) {
        polls++;
        if ((await served()) === target) break;
        if (performance.now() - t0 > 60_000) throw new Error(`P5: v${target} not served within 60 s`);
      }
      freshness.push(performance.now() - t0);
    }
    const updates = opts.updateRoundTrip ? await timeEach(opts.updateRoundTrip, samples) : await skeletonUpdateTimes(ctx, samples);
    const f = median(freshness);
    const u = median(updates);
    const value = f / u;
    const detail =
      `freshness median ${f.toFixed(1)} ms (${freshness.map((x) => x.toFixed(0)).join('/')}; ${polls} GETs for ${samples} changes); ` +
      `update round trip median ${u.toFixed(1)} ms (${updates.map((x) => x.toFixed(0)).join('/')}, ${opts.updateRoundTrip ? "caller's" : 'skeleton workflow'}); ` +
      'freshness = alias moved → invalidate (HTTP) → GET serves the new version, incl. one MLflow read sequence';
    return { value, pass: value <= 3, freshnessMs: f, updateRoundTripMs: u, detail };
  } finally {
    await app.close();
    await agent.close();
    await mlflow.close();
  }
}

async function timeEach(fn: () => Promise<unknown>, n: number): Promise<number[]> {
  await fn(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}
