/**
 * A real MLflow server (a second one, started here with webhooks allowed to reach loopback over http) with a
 * webhook registered to the API: creating a version starts its lifecycle. And the reconciliation loop: versions
 * no webhook announced get a lifecycle, once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowNotFoundError } from '@temporalio/client';
import { request } from 'undici';
import { getState } from '../src/client.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { testApiEnv } from './support/identity.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { startMlflow, type MlflowServer } from '../src/stack/embedded.js';
import { metricsRegistry } from '../src/observability/metrics.js';
import { reconcileOnce, startReconciler } from '../src/webhooks/reconcile.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  base:
`;
const SECRET = 'mlflow-webhook-secret-for-tests';

function policies(): PolicySource {
  const set = parsePolicy(POLICY, 'webhook-test-policy.yaml');
  return { policyFor: (model: string) => ({ ...set.policyFor('base'), model }) };
}

async function counter(name: string, labels: Record<string, string>): Promise<number> {
  const m = await metricsRegistry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
}

describe('MLflow webhooks and reconciliation', () => {
  let env: TestWorkflowEnvironment;
  let server: MlflowServer;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let app: ApiServer;
  let apiBase: string;
  const managed: string[] = [];

  before(async () => {
    env = await connectTestEnv();
    // Webhooks need a SQL store (SQLite is one), an encryption key for the stored secret, and — to reach a
    // loopback http URL — the private-IP and http allowances.
    server = await startMlflow({
      dataDir: join(testStack().dataDir, unique('mlflow-webhooks')),
      env: {
        MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS: 'true',
        MLFLOW_WEBHOOK_ALLOWED_SCHEMES: 'http,https',
        MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY: randomBytes(32).toString('base64url') + '=',
        MLFLOW_WEBHOOK_CACHE_TTL: '1',
      },
    });
    mlflow = testMlflow(server.url);
    worker = await startTestWorker(env, { mlflow, policies: policies() });
    app = buildServer({
      client: env.client,
      config: loadApiConfig(testApiEnv({ MODELGATE_MLFLOW_WEBHOOK_SECRET: SECRET })),
      logger: createLogger('silent'),
      managedModels: () => managed,
      taskQueue: worker.taskQueue,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    apiBase = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  after(async () => {
    await app?.close();
    await worker?.stop();
    await mlflow?.close();
    await server?.process.stop();
    await env?.teardown();
  });

  it('when MLflow has a webhook to the API and a version is created, then its lifecycle starts from the signed delivery', async () => {
    const res = await request(`${server.url}/api/2.0/mlflow/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: unique('modelgate'),
        url: `${apiBase}/webhooks/mlflow`,
        events: [
          { entity: 'MODEL_VERSION', action: 'CREATED' },
          { entity: 'MODEL_VERSION_ALIAS', action: 'CREATED' },
        ],
        secret: SECRET,
        status: 'ACTIVE',
      }),
    });
    const created = (await res.body.json()) as { webhook?: { webhook_id: string } };
    assert.equal(res.statusCode, 200, JSON.stringify(created));
    assert.ok(created.webhook?.webhook_id);

    const model = unique('hooked');
    managed.push(model);
    const acceptedBefore = await counter('modelgate_webhook_deliveries_total', { source: 'mlflow', outcome: 'accepted' });
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const desc = await eventually('lifecycle started by the webhook', async () => {
      try {
        return await env.client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      }
    });
    assert.match((await desc.staticDetails()) ?? '', /mlflow-webhook/);
    await eventually('delivery counted as accepted', async () =>
      (await counter('modelgate_webhook_deliveries_total', { source: 'mlflow', outcome: 'accepted' })) > acceptedBefore ? true : undefined,
    );
    const s = await eventually('awaiting approval', async () => {
      const st = await getState(env.client, model, v.version);
      return st.phase === 'awaiting_approval' ? st : undefined;
    });
    assert.equal(s.stage, 'Staging');

    // An alias set in MLflow arrives as a recorded event.
    const recordedBefore = await counter('modelgate_webhook_events_total', { source: 'mlflow', event: 'model_version_alias.created' });
    await mlflow.setAlias(model, 'candidate', v.version);
    await eventually('alias event recorded', async () =>
      (await counter('modelgate_webhook_events_total', { source: 'mlflow', event: 'model_version_alias.created' })) > recordedBefore ? true : undefined,
    );
  });

  it('when a version of an unmanaged model is announced, then it is acknowledged and ignored', async () => {
    const ignoredBefore = await counter('modelgate_webhook_deliveries_total', { source: 'mlflow', outcome: 'ignored' });
    const model = unique('unmanaged');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await eventually('ignored delivery', async () =>
      (await counter('modelgate_webhook_deliveries_total', { source: 'mlflow', outcome: 'ignored' })) > ignoredBefore ? true : undefined,
    );
    await assert.rejects(env.client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).describe(), WorkflowNotFoundError);
  });

  it('when versions exist that no webhook announced, then one reconciliation pass starts each once and a second pass starts none', async () => {
    // The shared MLflow has no webhook: only the loop can notice these.
    const shared = testMlflow(testStack().mlflowUri);
    const taskQueue = unique('reconcile-unpolled');
    try {
      const model = unique('reconcile');
      const v1 = await registerTrainedVersion(shared, model);
      const v2 = await registerTrainedVersion(shared, model);
      const deps = { client: env.client, mlflow: shared, models: () => [model, unique('absent')], logger: createLogger('silent'), lookbackMs: 3600_000, maxVersions: 10, taskQueue };
      const first = await reconcileOnce(deps);
      assert.deepEqual(first.started.map((s) => s.version).sort(), [v1.version, v2.version].sort());
      const second = await reconcileOnce(deps);
      assert.deepEqual(second.started, []);
      assert.equal(second.checked, 2);
      const desc = await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1.version)).describe();
      assert.match((await desc.staticDetails()) ?? '', /reconciler/);

      // The running loop: started, does a pass on its own, stops promptly.
      const model2 = unique('reconcile-loop');
      const v3 = await registerTrainedVersion(shared, model2);
      const loop = startReconciler({ ...deps, models: () => [model2], intervalMs: 200 });
      await eventually('loop started the lifecycle', async () => {
        try {
          return await env.client.workflow.getHandle(lifecycleWorkflowId(model2, v3.version)).describe();
        } catch {
          return undefined;
        }
      });
      await loop.stop();
      for (const [m, v] of [[model, v1.version], [model, v2.version], [model2, v3.version]] as const) {
        await env.client.workflow.getHandle(lifecycleWorkflowId(m, v)).terminate('test cleanup');
      }
    } finally {
      await shared.close();
    }
  });
});
