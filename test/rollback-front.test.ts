/**
 * Rollback and re-promotion through the front doors (#11), against the real Temporal, MLflow and API: the API
 * resolves the rollback target (the serving version's lifecycle state, else its MLflow tag), signs the request
 * and starts a NEW RUN of the target's lifecycle (same workflow id, ALLOW_DUPLICATE); a run still going is found
 * (200), one created now answers 201; every refusal has its stable code. The starts land on a task queue no
 * worker polls, so their input stays as written (the workflow side of rollback is tested elsewhere).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { request } from 'undici';
import { getState } from '../src/client.js';
import { approve, startLifecycle } from './support/identity.js';
import { testApiEnv } from './support/identity.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import { startInput } from '../src/audit/temporal.js';
import type { DecisionClaims } from '../src/identity/types.js';
import { lifecycleWorkflowId, type LifecycleInput, type LifecycleState } from '../src/workflows/definitions.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const TOKENS = { alice: 'tok-rb-alice-0123456789', bob: 'tok-rb-bob-0123456789', carolRead: 'tok-rb-carol-0123456789' };
const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.5"] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('rollback and again through the API', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let api: ApiServer;
  let base: string;
  const parked = unique('rb-parked');

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(POLICY, 'rollback-front-policy.yaml');
    worker = await startTestWorker(env, { mlflow, policies: { policyFor: (m) => ({ ...set.policyFor(m), model: m }) } });
    api = buildServer({
      client: env.client,
      config: loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: `${TOKENS.alice}=alice,${TOKENS.bob}=bob,${TOKENS.carolRead}=carol:promote+read` })),
      logger: createLogger('silent'),
      registry: mlflow,
      taskQueue: parked,
    });
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await api?.close();
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  async function post(path: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const res = await request(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
  }

  const claimsOf = (input: LifecycleInput) => JSON.parse(input.trigger.attestation!.payload) as DecisionClaims;

  const phaseIs = (model: string, version: number, phase: LifecycleState['phase']) =>
    eventually(`${model} v${version} in ${phase}`, async () => {
      const s = await getState(env.client, model, version);
      return s.phase === phase ? s : undefined;
    }, 120_000);

  /** A version promoted for real (the worker's queue), approved by bob. */
  async function promoted(model: string): Promise<number> {
    const { version } = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
    await phaseIs(model, version, 'awaiting_approval');
    await approve(env.client, model, version, { by: 'bob' });
    await phaseIs(model, version, 'production');
    return version;
  }

  it('when the serving version is rolled back without --to, then a new run of the version it replaced starts with the signed rollback request (201), and asking again finds it (200)', async () => {
    const model = unique('rb-state');
    const v1 = await promoted(model);
    const v2 = await promoted(model);
    const firstRun = (await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1)).describe()).runId;
    await eventually(`v${v1} superseded`, async () => ((await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1)).describe()).status.name === 'COMPLETED' ? true : undefined));

    const r = await post(`/v1/models/${model}/rollback`, TOKENS.alice, { reason: 'v2 drifts on new traffic' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual(
      [r.json.version, r.json.from, r.json.targetSource, r.json.started, r.json.workflowId],
      [v1, v2, 'workflow', true, lifecycleWorkflowId(model, v1)],
    );
    assert.deepEqual(r.json.request, { kind: 'rollback', reason: 'v2 drifts on new traffic' });
    assert.notEqual(r.json.runId, firstRun);

    const input = await startInput(env.client, lifecycleWorkflowId(model, v1), r.json.runId as string);
    assert.deepEqual(input?.request, { kind: 'rollback', reason: 'v2 drifts on new traffic' });
    const claims = claimsOf(input);
    assert.deepEqual([claims.kind, claims.identity, claims.version, claims.reason, claims.channel], ['rollback', 'alice', v1, 'v2 drifts on new traffic', 'api']);

    // Both runs are in visibility under the one workflow id.
    await eventually('two runs of v1', async () => {
      const runs: string[] = [];
      for await (const wf of env.client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model, v1)}'` })) runs.push(wf.runId);
      return runs.length === 2 && runs.includes(firstRun) ? runs : undefined;
    });

    const again = await post(`/v1/models/${model}/rollback`, TOKENS.bob, { reason: 'same incident', to: v1 });
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.deepEqual([again.json.started, again.json.runId, again.json.targetSource], [false, r.json.runId, 'requested']);
    await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1)).terminate('test done');
  });

  it('when the serving lifecycle cannot be read, then the target comes from its MLflow tag', async () => {
    const model = unique('rb-tags');
    const a = await registerTrainedVersion(mlflow, model);
    const b = await registerTrainedVersion(mlflow, model);
    await mlflow.setVersionTag(model, a.version, TAG.promotedAt, '2026-01-01T00:00:00.000Z');
    await mlflow.setVersionTag(model, b.version, TAG.promotedAt, '2026-01-02T00:00:00.000Z');
    await mlflow.setVersionTag(model, b.version, TAG.previousVersion, String(a.version));
    await mlflow.setAlias(model, ALIAS.production, b.version);
    const r = await post(`/v1/models/${model}/rollback`, TOKENS.alice, { reason: 'incident 42' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual([r.json.version, r.json.from, r.json.targetSource], [a.version, b.version, 'mlflow-tags']);
    await env.client.workflow.getHandle(lifecycleWorkflowId(model, a.version)).terminate('test done');
  });

  it('when a rollback cannot be done, then each refusal names why with its stable code and nothing starts', async () => {
    const model = unique('rb-refuse');
    const a = await registerTrainedVersion(mlflow, model);
    const never = await registerTrainedVersion(mlflow, model);
    const path = `/v1/models/${model}/rollback`;
    // Nothing serves, and no --to.
    let r = await post(path, TOKENS.alice, { reason: 'why not' });
    assert.deepEqual([r.status, r.json.code], [409, 'no_rollback_target']);
    assert.match(String(r.json.message), /has no Production version.*--to/);
    // The serving version replaced none.
    await mlflow.setVersionTag(model, a.version, TAG.promotedAt, '2026-01-01T00:00:00.000Z');
    await mlflow.setVersionTag(model, a.version, TAG.previousVersion, 'none');
    await mlflow.setAlias(model, ALIAS.production, a.version);
    r = await post(path, TOKENS.alice, { reason: 'why not' });
    assert.deepEqual([r.status, r.json.code], [409, 'no_rollback_target']);
    assert.match(String(r.json.message), new RegExp(`version ${a.version} serves and replaced no earlier version`));
    r = await post(path, TOKENS.alice, { reason: 'why not', to: a.version });
    assert.deepEqual([r.status, r.json.code], [409, 'already_serving']);
    r = await post(path, TOKENS.alice, { reason: 'why not', to: never.version });
    assert.deepEqual([r.status, r.json.code], [409, 'never_in_production']);
    assert.match(String(r.json.message), /was never in Production \(no modelgate\.promoted_at tag\)/);
    r = await post(path, TOKENS.alice, { reason: 'why not', to: 99 });
    assert.deepEqual([r.status, r.json.code], [404, 'not_found']);
    for (const body of [{ to: a.version }, { reason: '   ', to: a.version }]) {
      r = await post(path, TOKENS.alice, body);
      assert.deepEqual([r.status, r.json.code], [400, 'reason_required'], JSON.stringify(body));
    }
    r = await post(path, TOKENS.carolRead, { reason: 'why not', to: a.version });
    assert.deepEqual([r.status, r.json.code], [403, 'insufficient_scope']);
    r = await post(path, TOKENS.alice, { reason: 'x', to: 'latest' });
    assert.deepEqual([r.status, r.json.code], [400, 'invalid_body']);
    for (const v of [a.version, never.version]) {
      await assert.rejects(env.client.workflow.getHandle(lifecycleWorkflowId(model, v)).describe(), /not found/i);
    }
  });

  it('when an ended version is promoted again, then only `again` with a reason starts a new run (201)', async () => {
    const model = unique('rb-again');
    const { version } = await registerTrainedVersion(mlflow, model);
    const first = await post('/v1/promotions', TOKENS.alice, { model, version });
    assert.equal(first.status, 201);
    const handle = env.client.workflow.getHandle(lifecycleWorkflowId(model, version));
    await handle.terminate('ended for the test');
    // A plain promotion does not restart an ended lifecycle (REJECT_DUPLICATE): it answers the ended run.
    const plain = await post('/v1/promotions', TOKENS.alice, { model, version });
    assert.deepEqual([plain.status, plain.json.started, plain.json.runId], [200, false, first.json.runId]);

    let r = await post('/v1/promotions', TOKENS.alice, { model, version, again: true });
    assert.deepEqual([r.status, r.json.code], [400, 'reason_required']);
    r = await post('/v1/promotions', TOKENS.alice, { model, version, reason: 'no again' });
    assert.deepEqual([r.status, r.json.code], [400, 'invalid_input']);

    const again = await post('/v1/promotions', TOKENS.alice, { model, version, again: true, reason: 'expired over the holidays' });
    assert.equal(again.status, 201, JSON.stringify(again.json));
    assert.equal(again.json.started, true);
    assert.notEqual(again.json.runId, first.json.runId);
    assert.deepEqual(again.json.request, { kind: 'again', reason: 'expired over the holidays' });
    const input = await startInput(env.client, handle.workflowId, again.json.runId as string);
    assert.deepEqual(input?.request, { kind: 'again', reason: 'expired over the holidays' });
    const claims = claimsOf(input);
    assert.deepEqual([claims.kind, claims.identity, claims.reason], ['promote', 'alice', 'expired over the holidays']);

    await handle.terminate('test done');
  });

  it('when again is asked while the lifecycle still runs, then the running one is found (200), not duplicated', async () => {
    const model = unique('rb-running');
    const { version } = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const first = await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
    await phaseIs(model, version, 'awaiting_approval');
    const running = await post('/v1/promotions', TOKENS.bob, { model, version, again: true, reason: 'me too' });
    assert.deepEqual([running.status, running.json.started, running.json.runId], [200, false, first.runId]);
    const runs: string[] = [];
    for await (const wf of env.client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model, version)}'` })) runs.push(wf.runId);
    assert.deepEqual(runs, [first.runId]);
    await env.client.workflow.getHandle(lifecycleWorkflowId(model, version)).terminate('test done');
  });
});
