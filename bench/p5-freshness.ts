/**
 * P5: how long after a Production change every API replica's active-version endpoint serves it, against one
 * Temporal update round trip. A change is what the lifecycle does: the `production` alias moves in MLflow, then
 * the cache activity tells every replica (the worker's fan-out client: POST /internal/models/:model/invalidate
 * with the bearer token, to each of `replicas` API servers in parallel, each with its own cache and MLflow
 * client). Measured from the moment the alias move returned, through the invalidation, until GET
 * /v1/models/:model/active answers with the new version on the *last* replica to do so (the cache TTL is an
 * hour here, so only the invalidation can make a replica fresh).
 * value = median(worst-replica freshness) ÷ median(update round trip); target ≤ 3.
 * The update round trip is the caller's (`opts.updateRoundTrip`), else one `executeUpdate` on a bare skeleton
 * workflow (bench/workflows) run by a worker on this connection.
 */
import { mkdirSync } from 'node:fs';
import { IdentityDirectory } from '../src/identity/directory.js';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { ActiveVersionCache } from '../src/active/service.js';
import { createCacheActivities } from '../src/activities/cache.js';
import { createInvalidationClient } from '../src/active/invalidation-client.js';
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
  /** API replicas, each with its own cache, all told of each change; default 3. */
  replicas?: number;
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
  const replicaCount = Math.max(1, opts.replicas ?? 3);
  const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const model = benchId('bench-p5');
  const versions: number[] = [];
  for (let i = 0; i <= samples; i++) versions.push((await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.9 + i / 1000 } })).version);
  await mlflow.setAlias(model, ALIAS.production, versions[0]);

  // Each replica as the API runs it: its own cache over its own MLflow client, its own server.
  const replicas: { app: ReturnType<typeof buildServer>; base: string; mlflow: MlflowClient }[] = [];
  const agent = new Agent({ connections: 4 * replicaCount, keepAliveTimeout: 60_000 });
  try {
    for (let r = 0; r < replicaCount; r++) {
      const own = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
      const cache = new ActiveVersionCache(own, { ttlMs: 3_600_000, staleWhileRevalidateMs: 0, maxWaitMs: 30_000 });
      const app = buildServer({
        client: ctx.client,
        config: { identity: { directory: new IdentityDirectory([]), verificationKeys: {} }, slack: { apiUrl: 'http://127.0.0.1:9/api/', responseUrlPrefixes: [] }, reconcile: { intervalMs: 0, lookbackMs: 1, maxVersions: 1 } },
        logger: createLogger('warn'),
        plugins: [activeRoutes(cache, { invalidateToken: TOKEN })],
      });
      replicas.push({ app, base: '', mlflow: own });
      await app.listen({ host: '127.0.0.1', port: 0 });
      replicas[r].base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    }
    const acts = createCacheActivities({
      invalidator: createInvalidationClient({ urls: replicas.map((r) => r.base), token: TOKEN, dispatcher: agent }),
    });
    const served = async (base: string): Promise<number | undefined> => {
      const res = await request(`${base}/v1/models/${model}/active`, { dispatcher: agent });
      const body = (await res.body.json()) as { version?: number };
      return res.statusCode === 200 ? body.version : undefined;
    };

    for (const r of replicas) {
      await pollUntil(`${model} v${versions[0]} served by ${r.base}`, async () => ((await served(r.base)) === versions[0] ? true : undefined), { intervalMs: 10, timeoutMs: 60_000 });
    }
    const freshness: number[] = [];
    const spread: number[] = [];
    let polls = 0;
    for (let i = 1; i <= samples; i++) {
      const target = versions[i];
      await mlflow.setAlias(model, ALIAS.production, target);
      const t0 = performance.now();
      const r = await acts.invalidateActiveVersion({ model });
      if (r.remote !== 'ok') throw new Error(`P5: invalidation failed: ${r.detail}`);
      // Every replica polled at once, without pause: each one's first answer with the new version ends its clock.
      const each = await Promise.all(
        replicas.map(async (rep) => {
          for (;;) {
            polls++;
            if ((await served(rep.base)) === target) return performance.now() - t0;
            if (performance.now() - t0 > 60_000) throw new Error(`P5: v${target} not served by ${rep.base} within 60 s`);
          }
        }),
      );
      freshness.push(Math.max(...each));
      spread.push(Math.max(...each) - Math.min(...each));
    }
    const updates = opts.updateRoundTrip ? await timeEach(opts.updateRoundTrip, samples) : await skeletonUpdateTimes(ctx, samples);
    const f = median(freshness);
    const u = median(updates);
    const value = f / u;
    const detail =
      `freshness (worst of ${replicaCount} replicas) median ${f.toFixed(1)} ms (${freshness.map((x) => x.toFixed(0)).join('/')}; ` +
      `best-to-worst replica spread median ${median(spread).toFixed(1)} ms; ${polls} GETs for ${samples} changes); ` +
      `update round trip median ${u.toFixed(1)} ms (${updates.map((x) => x.toFixed(0)).join('/')}, ${opts.updateRoundTrip ? "caller's" : 'skeleton workflow'}); ` +
      'freshness = alias moved → fan-out invalidate (HTTP, every replica) → GET serves the new version on every replica, incl. one MLflow read sequence each';
    return { value, pass: value <= 3, freshnessMs: f, updateRoundTripMs: u, detail };
  } finally {
    for (const r of replicas) {
      await r.app.close();
      await r.mlflow.close();
    }
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
