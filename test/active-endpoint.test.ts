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
import { activeRoutes } from '../src/api/routes/active.js';
import { createCacheActivities } from '../src/activities/cache.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { testStack, unique } from './support/stack.js';

const TOKEN = 'endpoint-test-token-0123456789';

describe('active-version endpoint (real MLflow)', () => {
  let mlflow: MlflowClient;
  let app: FastifyInstance;
  let base: string;

  before(async () => {
    mlflow = new MlflowClient({ trackingUri: testStack().mlflowUri, timeoutMs: 15_000 });
    // A TTL far beyond the test: only an invalidation can make a change visible.
    const cache = new ActiveVersionCache(mlflow, { ttlMs: 10 * 60_000, staleWhileRevalidateMs: 0, maxWaitMs: 60_000 });
    app = Fastify({ logger: false });
    await app.register(activeRoutes(cache, { invalidateToken: TOKEN }));
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await app.close();
    await mlflow.close();
  });

  async function trainAndRegister(model: string, metrics: Record<string, number>): Promise<{ version: number; runId: string }> {
    const exp = await mlflow.getOrCreateExperiment(`modelgate-tests-${model}`);
    const run = await mlflow.createRun(exp, { runName: `train-${model}`, tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events' } });
    await mlflow.logBatch(run.run_id, { metrics, params: { lr: '0.01' } });
    await mlflow.finishRun(run.run_id);
    const v = await mlflow.createModelVersion({ name: model, source: `runs:/${run.run_id}/model`, runId: run.run_id });
    return { version: v.version, runId: run.run_id };
  }

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
});
