/**
 * Issue #12 on the real Temporal and MLflow servers: every long wait is bounded in time and history. A lifecycle
 * waiting for the Production lock continues as new within its budget without losing its queue place, and gives
 * up at `deployment.lockWait`; the lock workflow continues as new while a holder holds it, carrying the holder;
 * an approved PR nobody merges ends `manual_merge_timed_out` and frees the lock.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { getState } from '../src/client.js';
import { approve, startLifecycle, TEST_SIGNER } from './support/identity.js';
import {
  acquireLockSignal,
  LIFECYCLE_WORKFLOW,
  lifecycleWorkflowId,
  LOCK_WORKFLOW,
  lockWorkflowId,
  MODEL_NAME,
  MODEL_STAGE,
  MODEL_VERSION,
  pullRequestSignal,
  type LifecycleInput,
  type LifecycleState,
  type LockRequest,
} from '../src/workflows/definitions.js';
import type { PolicySource } from '../src/activities/registry.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { TAG } from '../src/mlflow/tags.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { classify } from '../src/audit/history.js';
import type { VisibilityRow } from '../src/audit/types.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { captureHistory } from './support/histories.js';
import { ActivityGate } from './support/activity-gate.js';
import { localGitopsPolicy, policiesByPrefix } from './support/policies.js';
import { until as waitFor } from './support/wait.js';

const NAMESPACE = 'models';
const BASE = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry, lockLease: 1h }
models:
  lockcan: { deployment: { mode: registry, lockLease: 1h, lockWait: 1h } }
  lockwait: { deployment: { mode: registry, lockLease: 1h, lockWait: 3s } }
`;

type LockState = { holder?: LockRequest & { token?: number }; queue: LockRequest[]; token?: number };

/** mergePromotionPullRequest of `nomerge-*` models fails as GitHub's 405 would: a person has to merge. */
const notMergeable: ActivityInterceptorsFactory = (ctx) => ({
  inbound: {
    execute: async (input, next) => {
      const a = input.args[0] as { model?: string } | undefined;
      if (ctx.info.activityType === 'mergePromotionPullRequest' && a?.model?.startsWith('nomerge-')) {
        throw ApplicationFailure.create({ type: 'PullRequestNotMergeable', message: 'conflicts with main: a human must resolve it', nonRetryable: true });
      }
      return next(input);
    },
  },
});

describe('every long wait is bounded in time and history', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let taskQueue: string;
  let dir: string;
  const gate = new ActivityGate();
  const repos = new Map<string, { repo: string; manifestPath: string }>();

  const base = policiesByPrefix(BASE, 'bounded-waits-policy.yaml');
  const policies: PolicySource = {
    policyFor(model: string) {
      const r = repos.get(model);
      if (!r) return base.policyFor(model);
      return localGitopsPolicy(model, r, {
        namespace: NAMESPACE,
        evaluation: '{ thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }',
        approval: '{ approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }',
        gitopsExtra: ['manualMergeTimeout: 3s'],
      });
    },
  };

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    dir = mkdtempSync(join(testStack().dataDir, 'bounded-waits-'));
    worker = await startTestWorker(env, {
      mlflow,
      policies,
      gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: 'bounded-waits-marker-secret' },
      workerOptions: { interceptors: { activity: [gate.interceptor(), notMergeable] } },
    });
    taskQueue = worker.taskQueue;
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const state = (model: string, version: number) => getState(client, model, version);
  const until = (model: string, version: number, what: string, ok: (s: LifecycleState) => boolean, ms = 120_000) =>
    eventually(`${model} v${version}: ${what}`, async () => {
      const s = await state(model, version);
      return ok(s) ? s : undefined;
    }, ms);
  const lockState = (model: string) => client.workflow.getHandle(lockWorkflowId(model)).query<LockState>('lockState');
  const runsOf = async (workflowId: string) => {
    let n = 0;
    for await (const w of client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) if (w.runId) n++;
    return n;
  };
  /** A lifecycle started the way the front doors do, with the test switch for the history budget. */
  const startWithBudget = async (model: string, version: number, historyBudget: number) => {
    const attestation = TEST_SIGNER.sign({ kind: 'promote', model, version, identity: 'dana', groups: [], channel: 'test' });
    const input: LifecycleInput = { model, version, trigger: { source: 'test', by: 'dana', attestation }, historyBudget };
    await client.workflow.start(LIFECYCLE_WORKFLOW, {
      taskQueue, workflowId: lifecycleWorkflowId(model, version), args: [input],
      typedSearchAttributes: new TypedSearchAttributes([{ key: MODEL_NAME, value: model }, { key: MODEL_VERSION, value: version }, { key: MODEL_STAGE, value: 'None' }]),
    });
  };
  /** v1 approved and held inside the lock (its Production change paused at the worker's door). */
  const stalledHolder = async (model: string) => {
    const v1 = await registerTrainedVersion(mlflow, model);
    await startLifecycle(client, model, v1.version, { source: 'test' }, taskQueue);
    await until(model, v1.version, 'awaiting approval', (s) => s.phase === 'awaiting_approval');
    const stall = gate.hold((a) => a.activity === 'enterProduction' && a.model === model && a.version === v1.version);
    await approve(client, model, v1.version, { by: 'alice' });
    await waitFor('v1 holds the lock, stalled', () => stall.held.length > 0, 60_000);
    return { v1: v1.version, stall };
  };

  it('when a lifecycle and the lock wait long for a stalled holder, then both continue as new, the queue place and deadline survive, and the waiter promotes once the lock is free', async () => {
    const model = unique('lockcan');
    // The lock workflow first, with its test switch: lifecycles' signal-with-start finds it running.
    await client.workflow.start(LOCK_WORKFLOW, { taskQueue, workflowId: lockWorkflowId(model), args: [{ model, historyBudget: 40 }] });
    const { v1, stall } = await stalledHolder(model);
    const v2 = (await registerTrainedVersion(mlflow, model)).version;
    try {
      await startWithBudget(model, v2, 60);
      await until(model, v2, 'awaiting approval', (s) => s.phase === 'awaiting_approval');
      await approve(client, model, v2, { by: 'bob' });
      const waiting = await until(model, v2, 'waiting for the lock', (s) => s.phase === 'deploying' && s.lockWaitDeadline !== undefined);
      const holderToken = (await lockState(model)).holder?.token;
      assert.ok(holderToken !== undefined);
      const v2Request: LockRequest = { requestId: `${lifecycleWorkflowId(model, v2)}/production`, workflowId: lifecycleWorkflowId(model, v2), leaseMs: 3_600_000 };
      // History grows while both wait: webhook hints to the lifecycle, repeated requests to the lock.
      let s = waiting;
      for (let i = 0; i < 400 && ((s.continuedAsNew ?? 0) < 2 || (await runsOf(lockWorkflowId(model))) < 2); i++) {
        await client.workflow.getHandle(lifecycleWorkflowId(model, v2)).signal(pullRequestSignal, { hint: true, deliveryId: `d-${i}` });
        await client.workflow.getHandle(lockWorkflowId(model)).signal(acquireLockSignal, v2Request);
        s = await state(model, v2);
      }
      assert.ok((s.continuedAsNew ?? 0) >= 2, `lifecycle continued as new ${s.continuedAsNew ?? 0} times`);
      assert.ok((await runsOf(lockWorkflowId(model))) >= 2, 'the lock continued as new');
      assert.equal(s.phase, 'deploying');
      assert.equal(s.lockWaitDeadline, waiting.lockWaitDeadline, 'the deadline is carried, not restarted');
      const lock = await eventually('lock state', async () => lockState(model).catch(() => undefined));
      assert.equal(lock.holder?.requestId, `${lifecycleWorkflowId(model, v1)}/production`, 'the lock still knows its holder');
      assert.equal(lock.holder?.token, holderToken, 'the same grant, not a new one');
      assert.deepEqual(lock.queue.map((q) => q.requestId), [v2Request.requestId], 'v2 is queued exactly once');
    } finally {
      stall.release();
    }
    await until(model, v1, 'v1 in Production, then superseded', (x) => x.phase === 'done' && x.outcome === 'superseded');
    const prod = await until(model, v2, 'v2 in Production', (x) => x.phase === 'production');
    const actions = prod.timeline.map((t) => t.action);
    assert.deepEqual(actions.slice(0, 3), ['lifecycle started', 'evaluation passed', 'None → Staging']);
    assert.equal(actions.filter((a) => a === 'approved').length, 1);
    assert.equal(actions.filter((a) => a === 'holds the Production lock').length, 1);
    assert.equal(prod.lockWaitDeadline, undefined);
    assert.equal((await mlflow.getModelVersion(model, v2)).current_stage, 'Production');
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v2)), 'lock-wait-continued-as-new-then-promoted');
    await captureHistory(client.workflow.getHandle(lockWorkflowId(model)), 'lock-workflow-continued-as-new-holding');
  });

  it('when the Production lock is not granted within deployment.lockWait, then the lifecycle ends lock_wait_timed_out, leaves the queue and says so everywhere', async () => {
    const model = unique('lockwait');
    const { v1, stall } = await stalledHolder(model);
    const v2 = (await registerTrainedVersion(mlflow, model)).version;
    try {
      await startLifecycle(client, model, v2, { source: 'test' }, taskQueue);
      await until(model, v2, 'awaiting approval', (s) => s.phase === 'awaiting_approval');
      await approve(client, model, v2, { by: 'bob' });
      const done = await until(model, v2, 'ended', (s) => s.phase === 'done');
      assert.equal(done.outcome, 'lock_wait_timed_out');
      assert.match(done.outcomeReason ?? '', /Production lock was not granted within/);
      assert.ok(done.timeline.some((t) => t.action === 'Production lock wait timed out'), JSON.stringify(done.timeline.map((t) => t.action)));
      const lock = await lockState(model);
      assert.equal(lock.holder?.requestId, `${lifecycleWorkflowId(model, v1)}/production`);
      assert.ok(!lock.queue.some((q) => q.workflowId === lifecycleWorkflowId(model, v2)), 'left the queue');
      const mv = await mlflow.getModelVersion(model, v2);
      assert.equal(mv.tags[TAG.outcome], 'lock_wait_timed_out');
      assert.equal(mv.current_stage, 'Staging');
      const desc = await client.workflow.getHandle(lifecycleWorkflowId(model, v2)).describe();
      assert.deepEqual((desc.searchAttributes as Record<string, unknown[]>).ModelgateOutcome, ['lock_wait_timed_out']);
      const row = { workflowId: desc.workflowId, runId: desc.runId, type: LIFECYCLE_WORKFLOW, status: 'COMPLETED', startTime: desc.startTime.toISOString(), outcome: 'lock_wait_timed_out', approvers: ['bob'] };
      assert.deepEqual(classify(row as VisibilityRow), { event: 'expiry', detail: 'approved; the Production lock was not granted in time' });
      await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v2)), 'lock-wait-timed-out');
    } finally {
      stall.release();
    }
    await until(model, v1, 'v1 in Production', (x) => x.phase === 'production');
  });

  it('when modelgate cannot merge the approved PR and nobody merges it within manualMergeTimeout, then it ends manual_merge_timed_out, the PR is closed and the lock is free', async () => {
    const model = unique('nomerge');
    const repo = await initLocalGitopsRepo(join(dir, `${model}.git`), { model, namespace: NAMESPACE, name: model });
    repos.set(model, { repo: repo.repo, manifestPath: repo.manifestPath });
    const v = (await registerTrainedVersion(mlflow, model)).version;
    await startLifecycle(client, model, v, { source: 'test' }, taskQueue);
    await until(model, v, 'awaiting approval', (s) => s.phase === 'awaiting_approval' && s.pullRequest !== undefined);
    await approve(client, model, v, { by: 'alice' });
    const done = await until(model, v, 'ended', (s) => s.phase === 'done');
    assert.equal(done.outcome, 'manual_merge_timed_out');
    const actions = done.timeline.map((t) => t.action);
    assert.ok(actions.includes('pull request not mergeable') && actions.includes('manual merge timed out'), JSON.stringify(actions));
    assert.equal(done.pullRequest?.mergeSha, undefined);
    // Closed on the Git host (the plain-git provider's close marker), nothing merged into main.
    const closed = execFileSync('git', ['--git-dir', repo.repo, 'for-each-ref', '--format=%(refname)', `refs/modelgate/closed/${done.pullRequest!.branch}`], { encoding: 'utf8' });
    assert.ok(closed.trim().length > 0, 'the PR was closed');
    const mv = await mlflow.getModelVersion(model, v);
    assert.equal(mv.tags[TAG.outcome], 'manual_merge_timed_out');
    assert.equal(mv.tags[TAG.deploy], 'failed');
    assert.notEqual(mv.current_stage, 'Production');
    const lock = await lockState(model).catch((): LockState => ({ queue: [] }));
    assert.equal(lock.holder, undefined, 'the lock was released');
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v)), 'gitops-manual-merge-timed-out');
  });
});
