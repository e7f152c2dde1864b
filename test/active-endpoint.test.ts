/**
 * The active-version endpoint against the real MLflow server of the test stack: versions are promoted the way
 * the lifecycle's registry activities do it (stage, `production` alias, modelgate.* tags), and the endpoint must
 * publish exactly those facts, follow a Production change at once when invalidated, and read the storage URI
 * from MLflow when the lifecycle did not record one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify, { type FastifyInstance } from 'fastify';
import { request } from 'undici';
import { ActiveVersionCache } from '../src/active/service.js';
import type { ActiveVersion } from '../src/active/types.js';
import { activeFastPath, activeRoutes } from '../src/api/routes/active.js';
import { fastPathServer } from '../src/api/fast-path.js';
import { metricValue } from './support/metrics.js';
import { createCacheActivities } from '../src/activities/cache.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { freePort } from '../src/stack/processes.js';
import { testStack, unique } from './support/stack.js';
import { registerTrainedVersion } from './support/fixtures.js';
import { eventually } from './support/wait.js';

const TOKEN = 'endpoint-test-token-0123456789';

describe('active-version endpoint (real MLflow)', () => {
  let mlflow: MlflowClient;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    mlflow = new MlflowClient({ trackingUri: testStack().mlflowUri, timeoutMs: 15_000 });
    // A TTL far beyond the test: only an invalidation can make a change visible.
    const cache = new ActiveVersionCache(mlflow, { ttlMs: 10 * 60_000, staleWhileRevalidateMs: 0, maxWaitMs: 60_000 });
    // As deployed (src/stack/start.ts): fresh hits over HTTP take the fast path; app.inject() goes through the route.
    app = Fastify({ logger: false, serverFactory: fastPathServer([activeFastPath(cache)]) });
    await app.register(activeRoutes(cache, { invalidateToken: TOKEN }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await app.close();
    await mlflow.close();
  });

  const trainAndRegister = (model: string, metrics: Record<string, number>) => registerTrainedVersion(mlflow, model, { metrics });

  /** What registry.enterProduction does (plus the deploy tags of a GitOps rollout when given). */
  async function promote(model: string, version: number, tags: Record<string, string>): Promise<void> {
    await mlflow.transitionStage(model, version, 'Production');
    await mlflow.setAlias(model, ALIAS.production, version);
    const all = { [TAG.stage]: 'Production', [TAG.workflowId]: lifecycleWorkflowId(model, version), ...tags };
    for (const [k, v] of Object.entries(all)) await mlflow.setVersionTag(model, version, k, v);
  }

  async function get(model: string, headers: Record<string, string> = {}) {
    const res = await request(`${base}/v1/models/${encodeURIComponent(model)}/active`, { headers });
    const text = await res.body.text();
    return { status: res.statusCode, etag: res.headers.etag as string | undefined, body: text ? (JSON.parse(text) as ActiveVersion & { code?: string }) : undefined };
  }

  it('when a version is promoted as the lifecycle does it, then the endpoint publishes its facts; a change is served as soon as it is invalidated', async () => {
    const model = unique('active-real');
    await mlflow.createRegisteredModel(model);
    assert.equal((await get(model)).body?.code, 'no_production_version');

    const v1 = await trainAndRegister(model, { accuracy: 0.91, f1: 0.88 });
    await promote(model, v1.version, {
      [TAG.approvedBy]: 'alice,bob',
      [TAG.approvedAt]: '2026-03-01T10:00:00.000Z',
      [TAG.promotedAt]: '2026-03-01T10:05:00.000Z',
      [TAG.prUrl]: 'https://github.com/acme/deploy/pull/7',
      [TAG.mergeSha]: 'a'.repeat(40),
      [TAG.storageUri]: 's3://models/churn/v1',
    });
    // The cache remembered "none" from the first request: the lifecycle's invalidation makes v1 visible.
    assert.equal((await get(model)).status, 404);
    const acts = createCacheActivities({ invalidateUrl: base, token: TOKEN });
    assert.equal((await acts.invalidateActiveVersion({ model })).remote, 'ok');

    const first = await get(model);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body, {
      model,
      version: v1.version,
      runId: v1.runId,
      storageUri: 's3://models/churn/v1',
      stage: 'Production',
      aliases: ['production'],
      metrics: { accuracy: 0.91, f1: 0.88 },
      approvedBy: ['alice', 'bob'],
      approvedAt: '2026-03-01T10:00:00.000Z',
      pullRequest: 'https://github.com/acme/deploy/pull/7',
      mergeSha: 'a'.repeat(40),
      promotedAt: '2026-03-01T10:05:00.000Z',
      workflowId: lifecycleWorkflowId(model, v1.version),
    });
    assert.equal((await get(model, { 'if-none-match': first.etag! })).status, 304);

    // v2 supersedes v1 in registry mode (no GitOps tags): storage URI comes from MLflow's download URI.
    const v2 = await trainAndRegister(model, { accuracy: 0.94, f1: 0.9 });
    await promote(model, v2.version, { [TAG.approvedBy]: 'carol', [TAG.approvedAt]: '2026-03-02T09:00:00.000Z', [TAG.promotedAt]: '2026-03-02T09:01:00.000Z' });
    await mlflow.transitionStage(model, v1.version, 'Archived');
    await mlflow.setVersionTag(model, v1.version, TAG.stage, 'Archived');
    await mlflow.setVersionTag(model, v1.version, TAG.supersededBy, String(v2.version));
    assert.equal((await get(model)).body?.version, v1.version, 'without invalidation the cache keeps v1 for its TTL');
    assert.equal((await acts.invalidateActiveVersion({ model })).remote, 'ok');

    const second = await get(model, { 'if-none-match': first.etag! });
    assert.equal(second.status, 200, 'a new version is a new ETag');
    assert.equal(second.body?.version, v2.version);
    assert.deepEqual(second.body?.metrics, { accuracy: 0.94, f1: 0.9 });
    assert.deepEqual(second.body?.approvedBy, ['carol']);
    assert.equal(second.body?.pullRequest, null);
    assert.equal(second.body?.storageUri, await mlflow.getDownloadUri(model, v2.version));
    assert.match(second.body?.storageUri ?? '', new RegExp(`${v2.runId}/artifacts/model$`));
    assert.notEqual(second.etag, first.etag);
  });

  /** What a client can see of an answer: status, the headers modelgate sets, and the exact bytes. */
  function visible(status: number, headers: Record<string, unknown>, body: Buffer) {
    const pick = ['etag', 'cache-control', 'content-type', 'content-length', 'retry-after'];
    return { status, headers: Object.fromEntries(pick.filter((h) => headers[h] !== undefined).map((h) => [h, String(headers[h])])), body: body.toString('utf8') };
  }

  async function viaFastPath(path: string, headers: Record<string, string> = {}) {
    const res = await request(`${base}${path}`, { headers });
    return visible(res.statusCode, res.headers, Buffer.from(await res.body.arrayBuffer()));
  }

  async function viaRoute(path: string, headers: Record<string, string> = {}) {
    const res = await app.inject({ method: 'GET', url: path, headers });
    return visible(res.statusCode, res.headers, res.rawPayload);
  }

  const activeRequests = (status: string) => metricValue('modelgate_api_requests_total', { route: '/v1/models/:model/active', status });

  it('when a cached answer is served by the fast path and by the fastify route, then status, headers and bytes are identical', async () => {
    // The serverFactory's server keeps the timeouts fastify gives servers it builds (72 s keep-alive by default).
    assert.equal(app.server.keepAliveTimeout, 72_000);
    const model = unique('active fast path é');
    await mlflow.createRegisteredModel(model);
    const path = `/v1/models/${encodeURIComponent(model)}/active`;
    // Not cached yet: the fast path steps aside and the route reads MLflow.
    assert.equal((await viaFastPath(path)).status, 404);
    assert.deepEqual(await viaFastPath(path), await viaRoute(path), 'a cached "no Production version"');

    const v = await trainAndRegister(model, { accuracy: 0.9 });
    await promote(model, v.version, { [TAG.approvedBy]: 'alice', [TAG.promotedAt]: '2026-04-01T00:00:00.000Z' });
    await createCacheActivities({ invalidateUrl: base, token: TOKEN }).invalidateActiveVersion({ model });
    const fresh = await viaRoute(path); // reads MLflow again after the invalidation
    assert.equal(fresh.status, 200);
    const before200 = await activeRequests('200');
    assert.deepEqual(await viaFastPath(`${path}?gateway=a`), fresh, 'a query string does not change the answer');
    assert.equal(await activeRequests('200'), before200 + 1, 'the fast path counts its requests in the API metrics');
    const etag = fresh.headers.etag;
    assert.deepEqual(await viaFastPath(path, { 'if-none-match': etag }), await viaRoute(path, { 'if-none-match': etag }));
    assert.equal((await viaFastPath(path, { 'if-none-match': `W/${etag}` })).status, 304);

    // What the fast path does not answer still gets fastify's answers (414 for an over-long name, 400 for a bad escape).
    for (const bad of [`/v1/models/${'x'.repeat(300)}/active`, '/v1/models/%E0%A4%A/active']) {
      const answer = await viaFastPath(bad);
      assert.ok(answer.status === 400 || answer.status === 414, `${bad}: ${answer.status}`);
      assert.deepEqual(answer, await viaRoute(bad));
    }
    assert.equal((await request(`${base}${path}`, { method: 'HEAD' })).statusCode, 200);
  });

  it('when the API runs on its own (node dist/src/api/main.js), then it serves the active version and takes the worker\'s invalidation', async () => {
    const model = unique('active-standalone');
    await mlflow.createRegisteredModel(model);
    const v1 = await trainAndRegister(model, { accuracy: 0.9 });
    await promote(model, v1.version, { [TAG.approvedBy]: 'alice' });
    const port = await freePort();
    const token = 'standalone-internal-token-0123';
    const api = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'api', 'main.js')], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: testStack().temporalAddress,
        MLFLOW_TRACKING_URI: testStack().mlflowUri,
        MODELGATE_POLICY_FILE: join(PROJECT_ROOT, 'policies', 'policy.yaml'),
        MODELGATE_API_PORT: String(port),
        MODELGATE_INTERNAL_TOKEN: token,
        MODELGATE_ACTIVE_TTL_MS: '600000',
        MODELGATE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    api.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => api.once('exit', (code) => resolve(code)));
    try {
      const url = `http://127.0.0.1:${port}/v1/models/${encodeURIComponent(model)}/active`;
      const first = await eventually(`the standalone API on port ${port}${stderr ? ` (${stderr})` : ''}`, async () => {
        const res = await request(url);
        return res.statusCode === 200 ? ((await res.body.json()) as ActiveVersion) : (await res.body.dump(), undefined);
      });
      assert.equal(first.version, v1.version);

      const v2 = await trainAndRegister(model, { accuracy: 0.95 });
      await promote(model, v2.version, { [TAG.approvedBy]: 'bob' });
      const stillV1 = (await (await request(url)).body.json()) as ActiveVersion;
      assert.equal(stillV1.version, v1.version, 'cached for the TTL');
      const invalidated = await createCacheActivities({ invalidateUrl: `http://127.0.0.1:${port}`, token }).invalidateActiveVersion({ model });
      assert.equal(invalidated.remote, 'ok');
      assert.equal(((await (await request(url)).body.json()) as ActiveVersion).version, v2.version);
    } finally {
      api.kill('SIGTERM');
      assert.equal(await exited, 0, `the API stops cleanly on SIGTERM: ${stderr}`);
    }
  });
});
