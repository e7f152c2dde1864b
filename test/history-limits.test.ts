/**
 * A second Temporal dev server with shrunk history limits (suggest continue-as-new at 60 events, warn at 150,
 * fail at 400): a GitOps lifecycle waiting for approval continues as new ≥ 3 times because the *server*
 * suggests it (no test switch), then is approved into Production. A run that ignored the suggestion would be
 * terminated at 400 events. The timeline, the state query, the audit and the UI's details tell one story.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import { approve, startLifecycle } from './support/identity.js';
import { lifecycleWorkflowId, pullRequestSignal, type LifecycleState } from '../src/workflows/definitions.js';
import { localGitopsPolicy } from './support/policies.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { startTemporal, type TemporalServer } from '../src/stack/embedded.js';
import { collectAudit } from '../src/audit/collect.js';
import { renderAuditText } from '../src/audit/format.js';
import { temporalLifecycleReader } from '../src/audit/temporal.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const NAMESPACE = 'models';
const LIMITS = { suggestContinueAsNew: 60, warn: 150, error: 400 };

describe('on a server with shrunk history limits', () => {
  let shared: TestWorkflowEnvironment;
  let server: TemporalServer;
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  let dir: string;
  const repos = new Map<string, { repo: string; manifestPath: string }>();

  const policyFor = (model: string) =>
    localGitopsPolicy(model, repos.get(model)!, {
      namespace: NAMESPACE,
      evaluation: '{ thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }',
      approval: '{ approvers: [alice, bob], fourEyes: true, quorum: 2, expiresAfter: 1h }',
    });


  before(async () => {
    shared = await connectTestEnv(); // installs the SDK runtime's logger before the second connection
    dir = mkdtempSync(join(testStack().dataDir, 'history-limits-'));
    server = await startTemporal({
      dataDir: join(dir, 'temporal'),
      headless: true,
      persist: false,
      extraArgs: Object.entries(LIMITS).flatMap(([k, v]) => ['--dynamic-config-value', `limit.historyCount.${k}=${v}`]),
    });
    env = await TestWorkflowEnvironment.createFromExistingServer({ address: server.address, namespace: 'default' });
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    worker = await startTestWorker(env, {
      mlflow,
      policies: { policyFor },
      gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: 'history-limits-marker-secret' },
    });
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
    await server?.process.stop();
    await shared?.teardown();
  });

  it('when a GitOps lifecycle waits for approval past the suggested history length, then it continues as new ≥ 3 times on the server\'s word and still tells one story into Production', async () => {
    const model = unique('limits');
    const repo = await initLocalGitopsRepo(join(dir, `${model}.git`), { model, namespace: NAMESPACE, name: model });
    repos.set(model, { repo: repo.repo, manifestPath: repo.manifestPath });
    const v = (await registerTrainedVersion(mlflow, model)).version;
    const workflowId = lifecycleWorkflowId(model, v);
    await startLifecycle(client, model, v, { source: 'test' }, worker.taskQueue);
    const handle = client.workflow.getHandle(workflowId);
    const staged = await eventually('awaiting approval with a PR', async () => {
      const s = await getState(client, model, v);
      return s.phase === 'awaiting_approval' && s.pullRequest ? s : undefined;
    }, 120_000);
    const firstRun = (await handle.describe()).runId;
    await approve(client, model, v, { by: 'alice' });

    // Webhook hints make it look at the PR: history grows until the server suggests continuing as new.
    let s: LifecycleState = staged;
    const sizes: number[] = [];
    for (let i = 0; i < 300 && (s.continuedAsNew ?? 0) < 3; i++) {
      await handle.signal(pullRequestSignal, { hint: true, deliveryId: `h-${i}` });
      s = await getState(client, model, v);
      sizes.push((await handle.describe()).historyLength);
    }
    assert.ok((s.continuedAsNew ?? 0) >= 3, `continued as new ${s.continuedAsNew ?? 0} times`);
    assert.ok(Math.max(...sizes) < LIMITS.warn, `no run reached the warning (${Math.max(...sizes)} events)`);
    assert.notEqual((await handle.describe()).runId, firstRun);
    assert.equal(s.phase, 'awaiting_approval');
    assert.deepEqual(s.approvals.map((a) => a.by), ['alice']);
    // alice's approval is remembered in a later run: a second one is refused, not counted.
    await assert.rejects(approve(client, model, v, { by: 'alice' }), /already approved/);
    const meta = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(meta.currentDetails ?? '', new RegExp(`${model} v${v}.*Staging; awaiting approval`));

    await approve(client, model, v, { by: 'bob' });
    const prod = await eventually('production', async () => {
      const x = await getState(client, model, v);
      return x.phase === 'production' ? x : undefined;
    }, 120_000);

    // One timeline: every entry once, in time order, the first run's entries first.
    const key = (t: LifecycleState['timeline'][number]) => `${t.at}|${t.actor}|${t.action}|${t.detail ?? ''}`;
    assert.deepEqual(prod.timeline.slice(0, staged.timeline.length).map(key), staged.timeline.map(key));
    assert.equal(new Set(prod.timeline.map(key)).size, prod.timeline.length, 'no entry twice');
    const times = prod.timeline.map((t) => t.at);
    assert.deepEqual(times, [...times].sort());
    const actions = prod.timeline.map((t) => t.action);
    for (const a of ['lifecycle started', 'evaluation passed', 'None → Staging', 'opened pull request', 'approved', 'merged pull request', 'Staging → Production']) {
      assert.equal(actions.filter((x) => x === a).length, a === 'approved' ? 2 : 1, `${a} in ${JSON.stringify(actions)}`);
    }
    assert.ok(prod.pullRequest?.mergeSha);
    assert.equal((await mlflow.getModelVersion(model, v)).current_stage, 'Production');
    const desc = await handle.describe();
    assert.deepEqual((desc.searchAttributes as Record<string, unknown[]>).Approver, ['alice', 'bob']);
    const details = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
    assert.match(details.currentDetails ?? '', /serving in Production since .*approved by alice,bob/);

    // The audit: one run of the lifecycle (the continued runs folded in), approvals from the workflow.
    const report = await collectAudit({ mlflow, lifecycles: temporalLifecycleReader(client) }, model, {});
    assert.equal(report.version, v);
    assert.deepEqual(report.approval.approvals.map((a) => a.by), ['alice', 'bob']);
    assert.equal(report.runs.length, 1, JSON.stringify(report.runs.map((r) => r.status)));
    assert.equal(report.runs[0].startTime, (await client.workflow.getHandle(workflowId, firstRun).describe()).startTime.toISOString());
    const text = renderAuditText(report);
    assert.doesNotMatch(text, /Runs of the lifecycle|CONTINUED_AS_NEW|aborted/);
    assert.match(text, /alice/);
  });
});
