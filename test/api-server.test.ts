/**
 * The HTTP front door against the real Temporal dev server, the real MLflow server and the real worker:
 * bearer-token API, signed webhooks (refusals never reach Temporal), dedupe, idempotent starts, GitHub PR
 * signals, health and metrics.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { request } from 'undici';
import { defaultPayloadConverter } from '@temporalio/common';
import { getState } from '../src/client.js';
import { startLifecycle, testApiEnv } from './support/identity.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { githubSignature, mlflowSignature, slackSignature } from '../src/webhooks/signatures.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  base:
`;

function policies(): PolicySource {
  const set = parsePolicy(POLICY, 'api-test-policy.yaml');
  return { policyFor: (model: string) => ({ ...set.policyFor('base'), model }) };
}

const TOKENS = {
  alice: 'tok-alice-0123456789abcdef',
  bob: 'tok-bob-0123456789abcdef',
  mallory: 'tok-mallory-0123456789abcdef',
  carol: 'tok-carol-0123456789abcdef',
  kfp: 'tok-kfp-0123456789abcdef',
};
const MLFLOW_SECRET = 'mlflow-webhook-secret-for-tests';
const GITHUB_SECRET = 'github-webhook-secret-for-tests';
const SLACK_SECRET = 'slack-signing-secret-for-tests';

/** Counts every Temporal call made through the client's workflow API (starts and handle methods). */
function spyClient(real: Client): { client: Client; calls: () => number } {
  let calls = 0;
  const wrapHandle = (h: object) =>
    new Proxy(h, {
      get(t, p, r) {
        const v = Reflect.get(t, p, r) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          calls++;
          return (v as (...a: unknown[]) => unknown).apply(t, args);
        };
      },
    });
  const workflow = new Proxy(real.workflow, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r) as unknown;
      if (typeof v !== 'function') return v;
      if (p === 'getHandle') return (...args: unknown[]) => wrapHandle((v as (...a: unknown[]) => object).apply(t, args));
      return (...args: unknown[]) => {
        calls++;
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
  const client = new Proxy(real, { get: (t, p, r) => (p === 'workflow' ? workflow : (Reflect.get(t, p, r) as unknown)) });
  return { client, calls: () => calls };
}

describe('HTTP API', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let app: ApiServer;
  let base: string;
  let spy: ReturnType<typeof spyClient>;

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    worker = await startTestWorker(env, { mlflow, policies: policies() });
    spy = spyClient(env.client);
    const config = loadApiConfig(testApiEnv({
      MODELGATE_API_TOKENS: Object.entries(TOKENS).map(([who, t]) => `${t}=${who === 'kfp' ? 'kubeflow-pipeline' : who}`).join(','),
      MODELGATE_MLFLOW_WEBHOOK_SECRET: MLFLOW_SECRET,
      MODELGATE_GITHUB_WEBHOOK_SECRET: GITHUB_SECRET,
      MODELGATE_SLACK_SIGNING_SECRET: SLACK_SECRET,
    }));
    app = buildServer({
      client: spy.client,
      config,
      logger: createLogger('silent'),
      mlflow: { trackingUri: testStack().mlflowUri },
      taskQueue: worker.taskQueue,
      githubTargets: () => [{ repo: 'acme/gitops', baseBranch: 'main' }],
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  after(async () => {
    await app?.close();
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  async function call(method: 'GET' | 'POST', path: string, opts: { token?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Buffer | undefined = opts.raw;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await request(`${base}${path}`, { method, headers, body });
    const text = await res.body.text();
    const json = text && String(res.headers['content-type']).includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {};
    return { status: res.statusCode, json, text, headers: res.headers };
  }

  const staged = async (): Promise<{ model: string; version: number }> => {
    const model = unique('api');
    const v = await registerTrainedVersion(mlflow, model, { user: 'carol' });
    await startLifecycle(env.client, model, v.version, { source: 'test', by: 'carol' }, worker.taskQueue);
    await eventually(`${model} awaiting approval`, async () => ((await getState(env.client, model, v.version)).phase === 'awaiting_approval' ? true : undefined));
    return { model, version: v.version };
  };

  const mlflowDelivery = (body: string, opts: { id?: string; ts?: number; secret?: string } = {}) => {
    const id = opts.id ?? randomUUID();
    const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
    return {
      'content-type': 'application/json',
      'x-mlflow-delivery-id': id,
      'x-mlflow-timestamp': ts,
      'x-mlflow-signature': mlflowSignature(opts.secret ?? MLFLOW_SECRET, id, ts, body),
    };
  };

  const versionCreated = (model: string, version: number) =>
    JSON.stringify({ entity: 'model_version', action: 'created', timestamp: new Date().toISOString(), data: { name: model, version: String(version), source: 'models:/m-1', run_id: null, tags: {}, description: null } });

  it('when signed requests are forged, stale, tampered or lack headers, then each answers 401 with a stable code and Temporal is never called', async () => {
    const before = spy.calls();
    const body = versionCreated(unique('forged'), 1);
    const now = Math.floor(Date.now() / 1000);
    const goodMlflow = mlflowDelivery(body);
    const cases: Array<{ name: string; path: string; raw: string; headers: Record<string, string>; code: string }> = [
      { name: 'mlflow forged', path: '/webhooks/mlflow', raw: body, headers: mlflowDelivery(body, { secret: 'wrong' }), code: 'bad_signature' },
      { name: 'mlflow stale', path: '/webhooks/mlflow', raw: body, headers: mlflowDelivery(body, { ts: now - 301 }), code: 'stale_request' },
      { name: 'mlflow tampered', path: '/webhooks/mlflow', raw: body.replace('"1"', '"2"'), headers: goodMlflow, code: 'bad_signature' },
      { name: 'mlflow no signature', path: '/webhooks/mlflow', raw: body, headers: { 'content-type': 'application/json', 'x-mlflow-delivery-id': 'x', 'x-mlflow-timestamp': String(now) }, code: 'bad_signature' },
      { name: 'github forged', path: '/webhooks/github', raw: '{}', headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature('wrong', '{}') }, code: 'bad_signature' },
      { name: 'github tampered', path: '/webhooks/github', raw: '{"a":2}', headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': githubSignature(GITHUB_SECRET, '{"a":1}') }, code: 'bad_signature' },
      { name: 'github missing', path: '/webhooks/github', raw: '{}', headers: { 'content-type': 'application/json', 'x-github-event': 'pull_request', 'x-github-delivery': randomUUID() }, code: 'bad_signature' },
      { name: 'slack forged', path: '/slack/interactions', raw: 'payload=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(now), 'x-slack-signature': slackSignature('wrong', String(now), 'payload=%7B%7D') }, code: 'bad_signature' },
      { name: 'slack stale', path: '/slack/interactions', raw: 'payload=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(now - 301), 'x-slack-signature': slackSignature(SLACK_SECRET, String(now - 301), 'payload=%7B%7D') }, code: 'stale_request' },
      { name: 'slack tampered', path: '/slack/interactions', raw: 'payload=%7B%22a%22%7D', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(now), 'x-slack-signature': slackSignature(SLACK_SECRET, String(now), 'payload=%7B%7D') }, code: 'bad_signature' },
      { name: 'slack missing', path: '/slack/interactions', raw: 'payload=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded' }, code: 'bad_signature' },
    ];
    for (const c of cases) {
      const r = await call('POST', c.path, { raw: c.raw, headers: c.headers });
      assert.equal(r.status, 401, `${c.name}: ${r.text}`);
      assert.equal(r.json.code, c.code, c.name);
      assert.equal(typeof r.json.message, 'string', c.name);
    }
    assert.equal(spy.calls(), before, 'no Temporal call for any refused request');
  });

  it('when /v1 is called without a valid token, with a bad or oversized body, or on an unknown path, then the JSON error has the right status and code', async () => {
    const before = spy.calls();
    const cases = [
      { r: await call('POST', '/v1/promotions', { body: { model: 'm', version: 1 } }), status: 401, code: 'unauthorized' },
      { r: await call('POST', '/v1/promotions', { token: 'tok-nobody-0123456789abcdef', body: { model: 'm', version: 1 } }), status: 401, code: 'unauthorized' },
      { r: await call('POST', '/v1/promotions', { token: TOKENS.alice, body: { model: 'm', version: 0 } }), status: 400, code: 'invalid_body' },
      { r: await call('POST', '/v1/promotions', { token: TOKENS.alice, body: { model: 'm' } }), status: 400, code: 'invalid_body' },
      { r: await call('POST', '/v1/promotions', { token: TOKENS.alice, raw: '{"model":', headers: { 'content-type': 'application/json' } }), status: 400, code: 'invalid_body' },
      { r: await call('POST', '/v1/promotions', { token: TOKENS.alice, body: { model: 'm', version: 1, padding: 'x'.repeat(20_000) } }), status: 413, code: 'payload_too_large' },
      { r: await call('POST', '/v1/models/m/versions/abc/approve', { token: TOKENS.alice, body: {} }), status: 400, code: 'invalid_params' },
      { r: await call('POST', '/v1/models/m/versions/1/reject', { token: TOKENS.alice, body: {} }), status: 400, code: 'invalid_body' },
      { r: await call('GET', '/v1/nothing-here', { token: TOKENS.alice }), status: 404, code: 'not_found' },
    ];
    for (const [i, c] of cases.entries()) {
      assert.equal(c.r.status, c.status, `case ${i}: ${c.r.text}`);
      assert.equal(c.r.json.code, c.code, `case ${i}: ${c.r.text}`);
      assert.ok(typeof c.r.json.message === 'string' && c.r.json.message.length > 0, `case ${i}`);
      assert.ok(!c.r.text.includes('tok-'), `case ${i}: no token echoed`);
    }
    assert.equal(spy.calls(), before, 'nothing reached Temporal');
    const missing = await call('GET', `/v1/models/${unique('nope')}/versions/3`, { token: TOKENS.alice });
    assert.equal(missing.status, 404);
    assert.equal(missing.json.code, 'not_found');
  });

  it('when two MLflow webhooks, two API calls and a CLI start arrive at once for one version, then exactly one execution exists', async () => {
    const model = unique('race');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const body = versionCreated(model, v.version);
    const results = await Promise.all([
      call('POST', '/webhooks/mlflow', { raw: body, headers: mlflowDelivery(body) }),
      call('POST', '/webhooks/mlflow', { raw: body, headers: mlflowDelivery(body) }),
      call('POST', '/v1/promotions', { token: TOKENS.kfp, body: { model, version: v.version, source: 'kubeflow' } }),
      call('POST', '/v1/promotions', { token: TOKENS.alice, body: { model, version: v.version } }),
      startLifecycle(env.client, model, v.version, { source: 'cli', by: 'carol' }, worker.taskQueue),
    ]);
    for (const r of results.slice(0, 2)) assert.equal((r as { status: number }).status, 202, JSON.stringify(r));
    for (const r of results.slice(2, 4)) assert.ok([200, 201].includes((r as { status: number }).status), JSON.stringify(r));
    const runIds = new Set([
      (results[2] as { json: Record<string, unknown> }).json.runId,
      (results[3] as { json: Record<string, unknown> }).json.runId,
      (results[4] as { runId: string }).runId,
    ]);
    assert.equal(runIds.size, 1, `one run: ${[...runIds].join(', ')}`);
    const wid = lifecycleWorkflowId(model, v.version);
    const count = await eventually('visibility to list the execution', async () => {
      let n = 0;
      for await (const _ of env.client.workflow.list({ query: `WorkflowId = '${wid}'` })) n++;
      return n > 0 ? n : undefined;
    });
    assert.equal(count, 1);
  });

  it('when the same MLflow delivery arrives twice, then the second is answered "duplicate" without touching Temporal', async () => {
    const model = unique('dup');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const body = versionCreated(model, v.version);
    const headers = mlflowDelivery(body);
    const first = await call('POST', '/webhooks/mlflow', { raw: body, headers });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.workflowId, lifecycleWorkflowId(model, v.version));
    const before = spy.calls();
    const second = await call('POST', '/webhooks/mlflow', { raw: body, headers });
    assert.equal(second.status, 200);
    assert.equal(second.json.status, 'duplicate');
    assert.equal(spy.calls(), before);
    // Alias and tag events are recorded, not acted on.
    const aliasBody = JSON.stringify({ entity: 'model_version_alias', action: 'created', timestamp: new Date().toISOString(), data: { name: model, alias: 'champion', version: String(v.version) } });
    const alias = await call('POST', '/webhooks/mlflow', { raw: aliasBody, headers: mlflowDelivery(aliasBody) });
    assert.equal(alias.status, 202);
    assert.equal(alias.json.status, 'recorded');
    assert.equal(spy.calls(), before);
  });

  it('when a modelgate PR of the configured repository is merged (and GitHub redelivers it), then the lifecycle gets exactly one hint; other repositories, bases and branches are ignored', async () => {
    const { model, version } = await staged();
    const pull = (p: { repo?: string; base?: string; head?: string }) =>
      JSON.stringify({
        action: 'closed',
        sender: { login: 'octocat' },
        repository: { full_name: p.repo ?? 'acme/gitops' },
        pull_request: {
          merged: true,
          merge_commit_sha: 'abc123def',
          head: { ref: p.head ?? `modelgate/${model}/v${version}`, sha: 'h1' },
          base: { ref: p.base ?? 'main' },
          merged_by: { login: 'octocat' },
        },
      });
    const signed = (payload: string, delivery = randomUUID()) => ({
      'content-type': 'application/json',
      'x-github-event': 'pull_request',
      'x-github-delivery': delivery,
      'x-hub-signature-256': githubSignature(GITHUB_SECRET, payload),
    });
    const before = spy.calls();
    for (const [payload, reason] of [
      [pull({ repo: 'mallory/gitops' }), /^repository mallory\/gitops is not a configured GitOps repository$/],
      [pull({ base: 'dev' }), /^base branch dev of acme\/gitops is not a configured GitOps base branch$/],
      [pull({ head: 'feature/foo' }), /not a modelgate branch/],
    ] as const) {
      const ignored = await call('POST', '/webhooks/github', { raw: payload, headers: signed(payload) });
      assert.equal(ignored.status, 202, ignored.text);
      assert.equal(ignored.json.status, 'ignored');
      assert.match(String(ignored.json.reason), reason);
    }
    assert.equal(spy.calls(), before, 'nothing reached Temporal');

    const payload = pull({});
    const delivery = randomUUID();
    const headers = signed(payload, delivery);
    const first = await call('POST', '/webhooks/github', { raw: payload, headers });
    assert.equal(first.status, 202, first.text);
    assert.equal(first.json.status, 'signalled');
    const again = await call('POST', '/webhooks/github', { raw: payload, headers });
    assert.equal(again.json.status, 'duplicate');
    // A signal that arrives while a workflow task is running is buffered and reaches history when the task ends.
    const signals = await eventually('the pullRequest signal in history', async () => {
      const history = await env.client.workflow.getHandle(lifecycleWorkflowId(model, version)).fetchHistory();
      const found = (history.events ?? []).filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'pullRequest');
      return found.length ? found : undefined;
    });
    assert.equal(signals.length, 1);
    // Only a hint: who merged and which SHAs the workflow reads from the provider, never from the delivery.
    const input = defaultPayloadConverter.fromPayload<Record<string, unknown>>(signals[0].workflowExecutionSignaledEventAttributes!.input!.payloads![0]);
    assert.deepEqual(input, { action: 'merged', hint: true, deliveryId: delivery });
  });

  it('when approvers act through the API, then identity comes from the token and policy errors map to 403/409 codes', async () => {
    const { model, version } = await staged();
    const path = `/v1/models/${encodeURIComponent(model)}/versions/${version}`;
    const mallory = await call('POST', `${path}/approve`, { token: TOKENS.mallory, body: {} });
    assert.equal(mallory.status, 403, mallory.text);
    assert.equal(mallory.json.code, 'unauthorized_approver');
    // carol registered the version and is an approver: four-eyes refuses her (no body at all is fine too).
    const carol = await call('POST', `${path}/approve`, { token: TOKENS.carol });
    assert.equal(carol.status, 403, carol.text);
    assert.equal(carol.json.code, 'self_approval');
    const bob = await call('POST', `${path}/approve`, { token: TOKENS.bob, body: { comment: 'metrics look good' } });
    assert.equal(bob.status, 200, bob.text);
    assert.equal(bob.json.already, false);
    const state = bob.json.state as LifecycleState;
    assert.deepEqual(state.approvals.map((a) => [a.by, a.via]), [['bob', 'api']]);
    const bobAgain = await call('POST', `${path}/approve`, { token: TOKENS.bob, body: {} });
    assert.equal(bobAgain.status, 200);
    assert.equal(bobAgain.json.already, true);
    assert.match(String(bobAgain.json.message), /already approved/);
    const alice = await call('POST', `${path}/approve`, { token: TOKENS.alice, body: {} });
    assert.equal(alice.status, 409, alice.text);
    assert.equal(alice.json.code, 'not_awaiting_approval');
    assert.match(String(alice.json.message), /already approved \(by bob via api\)/);
    const got = await call('GET', path, { token: TOKENS.alice });
    assert.equal(got.status, 200);
    assert.equal((got.json as unknown as LifecycleState).approvals[0]?.by, 'bob');
  });

  it('when a pipeline token (promote scope only) approves, rejects or retires, then 403 insufficient_scope and Temporal is not called', async () => {
    const { model, version } = await staged();
    const path = `/v1/models/${encodeURIComponent(model)}/versions/${version}`;
    const before = spy.calls();
    for (const [what, body] of [['approve', {}], ['reject', { reason: 'not mine to say' }], ['retire', {}]] as const) {
      const r = await call('POST', `${path}/${what}`, { token: TOKENS.kfp, body });
      assert.equal(r.status, 403, `${what}: ${r.text}`);
      assert.equal(r.json.code, 'insufficient_scope', what);
      assert.match(String(r.json.message), new RegExp(`kubeflow-pipeline's credential does not carry the "${what === 'reject' ? 'approve' : what}" scope`));
    }
    assert.equal(spy.calls(), before, 'refused before reaching Temporal');
    const who = await call('GET', '/v1/whoami', { token: TOKENS.kfp });
    assert.deepEqual(who.json.scopes, ['promote', 'read']);
  });

  it('when a pipeline promotes on behalf of carol through the API, then carol and the pipeline are registrants and carol may not approve', async () => {
    const model = unique('api-behalf');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const started = await call('POST', '/v1/promotions', { token: TOKENS.kfp, body: { model, version: v.version, source: 'kubeflow', onBehalfOf: 'carol' } });
    assert.equal(started.status, 201, started.text);
    await eventually(`${model} awaiting approval`, async () => ((await getState(env.client, model, v.version)).phase === 'awaiting_approval' ? true : undefined));
    const path = `/v1/models/${encodeURIComponent(model)}/versions/${v.version}`;
    const carol = await call('POST', `${path}/approve`, { token: TOKENS.carol, body: {} });
    assert.equal(carol.json.code, 'self_approval', carol.text);
    const s = (await call('GET', path, { token: TOKENS.alice })).json as unknown as LifecycleState;
    assert.deepEqual(s.requestedBy, { identity: 'kubeflow-pipeline', onBehalfOf: 'carol', channel: 'kubeflow' });
    // A person may not speak for someone else, and the named person must exist.
    const alice = await call('POST', '/v1/promotions', { token: TOKENS.alice, body: { model, version: v.version, onBehalfOf: 'bob' } });
    assert.equal(alice.status, 403, alice.text);
    const ghost = await call('POST', '/v1/promotions', { token: TOKENS.kfp, body: { model, version: v.version, onBehalfOf: 'ghost' } });
    assert.equal(ghost.status, 400, ghost.text);
  });

  it('when a webhook started the lifecycle and carol then asks for the promotion, then carol is a registrant and may not approve', async () => {
    const model = unique('api-late-request');
    const v = await registerTrainedVersion(mlflow, model);
    const body = versionCreated(model, v.version);
    assert.equal((await call('POST', '/webhooks/mlflow', { raw: body, headers: mlflowDelivery(body) })).status, 202);
    await eventually(`${model} awaiting approval`, async () => ((await getState(env.client, model, v.version)).phase === 'awaiting_approval' ? true : undefined));
    const path = `/v1/models/${encodeURIComponent(model)}/versions/${v.version}`;
    // Nobody is known to have registered it: four-eyes fails closed.
    assert.equal((await call('POST', `${path}/approve`, { token: TOKENS.bob, body: {} })).json.code, 'unknown_registrant');
    const again = await call('POST', '/v1/promotions', { token: TOKENS.carol, body: { model, version: v.version } });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.started, false);
    assert.equal((await call('POST', `${path}/approve`, { token: TOKENS.carol, body: {} })).json.code, 'self_approval');
    const bob = await call('POST', `${path}/approve`, { token: TOKENS.bob, body: {} });
    assert.equal(bob.status, 200, bob.text);
  });

  it('when an approver rejects through the API with a reason, then the lifecycle records the rejection by the token identity', async () => {
    const { model, version } = await staged();
    const r = await call('POST', `/v1/models/${encodeURIComponent(model)}/versions/${version}/reject`, { token: TOKENS.alice, body: { reason: 'drift on segment B' } });
    assert.equal(r.status, 200, r.text);
    const s = r.json.state as LifecycleState;
    assert.equal(s.rejection?.by, 'alice');
    assert.equal(s.rejection?.reason, 'drift on segment B');
  });

  it('when probed, then /healthz and /readyz answer 200 with Temporal and MLflow checked, and /metrics exposes the API counters', async () => {
    const h = await call('GET', '/healthz');
    assert.equal(h.status, 200);
    const r = await call('GET', '/readyz');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json.checks as object).sort(), ['mlflow', 'temporal']);
    const m = await call('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /text\/plain/);
    assert.match(m.text, /modelgate_api_requests_total\{route="\/webhooks\/mlflow",status="401"\}/);
    assert.match(m.text, /modelgate_webhook_deliveries_total\{source="mlflow",outcome="duplicate"\}/);
  });

  it('when MLflow is down, then /readyz answers 503 unavailable naming MLflow', async () => {
    const down = buildServer({
      client: env.client,
      config: loadApiConfig({}),
      logger: createLogger('silent'),
      mlflow: { trackingUri: 'http://127.0.0.1:9' },
    });
    try {
      const r = await down.inject({ method: 'GET', url: '/readyz' });
      assert.equal(r.statusCode, 503);
      const j = r.json<{ code: string; message: string }>();
      assert.equal(j.code, 'unavailable');
      assert.match(j.message, /mlflow/);
      const s = await down.inject({ method: 'POST', url: '/slack/interactions', payload: 'payload=%7B%7D', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(s.statusCode, 503);
      assert.equal(s.json<{ code: string }>().code, 'not_configured');
    } finally {
      await down.close();
    }
  });
});
