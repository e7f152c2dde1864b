/**
 * Issue #11 on the real Temporal dev server and the real MLflow server: a promotion is judged under the lock
 * against what serves at that moment; the lock is fenced (a stalled holder cannot be a second writer, a
 * terminated lock workflow is rebuilt); retire runs under the lock; Production set outside modelgate is adopted;
 * rollback and re-promotion are new runs of the version's lifecycle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import { approve, reject, retire, startLifecycle, startRun as startRunAs } from './support/identity.js';
import {
  LIFECYCLE_WORKFLOW,
  lifecycleWorkflowId,
  lockWorkflowId,
  type LifecycleInput,
  type LifecycleState,
  type PromotionRequest,
} from '../src/workflows/definitions.js';
import { policiesByPrefix } from './support/policies.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { TAG_MODEL } from '../src/mlflow/tags.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { captureHistory } from './support/histories.js';
import { ActivityGate } from './support/activity-gate.js';
import { until as waitFor } from './support/wait.js';

const POLICY = `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.9"]
    requiredTags: []
    noRegression:
      - { metric: accuracy, direction: higher_is_better, tolerance: 0.01 }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
  rollback: { quorum: 1, fourEyes: false }
models:
  stall: { deployment: { mode: registry, lockLease: 40s } }
  orphan: { deployment: { mode: registry, lockLease: 40s } }
  keep: { approval: { onRecheckFailure: keep } }
  expiring: { approval: { expiresAfter: 2s } }
`;

const policiesFor = (text: string): PolicySource => policiesByPrefix(text, 'promotion-semantics-policy.yaml');

describe('promotion judged against what serves now, fenced, with a way back', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let taskQueue: string;
  const gate = new ActivityGate();

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    worker = await startTestWorker(env, {
      mlflow,
      policies: policiesFor(POLICY),
      workerOptions: { interceptors: { activity: [gate.interceptor()] } },
    });
    taskQueue = worker.taskQueue;
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const start = (model: string, version: number) => startLifecycle(client, model, version, { source: 'test' }, taskQueue);
  const startRun = (model: string, version: number, request: PromotionRequest, by = 'carol') => startRunAs(client, model, version, request, by, taskQueue);
  const state = (model: string, version: number) => getState(client, model, version);
  const until = (model: string, version: number, what: string, ok: (s: LifecycleState) => boolean, ms = 120_000) =>
    eventually(`${model} v${version}: ${what}`, async () => {
      const s = await state(model, version);
      return ok(s) ? s : undefined;
    }, ms);
  const phaseIs = (model: string, version: number, ...phases: LifecycleState['phase'][]) =>
    until(model, version, phases.join('/'), (s) => phases.includes(s.phase));
  const sentBack = (model: string, version: number) =>
    until(model, version, 'sent back to waiting', (s) => s.phase === 'awaiting_approval' && s.timeline.some((t) => t.action.startsWith('not promoted')));
  const capture = (model: string, version: number, name: string) => captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, version)), name);
  /** Every version MLflow shows in Production (stage), and the alias holder. */
  const production = async (model: string) => {
    const all = await mlflow.searchModelVersions({ filter: `name='${model}'`, maxResults: 200 });
    return {
      stage: all.items.filter((v) => v.current_stage === 'Production').map((v) => v.version).sort(),
      alias: (await mlflow.getVersionByAlias(model, 'production'))?.version,
    };
  };
  const promote = async (model: string, version: number, by = 'alice') => {
    await phaseIs(model, version, 'awaiting_approval');
    await approve(client, model, version, { by });
    return phaseIs(model, version, 'production');
  };
  /**
   * Two versions reach Staging while nothing serves (both pass the gate); `first` is promoted, then `second` is
   * approved by bob and must be sent back by the re-check under the lock.
   */
  const secondSentBack = async (model: string, metrics: [Record<string, number>?, Record<string, number>?], promoteFirst: 0 | 1 = 0) => {
    const vs = [
      await registerTrainedVersion(mlflow, model, metrics[0] ? { metrics: metrics[0] } : {}),
      await registerTrainedVersion(mlflow, model, metrics[1] ? { metrics: metrics[1] } : {}),
    ];
    await Promise.all(vs.map((v) => start(model, v.version)));
    await Promise.all(vs.map((v) => phaseIs(model, v.version, 'awaiting_approval')));
    const first = vs[promoteFirst].version;
    const second = vs[1 - promoteFirst].version;
    await promote(model, first);
    await approve(client, model, second, { by: 'bob' });
    return { first, second, back: await sentBack(model, second) };
  };

  it('when a worse Staging version is approved after a better one was promoted, then it is not promoted and says why', async () => {
    const model = unique('recheck');
    const { first: good, second: worse, back } = await secondSentBack(model, [{ accuracy: 0.95 }, { accuracy: 0.92 }]);
    assert.equal(back.stage, 'Staging');
    assert.equal(back.recheck?.passed, false);
    assert.equal(back.recheck?.baselineVersion, good);
    assert.match(back.recheck?.reasons.join(' ') ?? '', /accuracy/);
    // Approvals dropped (default onRecheckFailure: drop): a new round, nobody's approval counts any more.
    assert.equal(back.approvalRound, 2);
    assert.ok(back.timeline.some((t) => t.action === 're-check failed' && /against version/.test(t.detail ?? '')));
    const mv = await mlflow.getModelVersion(model, worse);
    assert.equal(mv.tags['modelgate.recheck'], 'failed');
    assert.match(mv.tags['modelgate.reasons'] ?? '', /accuracy/);
    assert.deepEqual(await production(model), { stage: [good], alias: good });
    await capture(model, worse, 'recheck-failed-approvals-dropped');
    await reject(client, model, worse, { by: 'carol', reason: 'worse than production' });
  });

  it('when an older Staging version is approved after a newer one serves, then it is not promoted: that is a rollback', async () => {
    const model = unique('older');
    // The newer one is promoted first; then the older one is approved.
    const { first: v2, second: v1, back } = await secondSentBack(model, [], 1);
    assert.ok(back.timeline.some((t) => /newer than .*rollback/.test(t.detail ?? '')));
    assert.deepEqual(await production(model), { stage: [v2], alias: v2 });
    await reject(client, model, v1, { by: 'carol', reason: 'old' });
  });

  it('when approvals are kept after a failed re-check, then they stand and the re-check is retried with back-off', async () => {
    const model = unique('keep');
    const { second: worse, back } = await secondSentBack(model, [{ accuracy: 0.95 }, { accuracy: 0.92 }]);
    assert.equal(back.approvalRound ?? 1, 1);
    assert.deepEqual(back.approvals.map((a) => a.by), ['bob']);
    assert.ok(back.timeline.some((t) => t.action === 'not promoted: re-check failed; approvals kept' && /next re-check after/.test(t.detail ?? '')));
    await reject(client, model, worse, { by: 'carol', reason: 'not getting better' });
    await phaseIs(model, worse, 'done');
  });

  it('when v2 replaced v1 and v1 is rolled back to, then v1 serves again, v2 is archived and the run says rollback with its reason', async () => {
    const model = unique('rollback');
    const v1 = await registerTrainedVersion(mlflow, model);
    await start(model, v1.version);
    await promote(model, v1.version);
    const v2 = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.96 } });
    await start(model, v2.version);
    await promote(model, v2.version);
    await phaseIs(model, v1.version, 'done');

    await startRun(model, v1.version, { kind: 'rollback', reason: 'v2 mislabels refunds (INC-4711)' }, 'carol');
    const waiting = await phaseIs(model, v1.version, 'awaiting_approval');
    assert.equal(waiting.request?.kind, 'rollback');
    assert.equal(waiting.request?.by, 'carol');
    assert.ok(waiting.timeline.some((t) => t.action === 'evaluation skipped'));
    // rollback: { quorum: 1, fourEyes: false } — the incident commander may approve their own rollback.
    await approve(client, model, v1.version, { by: 'carol' });
    const back = await phaseIs(model, v1.version, 'production');
    assert.equal(back.previousProductionVersion, v2.version);
    assert.ok(back.timeline.some((t) => t.action === 'Staging → Production' && /rollback approved: v2 mislabels refunds/.test(t.detail ?? '')));
    const v2End = await phaseIs(model, v2.version, 'done');
    assert.equal(v2End.outcome, 'superseded');
    assert.deepEqual(await production(model), { stage: [v1.version], alias: v1.version });
    await capture(model, v1.version, 'rollback-to-earlier-version');
  });

  it('when a rollback names a version that never served, or is not attested, then the run ends refused and MLflow is untouched', async () => {
    const model = unique('norollback');
    const v1 = await registerTrainedVersion(mlflow, model);
    await startRun(model, v1.version, { kind: 'rollback', reason: 'try' });
    const end = await phaseIs(model, v1.version, 'done');
    assert.equal(end.outcome, 'rejected');
    assert.match(end.outcomeReason ?? '', /never in Production/);
    const mv = await mlflow.getModelVersion(model, v1.version);
    assert.equal(mv.current_stage, 'None');
    assert.equal(mv.tags['modelgate.stage'], undefined);

    // A forged request: a bare start with a rollback request and no attestation.
    const v2 = await registerTrainedVersion(mlflow, model);
    const input: LifecycleInput = { model, version: v2.version, request: { kind: 'rollback', reason: 'forged' }, trigger: { source: 'test', by: 'mallory' } };
    await client.workflow.start(LIFECYCLE_WORKFLOW, { taskQueue, workflowId: lifecycleWorkflowId(model, v2.version), args: [input] });
    const forged = await phaseIs(model, v2.version, 'done');
    assert.match(forged.outcomeReason ?? '', /not attested/);
  });

  it('when an expired version is promoted again with a reason, then a new run takes it to Production', async () => {
    const model = unique('expiring');
    const v1 = await registerTrainedVersion(mlflow, model);
    await start(model, v1.version);
    const expired = await phaseIs(model, v1.version, 'done');
    assert.equal(expired.outcome, 'expired');
    await startRun(model, v1.version, { kind: 'again', reason: 'the approvers were on leave' }, 'dana');
    const again = await phaseIs(model, v1.version, 'awaiting_approval');
    assert.equal(again.request?.kind, 'again');
    assert.ok(again.timeline.some((t) => t.action === 'promotion requested again' && t.detail === 'the approvers were on leave'));
    await approve(client, model, v1.version, { by: 'alice' });
    await phaseIs(model, v1.version, 'production');
    const runs: string[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model, v1.version)}'` })) runs.push(w.runId);
    assert.equal(runs.length, 2);
    await capture(model, v1.version, 'promoted-again-after-expiry');
  });

  it('when the holder stalls past its lease, then the lock is revoked, the next version promotes and the stalled one never writes', async () => {
    const model = unique('stall');
    const v1 = await registerTrainedVersion(mlflow, model);
    const v2 = await registerTrainedVersion(mlflow, model);
    await Promise.all([start(model, v1.version), start(model, v2.version)]);
    await Promise.all([phaseIs(model, v1.version, 'awaiting_approval'), phaseIs(model, v2.version, 'awaiting_approval')]);
    // v1's Production change is held at the worker's door (a paused worker), every attempt, until v2 serves.
    const stall = gate.hold((a) => a.activity === 'enterProduction' && a.model === model && a.version === v1.version);
    await approve(client, model, v1.version, { by: 'alice' });
    await waitFor('v1 stalled in enterProduction', () => stall.held.length > 0, 60_000);
    await approve(client, model, v2.version, { by: 'bob' });
    try {
      await phaseIs(model, v2.version, 'production');
      assert.ok(((await state(model, v1.version)).fence ?? 0) < ((await state(model, v2.version)).fence ?? 0));
    } finally {
      stall.release();
    }
    // The stalled attempt runs now, after its lease: it refuses; v1 learns it lost the lock and is re-judged.
    const back = await sentBack(model, v1.version);
    const actions = back.timeline.map((t) => t.action);
    assert.ok(actions.includes('Production lock revoked') && actions.includes('lost the Production lock'), JSON.stringify(actions));
    await eventually('the stalled attempt has run and refused', async () => {
      const v = await mlflow.getModelVersion(model, v1.version);
      return v.current_stage === 'Staging' ? true : undefined;
    });
    assert.deepEqual(await production(model), { stage: [v2.version], alias: v2.version });
    const m = await mlflow.getRegisteredModel(model);
    // MLflow holds the newest grant's token: v1's own later grant, under which it was re-judged.
    const fences = [(await state(model, v2.version)).fence ?? 0, back.fence ?? 0];
    assert.equal(m.tags[TAG_MODEL.lockToken], String(Math.max(...fences)));
    assert.ok(fences[0] < fences[1]);
    await capture(model, v1.version, 'lock-lease-revoked-holder-re-judged');
    await captureHistory(client.workflow.getHandle(lockWorkflowId(model)), 'lock-workflow-lease-revoked');
    await reject(client, model, v1.version, { by: 'carol', reason: 'v2 serves' });
  });

  it('when the lock workflow is terminated with lifecycles queued, then it is rebuilt and every queued lifecycle completes', async () => {
    const model = unique('orphan');
    const vs = [];
    for (let i = 0; i < 3; i++) vs.push(await registerTrainedVersion(mlflow, model));
    await Promise.all(vs.map((v) => start(model, v.version)));
    await Promise.all(vs.map((v) => phaseIs(model, v.version, 'awaiting_approval')));
    const first = vs[0].version;
    const stall = gate.hold((a) => a.activity === 'enterProduction' && a.model === model && a.version === first && a.attempt === 1);
    await approve(client, model, first, { by: 'alice' });
    await waitFor('holder stalled', () => stall.held.length > 0, 60_000);
    await Promise.all(vs.slice(1).map((v) => approve(client, model, v.version, { by: 'bob' })));
    await eventually('both queued', async () => {
      const q = await client.workflow.getHandle(lockWorkflowId(model)).query<{ queue: unknown[] }>('lockState');
      return q.queue.length === 2 ? true : undefined;
    });
    await client.workflow.getHandle(lockWorkflowId(model)).terminate('test: lock workflow lost');
    stall.release();
    // The newest version ends in Production; the others either served and were superseded or were re-judged.
    const newest = vs[2].version;
    await phaseIs(model, newest, 'production');
    for (const v of vs.slice(0, 2)) {
      const s = await until(model, v.version, 'settled', (x) => x.phase === 'done' || (x.phase === 'awaiting_approval' && x.timeline.some((t) => t.action.startsWith('not promoted'))));
      if (s.phase === 'awaiting_approval') await reject(client, model, v.version, { by: 'carol', reason: 'newer serves' });
    }
    assert.deepEqual(await production(model), { stage: [newest], alias: newest });
    await captureHistory(client.workflow.getHandle(lockWorkflowId(model)), 'lock-workflow-rebuilt-after-terminate');
  });

  it('when retire races a promotion, 5 rounds over, then exactly one version is Production and the alias is never lost', async () => {
    const model = unique('retirerace');
    let serving = (await registerTrainedVersion(mlflow, model)).version;
    await start(model, serving);
    await promote(model, serving);
    for (let round = 0; round < 5; round++) {
      const next = (await registerTrainedVersion(mlflow, model)).version;
      await start(model, next);
      await phaseIs(model, next, 'awaiting_approval');
      await Promise.all([approve(client, model, next, { by: 'alice' }), retire(client, model, serving, { by: 'bob', reason: 'race' })]);
      await phaseIs(model, next, 'production');
      const old = await phaseIs(model, serving, 'done');
      assert.ok(old.outcome === 'superseded' || old.outcome === 'retired', `round ${round}: ${String(old.outcome)}`);
      assert.deepEqual(await production(model), { stage: [next], alias: next }, `round ${round}`);
      if (round === 0) await capture(model, serving, `retire-raced-promotion-${old.outcome}`);
      serving = next;
    }
  });

  it('when a version was put in stage Production outside modelgate, then it is the baseline and is archived on the next promotion', async () => {
    const model = unique('adopt');
    const manual = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.95 } });
    await mlflow.transitionStage(model, manual.version, 'Production');
    const weaker = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.91 } });
    await start(model, weaker.version);
    const refused = await phaseIs(model, weaker.version, 'done');
    assert.equal(refused.outcome, 'rejected_by_evaluation');
    assert.equal(refused.evaluation?.baselineVersion, manual.version);

    const better = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.96 } });
    await start(model, better.version);
    const prod = await promote(model, better.version);
    assert.equal(prod.previousProductionVersion, manual.version);
    assert.ok(prod.timeline.some((t) => t.action === `version ${manual.version} archived`));
    assert.equal((await mlflow.getModelVersion(model, manual.version)).current_stage, 'Archived');
    assert.deepEqual(await production(model), { stage: [better.version], alias: better.version });
  });
});
