/**
 * Every way to let a version into Production without a real approval, tried on the real Temporal and MLflow
 * servers: each must be refused and, where Temporal offers it, write nothing to the workflow's history.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client, WorkflowHandle } from '@temporalio/client';
import * as raw from '../src/client.js';
import { ModelgateError, stateOf } from '../src/client.js';
import { approveUpdate, lifecycleWorkflowId, supersededSignal, type LifecycleState } from '../src/workflows/definitions.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { quiescent } from './support/wait.js';
import { captureHistory } from './support/histories.js';
import { approve, otherSigner, startLifecycle, TEST_SIGNER, testSign } from './support/identity.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"] }
  approval: { approvers: [alice, bob, group:ml-leads], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  lax: { approval: { requireVerifiedIdentity: false, fourEyes: { unknownRegistrant: allow } } }
  allow-unknown: { approval: { fourEyes: { unknownRegistrant: allow } } }
  quorum2: { approval: { quorum: 2 } }
`;

describe('forged decisions', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  const set = parsePolicy(POLICY, 'forgery-policy.yaml');

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    worker = await startTestWorker(env, {
      mlflow,
      policies: { policyFor: (m) => ({ ...set.policyFor(set.models().find((k) => m.startsWith(`${k}-`)) ?? m), model: m }) },
    });
  });
  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const staged = async (prefix: string, by = 'dana'): Promise<{ model: string; version: number; handle: WorkflowHandle }> => {
    const model = unique(prefix);
    const v = await registerTrainedVersion(mlflow, model);
    await startLifecycle(client, model, v.version, { source: 'test', by }, worker.taskQueue);
    const handle = client.workflow.getHandle(lifecycleWorkflowId(model, v.version));
    await eventually(`${model} awaiting approval`, async () => ((await stateOf(handle)).phase === 'awaiting_approval' ? true : undefined), 60_000);
    return { model, version: v.version, handle };
  };
  const events = async (h: WorkflowHandle) => {
    await quiescent(h);
    return (await h.fetchHistory()).events?.map((e) => `${String(e.eventId)}:${String(e.eventType)}`) ?? [];
  };
  const code = (c: string) => (err: unknown) => err instanceof ModelgateError && err.code === c;

  it('when a raw Temporal update names alice via slack, then it is refused and nothing is written to history', async () => {
    const { handle } = await staged('raw-update');
    const before = await events(handle);
    await assert.rejects(
      handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', via: 'slack' }], updateId: 'approve:alice' }),
      (err: unknown) => /accepts only decisions made through a modelgate front door/.test(String((err as { cause?: Error }).cause?.message)),
    );
    assert.deepEqual(await events(handle), before);
    assert.equal((await stateOf(handle)).approvals.length, 0);
  });

  it('when a decision is signed with a key the worker does not trust (even under its key id), then it is refused', async () => {
    const { model, version, handle } = await staged('rogue-key');
    const before = await events(handle);
    const rogue = otherSigner(TEST_SIGNER.kid);
    await assert.rejects(raw.approve(client, model, version, { by: 'alice', groups: ['ml-leads'] }, (c) => rogue.sign(c)), code('unverified_decision'));
    const stranger = otherSigner('stranger');
    await assert.rejects(raw.approve(client, model, version, { by: 'alice' }, (c) => stranger.sign(c)), code('unverified_decision'));
    // The refused unknown key id made the lifecycle reload its keys (an update, recorded); no approval came of it.
    const s = await stateOf(handle);
    assert.equal(s.approvals.length, 0);
    assert.ok((await events(handle)).length >= before.length);
  });

  it('when an attestation is copied out of the history and sent again, then it adds nothing', async () => {
    const { model, version, handle } = await staged('quorum2-replay');
    await approve(client, model, version, { by: 'alice' });
    const hist = await handle.fetchHistory();
    const accepted = hist.events?.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes)?.workflowExecutionUpdateAcceptedEventAttributes;
    const payload = accepted?.acceptedRequest?.input?.args?.payloads?.[0]?.data;
    assert.ok(payload, 'the accepted approve carries its input');
    const input = JSON.parse(Buffer.from(payload).toString('utf8')) as { attestation: unknown };
    await assert.rejects(handle.executeUpdate(approveUpdate, { args: [input as never], updateId: 'replayed' }), (err: unknown) =>
      /already approved/.test(String((err as { cause?: Error }).cause?.message)),
    );
    const s = await stateOf(handle);
    assert.deepEqual(s.approvals.map((a) => a.by), ['alice']);
    assert.equal(s.phase, 'awaiting_approval');
  });

  it('when the promotion request was not attested, then under four-eyes nobody may approve (registrant unknown)', async () => {
    const model = unique('unattested');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await raw.startLifecycle(client, model, v.version, { source: 'test', by: 'dana' }, worker.taskQueue);
    await eventually(`${model} awaiting approval`, async () => ((await raw.getState(client, model, v.version)).phase === 'awaiting_approval' ? true : undefined), 60_000);
    await assert.rejects(approve(client, model, v.version, { by: 'alice' }), (err: unknown) => {
      assert.ok(err instanceof ModelgateError && err.code === 'unknown_registrant', String(err));
      assert.match(err.message, /four-eyes needs to know who registered it/);
      return true;
    });
  });

  it('when the policy allows an unknown registrant, then approval goes through and the audit trail says who approved, verified', async () => {
    const model = unique('allow-unknown');
    const v = await registerTrainedVersion(mlflow, model);
    await raw.startLifecycle(client, model, v.version, { source: 'test' }, worker.taskQueue);
    await eventually(`${model} awaiting approval`, async () => ((await raw.getState(client, model, v.version)).phase === 'awaiting_approval' ? true : undefined), 60_000);
    await approve(client, model, v.version, { by: 'alice' });
    const s = await eventually(`${model} in Production`, async () => {
      const st = await raw.getState(client, model, v.version);
      return st.phase === 'production' ? st : undefined;
    }, 60_000);
    assert.deepEqual(s.approvals.map((a) => [a.by, a.verified, a.round]), [['alice', true, 1]]);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v.version)), 'attested-approval-unknown-registrant-allowed');
  });

  it('when a member of group:ml-leads who is not listed by name approves, then it counts', async () => {
    const { model, version } = await staged('group');
    const s = await raw.approve(client, model, version, { by: 'zoe', groups: ['ml-leads'] }, testSign);
    assert.equal(s.approvals[0]?.by, 'zoe');
  });

  it('when a Temporal client sends a forged superseded signal to a Production version, then it keeps serving', async () => {
    const { model, version, handle } = await staged('forged-supersede');
    await approve(client, model, version, { by: 'alice' });
    await eventually(`${model} in Production`, async () => ((await stateOf(handle)).phase === 'production' ? true : undefined), 60_000);
    await handle.signal(supersededSignal, { byVersion: version + 7, byWorkflowId: 'attacker' });
    const s = await eventually('the forged signal to be looked at', async () => {
      const st = await stateOf(handle);
      return st.timeline.some((t) => t.action === 'superseded signal ignored') ? st : undefined;
    });
    assert.equal(s.phase, 'production');
    assert.equal(s.stage, 'Production');
    assert.equal((await mlflow.getVersionByAlias(model, 'production'))?.version, version);
    await captureHistory(handle, 'forged-supersede-ignored');
  });

  it('when requireVerifiedIdentity is off, then a bare update is accepted but recorded unverified', async () => {
    const { model, version, handle } = await staged('lax');
    await handle.executeUpdate(approveUpdate, { args: [{ by: 'alice', via: 'temporal-cli' }], updateId: 'approve:alice:r1' });
    const s: LifecycleState = await eventually(`${model} in Production`, async () => {
      const st = await raw.getState(client, model, version);
      return st.phase === 'production' ? st : undefined;
    }, 60_000);
    assert.deepEqual(s.approvals.map((a) => [a.by, a.verified, a.via]), [['alice', false, 'temporal-cli']]);
    assert.ok(s.timeline.some((t) => t.action === 'approved (unverified identity)'));
    await captureHistory(handle, 'unverified-approval-accepted');
  });
});
