/**
 * A lifecycle that waits long continues as new within its history budget, carrying its whole state (the entity
 * pattern): the test switch `historyBudget` forces it, PR hints make history grow while it waits, and the
 * version still goes to Production with one timeline across the runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { getState } from '../src/client.js';
import { approve, TEST_SIGNER } from './support/identity.js';
import {
  LIFECYCLE_WORKFLOW,
  lifecycleWorkflowId,
  MODEL_NAME,
  MODEL_STAGE,
  MODEL_VERSION,
  pullRequestSignal,
  type LifecycleInput,
  type LifecycleState,
} from '../src/workflows/definitions.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { captureHistory } from './support/histories.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 2, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('a waiting lifecycle continues as new within its history budget', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(POLICY, 'can-policy.yaml');
    worker = await startTestWorker(env, { mlflow, policies: { policyFor: (model) => ({ ...set.policyFor(model), model }) } });
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const runIds = async (model: string, version: number) => {
    const ids: string[] = [];
    for await (const w of client.workflow.list({ query: `WorkflowId = '${lifecycleWorkflowId(model, version)}'` })) ids.push(w.runId);
    return ids;
  };

  it('when history grows past the budget while waiting, then it continues as new ≥ 3 times and still promotes with one timeline', async () => {
    const model = unique('longwait');
    const v = await registerTrainedVersion(mlflow, model);
    const attestation = TEST_SIGNER.sign({ kind: 'promote', model, version: v.version, identity: 'dana', groups: [], channel: 'test' });
    const input: LifecycleInput = { model, version: v.version, trigger: { source: 'test', by: 'dana', attestation }, historyBudget: 60 };
    const workflowId = lifecycleWorkflowId(model, v.version);
    const started = await client.workflow.start(LIFECYCLE_WORKFLOW, {
      taskQueue: worker.taskQueue, workflowId, args: [input],
      typedSearchAttributes: new TypedSearchAttributes([{ key: MODEL_NAME, value: model }, { key: MODEL_VERSION, value: v.version }, { key: MODEL_STAGE, value: 'None' }]),
    });
    const staged = await eventually('awaiting approval', async () => {
      const s = await getState(client, model, v.version);
      return s.phase === 'awaiting_approval' ? s : undefined;
    });
    // One approval of two, then the story must survive the runs: bob's approval counts in a later run.
    await approve(client, model, v.version, { by: 'alice' });
    const handle = client.workflow.getHandle(workflowId);
    let s: LifecycleState = staged;
    for (let i = 0; i < 400 && (s.continuedAsNew ?? 0) < 3; i++) {
      await handle.signal(pullRequestSignal, { hint: true, deliveryId: `d-${i}` });
      s = await getState(client, model, v.version);
    }
    assert.ok((s.continuedAsNew ?? 0) >= 3, `continued as new ${s.continuedAsNew ?? 0} times`);
    assert.ok((await runIds(model, v.version)).length >= 4);
    assert.deepEqual(s.approvals.map((a) => a.by), ['alice']);
    assert.equal(s.phase, 'awaiting_approval');
    // A decision already made is still refused as a duplicate in the new run.
    await assert.rejects(approve(client, model, v.version, { by: 'alice' }), /already approved/);

    await approve(client, model, v.version, { by: 'bob' });
    const prod = await eventually('production', async () => {
      const x = await getState(client, model, v.version);
      return x.phase === 'production' ? x : undefined;
    }, 60_000);
    const actions = prod.timeline.map((t) => t.action);
    assert.deepEqual(actions.slice(0, 3), ['lifecycle started', 'evaluation passed', 'None → Staging']);
    assert.ok(actions.includes('approved') && actions.includes('Staging → Production'), JSON.stringify(actions));
    assert.equal(actions.filter((a) => a === 'approved').length, 2);
    const desc = await handle.describe();
    const sa = desc.searchAttributes as Record<string, unknown[]>;
    assert.deepEqual(sa.ModelStage, ['Production']);
    assert.deepEqual(sa.ModelName, [model]);
    assert.deepEqual(sa.Approver, ['alice', 'bob']);
    assert.equal((await mlflow.getModelVersion(model, v.version)).current_stage, 'Production');
    // The run that promoted (a later one may already wait in Production, itself continued as new): the one
    // whose history schedules enterProduction.
    const promotedRun = await eventually('the run that promoted', async () => {
      for (const runId of await runIds(model, v.version)) {
        const events = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
        if (events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'enterProduction')) return runId;
      }
      return undefined;
    });
    await captureHistory(handle, 'continued-as-new-then-promoted', promotedRun);
    // The run that decided to continue as new (its last command), replayed too: the budget check and the carry.
    await captureHistory(handle, 'continued-as-new-first-run', started.firstExecutionRunId);
  });
});
