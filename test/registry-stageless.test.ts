/**
 * A registry without stages (Unity Catalog, an MLflow that dropped them): a proxy in front of the real MLflow
 * refuses every transition-stage the way such a registry does. With MODELGATE_REGISTRY_STAGES=auto the worker
 * finds out on the first refusal, and two versions go through the whole lifecycle on the alias and the
 * modelgate.stage tags alone; the active endpoint serves the newer one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { getState } from '../src/client.js';
import { ConfigError } from '../src/config.js';
import { loadRegistryConfig } from '../src/config/registry.js';
import { createRegistryActivities } from '../src/activities/registry.js';
import { ActiveVersionCache } from '../src/active/service.js';
import { activeRoutes } from '../src/api/routes/active.js';
import { MlflowError } from '../src/mlflow/errors.js';
import { isStagelessRefusal } from '../src/mlflow/stages.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { parsePolicy } from '../src/policy/load.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { approve, startLifecycle } from './support/identity.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { startRecordingProxy, type RecordingProxy } from './support/recording-proxy.js';

const POLICY = parsePolicy(
  `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`,
  'stageless-test-policy.yaml',
);
const policies = { policyFor: (model: string) => ({ ...POLICY.policyFor(model), model }) };

/** What a stage-less registry answers (Databricks error shape; MLflow's UC client says stages are "not supported"). */
const REFUSAL = {
  status: 400,
  body: { error_code: 'FEATURE_DISABLED', message: 'Model version stages are not supported by this registry; use aliases instead.' },
};

const refusal = (status: number, errorCode: string, detail: string, endpoint = 'model-versions/transition-stage') =>
  new MlflowError({ status, errorCode, endpoint, detail });

describe('a registry without stages', () => {
  it('when transition-stage is refused the way a stage-less registry does, then it is told apart from a failed request', () => {
    assert.ok(isStagelessRefusal(refusal(400, 'FEATURE_DISABLED', 'Workspace Model Registry is disabled')));
    assert.ok(isStagelessRefusal(refusal(404, 'ENDPOINT_NOT_FOUND', "No API found for 'POST /mlflow/model-versions/transition-stage'")));
    assert.ok(isStagelessRefusal(refusal(404, 'HTTP_ERROR', 'HTTP 404 non-JSON answer (content-type text/html): Not Found')));
    assert.ok(isStagelessRefusal(refusal(400, 'INVALID_PARAMETER_VALUE', 'Stage transitions are not supported for models in Unity Catalog')));
    assert.ok(!isStagelessRefusal(refusal(404, 'RESOURCE_DOES_NOT_EXIST', 'Model Version (name=m, version=9) not found')));
    assert.ok(!isStagelessRefusal(refusal(403, 'PERMISSION_DENIED', 'User lacks permission on model m')));
    assert.ok(!isStagelessRefusal(refusal(503, 'HTTP_ERROR', 'HTTP 503 with an empty body')));
    assert.ok(!isStagelessRefusal(refusal(400, 'FEATURE_DISABLED', 'Aliases are disabled', 'registered-models/alias')));
  });

  it('when MODELGATE_REGISTRY_STAGES is not auto, on or off, then loading fails naming the key; unset it is auto', () => {
    assert.deepEqual(loadRegistryConfig({}), { stages: 'auto' });
    assert.deepEqual(loadRegistryConfig({ MODELGATE_REGISTRY_STAGES: 'off' }), { stages: 'off' });
    assert.throws(() => loadRegistryConfig({ MODELGATE_REGISTRY_STAGES: 'yes' }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^MODELGATE_REGISTRY_STAGES: .*"yes"/);
      return true;
    });
  });

  describe('behind a proxy that refuses transition-stage (real MLflow, real Temporal)', () => {
    let env: TestWorkflowEnvironment;
    let direct: MlflowClient;
    let proxied: MlflowClient;
    let proxy: RecordingProxy;
    let worker: RunningWorker;

    before(async () => {
      env = await connectTestEnv();
      direct = testMlflow(testStack().mlflowUri);
      proxy = await startRecordingProxy(testStack().mlflowUri);
      proxy.respond = (r) => (r.path.startsWith('/api/2.0/mlflow/model-versions/transition-stage') ? REFUSAL : undefined);
      proxied = testMlflow(proxy.url);
      worker = await startTestWorker(env, { mlflow: proxied, policies, registryStages: 'auto' });
    });

    after(async () => {
      await worker?.stop();
      await proxy?.close();
      await proxied?.close();
      await direct?.close();
      await env?.teardown();
    });

    it('when stages are required (on), then the refusal fails the activity for good, naming the setting', async () => {
      const acts = createRegistryActivities({ mlflow: proxied, policies, stages: 'on' });
      const model = unique('stages-on');
      const v = await registerTrainedVersion(direct, model);
      const input = { model, version: v.version, workflowId: lifecycleWorkflowId(model, v.version), at: new Date().toISOString() };
      await assert.rejects(new MockActivityEnvironment({ attempt: 1 }).run((i: typeof input) => acts.enterStaging(i), input), (err: unknown) => {
        assert.ok(err instanceof ApplicationFailure);
        assert.equal(err.type, 'MlflowStagesNotServed');
        assert.equal(err.nonRetryable, true);
        assert.match(err.message, /MODELGATE_REGISTRY_STAGES=off/);
        return true;
      });
    });

    it('when two versions are promoted one after the other, then v2 supersedes v1 by alias and tags, and the active endpoint serves v2', async () => {
      const model = unique('stageless');
      const phaseIs = (version: number, phase: LifecycleState['phase']) =>
        eventually(`${model} v${version} ${phase}`, async () => ((await getState(env.client, model, version)).phase === phase ? true : undefined), 120_000);
      const promote = async (version: number, by: string) => {
        await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
        await phaseIs(version, 'awaiting_approval');
        await approve(env.client, model, version, { by });
        await phaseIs(version, 'production');
      };
      const transitionsBefore = proxy.requests.filter((r) => r.path.includes('transition-stage')).length;

      const v1 = await registerTrainedVersion(direct, model);
      await promote(v1.version, 'alice');
      const first = await direct.getModelVersion(model, v1.version);
      assert.equal(first.current_stage, 'None');
      assert.equal(first.tags[TAG.stage], 'Production');
      assert.deepEqual(first.aliases, [ALIAS.production]);

      const v2 = await registerTrainedVersion(direct, model);
      await promote(v2.version, 'bob');
      const end = (await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1.version)).result()) as LifecycleState;
      assert.equal(end.outcome, 'superseded');
      assert.equal(end.supersededBy, v2.version);

      const [old, now] = await Promise.all([direct.getModelVersion(model, v1.version), direct.getModelVersion(model, v2.version)]);
      assert.deepEqual([old.current_stage, now.current_stage], ['None', 'None'], 'MLflow stages never moved');
      assert.equal(old.tags[TAG.stage], 'Archived');
      assert.equal(old.tags[TAG.supersededBy], String(v2.version));
      assert.deepEqual(old.aliases, []);
      assert.equal(now.tags[TAG.stage], 'Production');
      assert.equal(now.tags[TAG.previousVersion], String(v1.version));
      assert.deepEqual(now.aliases, [ALIAS.production]);
      // Found out once per worker process (possibly by an earlier test's lifecycle), never asked again.
      assert.ok(proxy.requests.filter((r) => r.path.includes('transition-stage')).length - transitionsBefore <= 1);

      const app = Fastify({ logger: false });
      await app.register(activeRoutes(new ActiveVersionCache(proxied, { ttlMs: 60_000, staleWhileRevalidateMs: 0, maxWaitMs: 30_000 }), {}));
      try {
        const res = await app.inject({ method: 'GET', url: `/v1/models/${encodeURIComponent(model)}/active` });
        assert.equal(res.statusCode, 200);
        const body = res.json<{ version: number; stage: string; approvedBy: string[] }>();
        assert.equal(body.version, v2.version);
        assert.equal(body.stage, 'Production');
        assert.deepEqual(body.approvedBy, ['bob']);
      } finally {
        await app.close();
      }
    });
  });
});
