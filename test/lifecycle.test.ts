/**
 * The modelLifecycle workflow end to end on the real Temporal dev server and the real MLflow server, in
 * "registry only" deployment mode.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState, ModelgateError } from '../src/client.js';
import { approve, reject, retire, startLifecycle } from './support/identity.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { policiesByPrefix } from './support/policies.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { stageOf } from '../src/mlflow/stages.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { quiescent } from './support/wait.js';
import { captureHistory } from './support/histories.js';
import { metricValue } from './support/metrics.js';
import { pino } from 'pino';

const POLICY = `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.9", "latency_p99_ms <= 50"]
    requiredTags: [data.lookback_days]
    noRegression:
      - { metric: accuracy, direction: higher_is_better, tolerance: 0.01 }
  approval: { approvers: [alice, bob, carol, dana], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  quorum-model: { approval: { quorum: 2 } }
  expiring-model: { approval: { expiresAfter: 2s } }
`;

const policiesFor = (text: string): PolicySource => policiesByPrefix(text, 'lifecycle-test-policy.yaml');

describe('modelLifecycle in registry mode', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let taskQueue: string;
  /** The worker's activity log lines (pino JSON), parsed. */
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
    worker = await startTestWorker(env, { mlflow, policies: policiesFor(POLICY), logger });
    taskQueue = worker.taskQueue;
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const start = (model: string, version: number) => startLifecycle(client, model, version, { source: 'test' }, taskQueue);
  const phaseIs = (model: string, version: number, ...phases: LifecycleState['phase'][]) =>
    eventually(`${model} v${version} in ${phases.join('/')}`, async () => {
      const s = await getState(client, model, version);
      return phases.includes(s.phase) ? s : undefined;
    }, 120_000);
  const result = (model: string, version: number) =>
    client.workflow.getHandle(lifecycleWorkflowId(model, version)).result() as Promise<LifecycleState>;
  const capture = (model: string, version: number, name: string) =>
    captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, version)), name);

  it('when a good version is approved, then it moves None → Staging → Production with stage, alias and tags in MLflow', async () => {
    const model = unique('happy');
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    const counts = async () => ({
      leftNone: await metricValue('modelgate_stage_duration_seconds', { stage: 'none' }, 'count'),
      leftStaging: await metricValue('modelgate_stage_duration_seconds', { stage: 'staging' }, 'count'),
      approved: await metricValue('modelgate_approval_wait_seconds', { decision: 'approved' }, 'count'),
    });
    const before = await counts();
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    assert.equal(staged.stage, 'Staging');
    assert.equal(staged.evaluation?.passed, true);
    const inStaging = await mlflow.getModelVersion(model, v.version);
    assert.equal(inStaging.current_stage, 'Staging');
    assert.deepEqual(inStaging.aliases, ['staging']);
    // Stages are served: the stage is recorded once, as MLflow's own (stageOf reads the tag only where one exists).
    assert.equal(stageOf(inStaging), 'Staging');

    const afterApproval = await approve(client, model, v.version, { by: 'alice', comment: 'metrics look right', via: 'test' });
    assert.equal(afterApproval.approvals[0]?.by, 'alice');
    const prod = await phaseIs(model, v.version, 'production');
    assert.equal(prod.stage, 'Production');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Production');
    assert.deepEqual(mv.aliases, ['production']);
    assert.equal(mv.tags['modelgate.approved_by'], 'alice');
    assert.equal(mv.tags['modelgate.workflow_id'], lifecycleWorkflowId(model, v.version));
    assert.ok(mv.tags['modelgate.promoted_at']);
    assert.equal((await mlflow.getVersionByAlias(model, 'production'))?.version, v.version);

    const desc = await client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).describe();
    const sa = desc.searchAttributes as Record<string, unknown[]>;
    assert.deepEqual(sa.ModelStage, ['Production']);
    assert.deepEqual(sa.Approver, ['alice']);
    assert.deepEqual(sa.ModelName, [model]);
    assert.deepEqual(prod.timeline.map((t) => t.action).slice(0, 2), ['lifecycle started', 'evaluation passed']);
    // Prometheus: one observation per transition (time in None, time in Staging, approval wait).
    assert.deepEqual(await counts(), { leftNone: before.leftNone + 1, leftStaging: before.leftStaging + 1, approved: before.approved + 1 });
    // Logs: one line per activity attempt, with the lifecycle's keys, never its inputs.
    const mine = logLines.filter((l) => l.model === model && l.version === v.version);
    const done = mine.filter((l) => l.msg === 'activity completed').map((l) => l.activity);
    for (const a of ['waitForVersionReady', 'evaluateVersion', 'enterStaging', 'enterProduction']) assert.ok(done.includes(a), `${a} logged: ${JSON.stringify(done)}`);
    assert.ok(mine.every((l) => l.workflowId === lifecycleWorkflowId(model, v.version) && typeof l.ms === 'number' && !('tags' in l) && !('args' in l)));
    await capture(model, v.version, 'happy-path-in-production');
  });

  it('when the run misses a threshold and a required tag, then the version stays None, tagged with the reasons', async () => {
    const model = unique('weak');
    const v = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.7, latency_p99_ms: 20 } });
    await mlflow.setVersionTag(model, v.version, 'note', 'x');
    await start(model, v.version);
    const end = await result(model, v.version);
    assert.equal(end.outcome, 'rejected_by_evaluation');
    assert.equal(end.stage, 'None');
    assert.match(end.outcomeReason ?? '', /accuracy/);
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'None');
    assert.equal(mv.tags['modelgate.outcome'], 'rejected_by_evaluation');
    assert.match(mv.tags['modelgate.reasons'] ?? '', /accuracy/);
    await capture(model, v.version, 'rejected-by-evaluation');
  });

  it('when the candidate regresses against the Production version, then evaluation fails naming the baseline', async () => {
    const model = unique('regress');
    const first = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.97, latency_p99_ms: 20 } });
    await start(model, first.version);
    await phaseIs(model, first.version, 'awaiting_approval');
    await approve(client, model, first.version, { by: 'alice' });
    await phaseIs(model, first.version, 'production');
    const second = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.94, latency_p99_ms: 20 } });
    await start(model, second.version);
    const end = await result(model, second.version);
    assert.equal(end.outcome, 'rejected_by_evaluation');
    assert.equal(end.evaluation?.baselineVersion, first.version);
    assert.match(end.outcomeReason ?? '', /accuracy/);
    assert.equal((await mlflow.getModelVersion(model, first.version)).current_stage, 'Production');
  });

  it('when an approver rejects, then the lifecycle ends rejected and records who and why', async () => {
    const model = unique('rejected');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await reject(client, model, v.version, { by: 'bob', reason: 'trained on last quarter only' });
    const end = await result(model, v.version);
    assert.equal(end.outcome, 'rejected');
    assert.equal(end.rejection?.by, 'bob');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.tags['modelgate.outcome'], 'rejected');
    assert.equal(mv.tags['modelgate.rejected_by'], 'bob');
    assert.ok(!mv.aliases.includes('staging'));
    await capture(model, v.version, 'rejected-by-approver');
  });

  it('when someone outside the approver list approves, then the update is refused and nothing is written to history', async () => {
    const model = unique('unauth');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    const handle = client.workflow.getHandle(lifecycleWorkflowId(model, v.version));
    // The phase shows in a query before the task that set it (and the activities after it) is in history:
    // compare histories only once nothing is in flight, when only a timer (1 h away) or an input can add events.
    const history = async () => {
      await quiescent(handle);
      return ((await handle.fetchHistory()).events ?? []).map((e) => `${String(e.eventId)} ${String(e.eventType)}`);
    };
    const before = await history();
    await assert.rejects(approve(client, model, v.version, { by: 'mallory' }), (err: unknown) => {
      assert.ok(err instanceof ModelgateError);
      assert.equal(err.code, 'unauthorized_approver');
      assert.match(err.message, /mallory may not approve/);
      return true;
    });
    assert.deepEqual(await history(), before);
    assert.equal((await getState(client, model, v.version)).approvals.length, 0);
  });

  it('when the registrant approves their own version under four-eyes, then it is refused even with a forged mlflow.user tag', async () => {
    const model = unique('selfapprove');
    // carol trains and asks for the promotion, but her client wrote someone else into the run's mlflow.user tag.
    const v = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await startLifecycle(client, model, v.version, { source: 'test', by: 'carol' }, taskQueue);
    await phaseIs(model, v.version, 'awaiting_approval');
    await assert.rejects(approve(client, model, v.version, { by: 'carol' }), (err: unknown) => {
      assert.ok(err instanceof ModelgateError);
      assert.equal(err.code, 'self_approval');
      return true;
    });
    await approve(client, model, v.version, { by: 'bob' });
    await phaseIs(model, v.version, 'production');
  });

  it('when the policy asks for a quorum of 2, then one approval is not enough and the same person twice does not count', async () => {
    const model = unique('quorum-model');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    const one = await approve(client, model, v.version, { by: 'alice' });
    assert.equal(one.phase, 'awaiting_approval');
    // Same updateId (approve:alice): deduplicated by the server, same answer, no second approval.
    const again = await approve(client, model, v.version, { by: 'alice' });
    assert.equal(again.approvals.length, 1);
    const two = await approve(client, model, v.version, { by: 'bob' });
    assert.equal(two.phase, 'deploying');
    const prod = await phaseIs(model, v.version, 'production');
    assert.deepEqual(prod.approvals.map((a) => a.by), ['alice', 'bob']);
    assert.equal((await mlflow.getModelVersion(model, v.version)).tags['modelgate.approved_by'], 'alice,bob');
    await capture(model, v.version, 'quorum-of-two');
  });

  it('when nobody approves before the policy expiry, then the version stays Staging, tagged expired', async () => {
    const model = unique('expiring-model');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const end = await result(model, v.version);
    assert.equal(end.outcome, 'expired');
    assert.equal(end.stage, 'Staging');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Staging');
    assert.equal(mv.tags['modelgate.outcome'], 'expired');
    await assert.rejects(approve(client, model, v.version, { by: 'alice' }), (err: unknown) => {
      assert.ok(err instanceof ModelgateError);
      assert.equal(err.code, 'not_awaiting_approval');
      return true;
    });
    await capture(model, v.version, 'approval-expired');
  });

  it('when a newer version is promoted, then the previous one archives itself and exactly one stays Production', async () => {
    const model = unique('supersede');
    const first = await registerTrainedVersion(mlflow, model);
    await start(model, first.version);
    await phaseIs(model, first.version, 'awaiting_approval');
    await approve(client, model, first.version, { by: 'alice' });
    await phaseIs(model, first.version, 'production');
    const second = await registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.95, latency_p99_ms: 25 } });
    await start(model, second.version);
    await phaseIs(model, second.version, 'awaiting_approval');
    await approve(client, model, second.version, { by: 'bob' });
    const prod = await phaseIs(model, second.version, 'production');
    assert.equal(prod.previousProductionVersion, first.version);
    const old = await result(model, first.version);
    assert.equal(old.outcome, 'superseded');
    assert.equal(old.supersededBy, second.version);
    const oldMv = await mlflow.getModelVersion(model, first.version);
    assert.equal(oldMv.current_stage, 'Archived');
    assert.equal(oldMv.tags['modelgate.superseded_by'], String(second.version));
    assert.deepEqual(oldMv.aliases, []);
    const inProd = await mlflow.getLatestVersions(model, ['Production']);
    assert.deepEqual(inProd.map((x) => x.version), [second.version]);
    await capture(model, first.version, 'superseded');
    await capture(model, second.version, 'superseding');
  });

  it('when the same version is started twice, then there is one execution', async () => {
    const model = unique('dup');
    const v = await registerTrainedVersion(mlflow, model);
    const [a, b] = await Promise.all([start(model, v.version), start(model, v.version)]);
    assert.equal(a.workflowId, b.workflowId);
    assert.equal(a.runId, b.runId);
    const c = await start(model, v.version);
    assert.equal(c.runId, a.runId);
    let count = 0;
    for await (const _ of client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model, v.version)}'` })) count++;
    assert.equal(count, 1);
  });

  it('when a Production version is retired, then it is archived and the model has no production alias', async () => {
    const model = unique('retire');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'alice' });
    await phaseIs(model, v.version, 'production');
    await retire(client, model, v.version, { by: 'carol', reason: 'drift detected' });
    const end = await result(model, v.version);
    assert.equal(end.outcome, 'retired');
    assert.equal((await mlflow.getModelVersion(model, v.version)).current_stage, 'Archived');
    assert.equal(await mlflow.getVersionByAlias(model, 'production'), null);
    await capture(model, v.version, 'retired');
  });

  it('when an unknown version is started, then the lifecycle fails with a clear VersionNotFound', async () => {
    const model = unique('ghost');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version + 5);
    await assert.rejects(result(model, v.version + 5), (err: Error & { cause?: Error & { cause?: Error } }) => {
      assert.match(String(err.cause?.cause?.message ?? err.cause?.message), /has no version/);
      return true;
    });
  });

  it('when two versions are approved at the same moment, 20 rounds over, then MLflow always ends with exactly one Production version', async () => {
    const model = unique('race');
    const rounds = 20;
    for (let round = 0; round < rounds; round++) {
      const [a, b] = await Promise.all([
        registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.99, latency_p99_ms: 10 } }),
        registerTrainedVersion(mlflow, model, { metrics: { accuracy: 0.99, latency_p99_ms: 10 } }),
      ]);
      await Promise.all([start(model, a.version), start(model, b.version)]);
      await Promise.all([phaseIs(model, a.version, 'awaiting_approval'), phaseIs(model, b.version, 'awaiting_approval')]);
      await Promise.all([approve(client, model, a.version, { by: 'alice' }), approve(client, model, b.version, { by: 'bob' })]);
      // Whichever gets the lock first is promoted; the other is re-checked against it under the lock: the newer
      // supersedes it, the older is sent back to waiting (going back is a rollback), never a second Production.
      const settled = (version: number) =>
        eventually(`${model} v${version} settled`, async () => {
          const s = await getState(client, model, version);
          const sentBack = s.phase === 'awaiting_approval' && s.timeline.some((t) => t.action.startsWith('not promoted'));
          return s.phase === 'production' || s.phase === 'done' || sentBack ? s : undefined;
        }, 120_000);
      const ends = await Promise.all([settled(a.version), settled(b.version)]);
      const older = ends.find((s) => s.version === Math.min(a.version, b.version))!;
      if (older.phase === 'awaiting_approval') {
        assert.ok(older.timeline.some((t) => /newer than/.test(t.detail ?? '')), JSON.stringify(older.timeline.slice(-3)));
        await reject(client, model, older.version, { by: 'carol', reason: 'superseded by the newer version' });
      }
      await eventually('one Production version', async () => {
        const prod = await mlflow.getLatestVersions(model, ['Production']);
        const inProd = await mlflow.searchModelVersions({ filter: `name='${model}'`, maxResults: 200 });
        const production = inProd.items.filter((x) => x.current_stage === 'Production');
        return production.length === 1 && prod.length === 1 ? true : undefined;
      });
      const alias = await mlflow.getVersionByAlias(model, 'production');
      const producing = ends.filter((s) => s.phase === 'production');
      assert.ok(producing.length <= 2);
      assert.ok(alias && [a.version, b.version].includes(alias.version), `round ${round}: alias on ${alias?.version}`);
    }
  });
});
