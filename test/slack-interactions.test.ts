/**
 * Slack end to end against a local Slack Web API double, the real worker (whose notify activities post to the
 * double), the real Temporal and MLflow servers: the Staging notification and its updates, Approve/Reject
 * buttons, the reason modal, unmapped and unauthorized users, double clicks, Slack racing the API, and the 3 s
 * acknowledgement while Temporal is slow.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { request } from 'undici';
import { getState } from '../src/client.js';
import { startLifecycle, testApiEnv } from './support/identity.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { loadApiConfig, type ApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { createSlackClient } from '../src/slack/client.js';
import { slackSignature } from '../src/webhooks/signatures.js';
import { REASON_BLOCK, REASON_INPUT, REJECT_VIEW } from '../src/slack/blocks.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { startSlackDouble, type SlackDouble } from './support/slack-double.js';

const CHANNEL = '#mlops-approvals';
const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
  notify: { slackChannel: "${CHANNEL}" }
models:
  base:
`;
const SECRET = 'slack-signing-secret-for-tests';
const TOKEN_BOB = 'tok-bob-0123456789abcdef';
const LINKS = { temporalUiUrl: 'http://temporal-ui.test', namespace: 'default', mlflowUiUrl: 'http://mlflow-ui.test' };

function policies(): PolicySource {
  const set = parsePolicy(POLICY, 'slack-test-policy.yaml');
  return { policyFor: (model: string) => ({ ...set.policyFor('base'), model }) };
}

/** The client with every workflow-handle call delayed (a slow Temporal), counting calls. */
function slowClient(real: Client, delayMs: number): { client: Client; calls: () => number } {
  let calls = 0;
  const workflow = new Proxy(real.workflow, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r) as unknown;
      if (p !== 'getHandle' || typeof v !== 'function') return v;
      return (...args: unknown[]) =>
        new Proxy((v as (...a: unknown[]) => object).apply(t, args), {
          get(h, hp, hr) {
            const m = Reflect.get(h, hp, hr) as unknown;
            if (typeof m !== 'function') return m;
            return async (...a: unknown[]) => {
              calls++;
              await new Promise((res) => setTimeout(res, delayMs));
              return (m as (...x: unknown[]) => unknown).apply(h, a);
            };
          },
        });
    },
  });
  return { client: new Proxy(real, { get: (t, p, r) => (p === 'workflow' ? workflow : (Reflect.get(t, p, r) as unknown)) }), calls: () => calls };
}

describe('Slack', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let slack: SlackDouble;
  let config: ApiConfig;
  const servers: ApiServer[] = [];
  let base: string;

  async function serve(client: Client): Promise<{ app: ApiServer; base: string }> {
    const a = buildServer({
      client,
      config,
      logger: createLogger('silent'),
      slack: createSlackClient({ token: 'xoxb-test-token', apiUrl: slack.apiUrl }),
      links: LINKS,
      taskQueue: worker.taskQueue,
    });
    servers.push(a);
    await a.listen({ host: '127.0.0.1', port: 0 });
    const addr = a.server.address();
    return { app: a, base: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}` };
  }

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    slack = await startSlackDouble();
    worker = await startTestWorker(env, {
      mlflow,
      policies: policies(),
      notify: { slack: createSlackClient({ token: 'xoxb-test-token', apiUrl: slack.apiUrl }), links: LINKS },
    });
    config = loadApiConfig(testApiEnv({
      MODELGATE_API_TOKENS: `${TOKEN_BOB}=bob`,
      MODELGATE_SLACK_SIGNING_SECRET: SECRET,
      MODELGATE_SLACK_API_URL: slack.apiUrl,
      MODELGATE_SLACK_RESPONSE_URL_PREFIXES: slack.responseUrlPrefix,
    }));
    ({ base } = await serve(env.client));
  });

  after(async () => {
    for (const s of servers) await s.close();
    await worker?.stop();
    await slack?.close();
    await mlflow?.close();
    await env?.teardown();
  });

  const staged = async (): Promise<{ model: string; version: number; state: LifecycleState }> => {
    const model = unique('slack');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await startLifecycle(env.client, model, v.version, { source: 'test' }, worker.taskQueue);
    const state = await eventually(`${model} awaiting approval`, async () => {
      const s = await getState(env.client, model, v.version);
      return s.phase === 'awaiting_approval' ? s : undefined;
    });
    return { model, version: v.version, state };
  };

  /** POST a signed interaction payload; returns status, body and how long the answer took. */
  async function interact(payload: Record<string, unknown>, to = base) {
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const ts = String(Math.floor(Date.now() / 1000));
    const t0 = performance.now();
    const res = await request(`${to}/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': slackSignature(SECRET, ts, body) },
      body,
    });
    const text = await res.body.text();
    return { status: res.statusCode, text, ms: performance.now() - t0 };
  }

  const click = (action: 'approve' | 'reject', user: string, model: string, version: number, responseId: string) => ({
    type: 'block_actions',
    user: { id: user },
    trigger_id: `trig-${responseId}`,
    response_url: slack.responseUrl(responseId),
    channel: { id: CHANNEL },
    message: { ts: '1.1' },
    actions: [{ action_id: action, value: JSON.stringify({ model, version }) }],
  });

  const responsesFor = (id: string) => slack.responses.filter((r) => r.id === id);
  const responseArrives = (id: string, timeoutMs?: number) =>
    eventually(`response_url ${id}`, () => responsesFor(id)[0]?.body, timeoutMs);
  const textOf = (b: Record<string, unknown>) => JSON.stringify(b);

  it('when a version reaches Staging, then a Block Kit message with its facts, links and Approve/Reject buttons is posted, and it is updated once approved', async () => {
    const { model, version } = await staged();
    const posted = await eventually('notification posted', () =>
      slack.messages.find((m) => JSON.stringify(m.metadata ?? {}).includes(`modelgate/${model}/v${version}`)),
    );
    assert.equal(posted.channel, CHANNEL);
    const blocks = JSON.stringify(posted.blocks);
    assert.match(blocks, new RegExp(`${model} version ${version}`));
    assert.match(blocks, /Evaluation:\*.*passed/);
    assert.match(blocks, /accuracy: 0\.93/);
    assert.match(blocks, /mlflow-ui\.test\/#\/models\//);
    assert.match(blocks, /mlflow-ui\.test\/#\/runs\//);
    assert.match(blocks, /temporal-ui\.test\/namespaces\/default\/workflows\//);
    const actions = posted.blocks.find((b) => b.type === 'actions') as { elements: Array<{ action_id: string; value: string }> } | undefined;
    assert.deepEqual(actions?.elements.map((e) => e.action_id), ['approve', 'reject']);
    assert.deepEqual(JSON.parse(actions.elements[0].value), { model, version });
    assert.ok(slack.callsOf('chat.postMessage').every((c) => c.authorization === 'Bearer xoxb-test-token'));

    const r = await interact(click('approve', 'U01ALICE', model, version, unique('notify')));
    assert.equal(r.status, 200);
    await eventually('message updated after approval', () => (posted.updates > 0 && !posted.blocks.some((b) => b.type === 'actions') ? true : undefined));
    assert.match(JSON.stringify(posted.blocks), /alice via slack/);
  });

  it('when an approver clicks Approve, then Slack is acked at once, the lifecycle records the approval, and the message is replaced via response_url', async () => {
    const { model, version } = await staged();
    const id = unique('approve');
    const r = await interact(click('approve', 'U02BOB', model, version, id));
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    const body = await responseArrives(id);
    assert.equal(body.replace_original, true, textOf(body));
    assert.match(textOf(body), /Approved by bob via slack/);
    const s = await getState(env.client, model, version);
    assert.deepEqual(s.approvals.map((a) => [a.by, a.via]), [['bob', 'slack']]);
  });

  it('when an unmapped Slack user clicks, then they get an ephemeral explanation and nothing changes', async () => {
    const { model, version } = await staged();
    const spy = slowClient(env.client, 0);
    const { base: spyBase } = await serve(spy.client);
    const id = unique('unmapped');
    const r = await interact(click('approve', 'U09NOBODY', model, version, id), spyBase);
    assert.equal(r.status, 200);
    const body = await responseArrives(id);
    assert.equal(body.response_type, 'ephemeral');
    assert.equal(body.replace_original, false);
    assert.match(String(body.text), /not linked to a modelgate approver/);
    assert.match(String(body.text), /U09NOBODY/);
    assert.equal(spy.calls(), 0, 'no Temporal call');
    const s = await getState(env.client, model, version);
    assert.equal(s.approvals.length, 0);
    assert.equal(s.phase, 'awaiting_approval');
  });

  it('when a mapped user who is not an approver clicks, then the policy refusal comes back ephemerally and nothing changes', async () => {
    const { model, version } = await staged();
    const id = unique('mallory');
    await interact(click('approve', 'U03MALLORY', model, version, id));
    const body = await responseArrives(id);
    assert.equal(body.response_type, 'ephemeral');
    assert.match(String(body.text), /mallory/);
    assert.match(String(body.text), /Nothing was changed/);
    const s = await getState(env.client, model, version);
    assert.equal(s.approvals.length, 0);
  });

  it('when an approver double-clicks Approve, then there is one approval and the second click is told "already approved"', async () => {
    const { model, version } = await staged();
    const [a, b] = [unique('dbl1'), unique('dbl2')];
    await Promise.all([interact(click('approve', 'U01ALICE', model, version, a)), interact(click('approve', 'U01ALICE', model, version, b))]);
    const [ra, rb] = await Promise.all([responseArrives(a), responseArrives(b)]);
    const replaced = [ra, rb].filter((x) => x.replace_original === true);
    const told = [ra, rb].filter((x) => x.response_type === 'ephemeral');
    assert.equal(replaced.length, 1, `${textOf(ra)} / ${textOf(rb)}`);
    assert.equal(told.length, 1);
    assert.match(String(told[0].text), /already approved/);
    const s = await getState(env.client, model, version);
    assert.deepEqual(s.approvals.map((x) => x.by), ['alice']);
    const transitions = s.timeline.filter((t) => /approv/i.test(t.action));
    assert.ok(transitions.length >= 1);
  });

  it('when Slack and the API approve at the same time, then one approval wins and the other is told it is already approved', async () => {
    const { model, version } = await staged();
    const id = unique('race');
    const [, api] = await Promise.all([
      interact(click('approve', 'U01ALICE', model, version, id)),
      request(`${base}/v1/models/${encodeURIComponent(model)}/versions/${version}/approve`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN_BOB}`, 'content-type': 'application/json' },
        body: '{}',
      }).then(async (res) => ({ status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> })),
    ]);
    const slackBody = await responseArrives(id);
    const s = await getState(env.client, model, version);
    assert.equal(s.approvals.length, 1, 'one approval');
    const winner = s.approvals[0].by;
    if (winner === 'alice') {
      assert.equal(slackBody.replace_original, true);
      assert.equal(api.status, 409, JSON.stringify(api.json));
      assert.match(String(api.json.message), /already approved \(by alice via slack\)/);
    } else {
      assert.equal(winner, 'bob');
      assert.equal(api.status, 200);
      assert.equal(slackBody.response_type, 'ephemeral');
      assert.match(String(slackBody.text), /already approved \(by bob via api\)/);
    }
  });

  it('when Temporal answers slowly, then Slack is still acknowledged within 3 s and the outcome follows via response_url', async () => {
    const { model, version } = await staged();
    const slow = slowClient(env.client, 4000);
    const { base: slowBase } = await serve(slow.client);
    const id = unique('slow');
    const r = await interact(click('approve', 'U02BOB', model, version, id), slowBase);
    assert.equal(r.status, 200);
    assert.ok(r.ms < 3000, `acked in ${r.ms.toFixed(0)} ms`);
    assert.equal(responsesFor(id).length, 0, 'outcome not yet known at ack time');
    const body = await responseArrives(id, 30_000);
    assert.equal(body.replace_original, true, textOf(body));
    assert.ok(slow.calls() >= 1);
  });

  it('when an approver clicks Reject, then a reason modal opens; submitting it rejects the version and updates the message', async () => {
    const { model, version } = await staged();
    const posted = await eventually('notification posted', () =>
      slack.messages.find((m) => JSON.stringify(m.metadata ?? {}).includes(`modelgate/${model}/v${version}`)),
    );
    const id = unique('reject');
    const payload = { ...click('reject', 'U03MALLORY', model, version, id), user: { id: 'U02BOB' }, channel: { id: posted.channel }, message: { ts: posted.ts } };
    const before = slack.callsOf('views.open').length;
    const r = await interact(payload);
    assert.equal(r.status, 200);
    const open = await eventually('views.open', () => slack.callsOf('views.open')[before]);
    assert.equal(open.args.trigger_id, `trig-${id}`);
    const view = open.args.view as { callback_id: string; private_metadata: string };
    assert.equal(view.callback_id, REJECT_VIEW);
    assert.equal((await getState(env.client, model, version)).phase, 'awaiting_approval', 'nothing decided before the reason');

    const submission = (reason: string) => ({
      type: 'view_submission',
      user: { id: 'U02BOB' },
      view: { callback_id: REJECT_VIEW, private_metadata: view.private_metadata, state: { values: { [REASON_BLOCK]: { [REASON_INPUT]: { value: reason } } } } },
    });
    const empty = await interact(submission(' '));
    assert.equal(empty.status, 200);
    assert.equal((JSON.parse(empty.text) as { response_action: string }).response_action, 'errors');

    const updatesBefore = posted.updates;
    const ok = await interact(submission('precision dropped on the holdout set'));
    assert.equal(ok.status, 200);
    assert.equal(ok.text, '', 'empty 200 closes the modal');
    const s = await eventually('rejected', async () => {
      const st = await getState(env.client, model, version);
      return st.rejection ? st : undefined;
    });
    assert.deepEqual([s.rejection?.by, s.rejection?.reason], ['bob', 'precision dropped on the holdout set']);
    await eventually('message updated', () => (posted.updates > updatesBefore && /Rejected by bob/.test(JSON.stringify(posted.blocks)) ? true : undefined));
    assert.ok(!posted.blocks.some((b) => b.type === 'actions'), 'buttons removed');
  });
});
