/**
 * The audit trail after Temporal forgot (#11): real promotions (v1, then v2 superseding it), then every run of a
 * version (a rollback run is a new run of the same workflow id, marked with its reason), then the lifecycles are
 * deleted from Temporal as retention would — and `history` and `audit --at` answer from MLflow's modelgate.* tags,
 * saying so.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { getState, startLifecycle as realStart } from '../src/client.js';
import { approve, startLifecycle, TEST_SIGNER } from './support/identity.js';
import type { AuditReport } from '../src/audit/types.js';
import type { HistoryEntry } from '../src/audit/history.js';
import { registerAuditCommand } from '../src/cli/commands/audit.js';
import { registerHistoryCommand } from '../src/cli/commands/history.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { parsePolicy } from '../src/policy/load.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.5"] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('audit and history beyond Temporal retention, and every run of a version', () => {
  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let worker: RunningWorker;
  const parked = unique('retention-parked');

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    const set = parsePolicy(POLICY, 'audit-retention-policy.yaml');
    worker = await startTestWorker(env, { mlflow, policies: { policyFor: (m) => ({ ...set.policyFor(m), model: m }) } });
  });

  after(async () => {
    await worker?.stop();
    await mlflow?.close();
    await env?.teardown();
  });

  const phaseIs = (model: string, version: number, phase: LifecycleState['phase']) =>
    eventually(`${model} v${version} in ${phase}`, async () => {
      const s = await getState(env.client, model, version);
      return s.phase === phase ? s : undefined;
    }, 120_000);

  async function promote(model: string, by: string): Promise<{ version: number; state: LifecycleState }> {
    const { version } = await registerTrainedVersion(mlflow, model, { user: 'dana' });
    await startLifecycle(env.client, model, version, { source: 'test' }, worker.taskQueue);
    await phaseIs(model, version, 'awaiting_approval');
    await approve(env.client, model, version, { by });
    return { version, state: await phaseIs(model, version, 'production') };
  }

  const runCli = async (register: (p: Command, out: { write(t: string): void }) => void, args: string[]): Promise<string> => {
    let out = '';
    const program = new Command('modelgate').exitOverride().configureOutput({ writeErr: () => undefined });
    register(program, { write: (t) => (out += t) });
    await program.parseAsync(['node', 'modelgate', ...args]);
    return out;
  };
  const audit = (model: string, ...args: string[]) =>
    runCli((p, o) => registerAuditCommand(p, () => Promise.resolve({ client: env.client, mlflow }), o), ['audit', model, ...args]);
  const history = (...args: string[]) =>
    runCli((p, o) => registerHistoryCommand(p, () => Promise.resolve({ client: env.client, mlflow }), o, { write: () => undefined }), ['history', ...args]);

  it('when a superseded version is rolled back to, then the audit lists both runs of its lifecycle and history marks the rollback with its reason', async () => {
    const model = unique('ret-runs');
    const { version: v1 } = await promote(model, 'alice');
    await promote(model, 'bob');
    const id = lifecycleWorkflowId(model, v1);
    await eventually(`v${v1} superseded`, async () => ((await env.client.workflow.getHandle(id).describe()).status.name === 'COMPLETED' ? true : undefined));
    // The rollback run as the API starts it, on a queue no worker polls (its workflow side is tested elsewhere).
    const attestation = TEST_SIGNER.sign({ kind: 'rollback', model, version: v1, identity: 'alice', groups: ['ml-leads'], channel: 'api', reason: 'v2 regressed' });
    const run = await realStart(env.client, model, v1, { source: 'api', by: 'alice', attestation }, parked, { kind: 'rollback', reason: 'v2 regressed' });
    assert.equal(run.started, true);

    const r = JSON.parse(await audit(model, '--version', String(v1), '--json')) as AuditReport;
    assert.deepEqual(r.runs.map((x) => x.request), [null, { kind: 'rollback', reason: 'v2 regressed' }]);
    assert.deepEqual(r.runs.map((x) => [x.status, x.outcome]), [['COMPLETED', 'superseded'], ['RUNNING', null]]);
    assert.match(await audit(model, '--version', String(v1)), /8\. Runs of the lifecycle of version \d+\n[\s\S]*rollback: v2 regressed/);

    const rows = await eventually('both runs of v1 in history', async () => {
      const all = (JSON.parse(await history(model, '--json')) as HistoryEntry[]).filter((e) => e.version === v1);
      return all.length === 2 ? all : undefined;
    });
    assert.deepEqual(rows.map((e) => [e.event, e.request?.reason ?? null, e.source]), [['in_progress', 'v2 regressed', 'temporal'], ['promotion', null, 'temporal']]);
    assert.match(rows[0].detail, /^rollback \(v2 regressed\); /);
    await env.client.workflow.getHandle(id).terminate('test done');
  });

  it('when the lifecycles are deleted from Temporal, then history and audit --at answer from MLflow tags and say so', async () => {
    const model = unique('ret-gone');
    const { version: v1, state: s1 } = await promote(model, 'alice');
    const { version: v2, state: s2 } = await promote(model, 'bob');
    await eventually(`v${v1} superseded`, async () => ((await env.client.workflow.getHandle(lifecycleWorkflowId(model, v1)).describe()).status.name === 'COMPLETED' ? true : undefined));
    for (const v of [v1, v2]) {
      await env.client.workflowService.deleteWorkflowExecution({ namespace: 'default', workflowExecution: { workflowId: lifecycleWorkflowId(model, v) } });
    }
    const rows = await eventually('history from MLflow tags', async () => {
      const all = JSON.parse(await history(model, '--json')) as HistoryEntry[];
      return all.length === 2 && all.every((e) => e.source === 'mlflow-tags') ? all : undefined;
    }, 60_000);
    assert.deepEqual(rows.map((e) => [e.version, e.event, e.approvers, e.outcome]), [[v2, 'promotion', ['bob'], null], [v1, 'promotion', ['alice'], 'superseded']]);
    assert.match(rows[1].detail, /was Production; superseded \(from MLflow tags: Temporal has no record\)/);
    const byAlice = (JSON.parse(await history('--approver', 'alice', '--json')) as HistoryEntry[]).filter((e) => e.model === model);
    assert.deepEqual(byAlice.map((e) => [e.version, e.source]), [[v1, 'mlflow-tags']]);
    assert.match(await history(model), /from MLflow tags: Temporal has no record/);

    const between = new Date((Date.parse(s1.promotedAt!) + Date.parse(s2.promotedAt!)) / 2).toISOString();
    const r = JSON.parse(await audit(model, '--at', between, '--json')) as AuditReport;
    assert.deepEqual(r.productionAt, { at: between, version: v1 });
    assert.equal(r.approval.source, 'mlflow-tags');
    assert.deepEqual(r.approval.approvals.map((a) => a.by), ['alice']);
    assert.deepEqual(r.productionHistory.map((i) => [i.version, i.source]), [[v1, 'mlflow-tags'], [v2, 'mlflow-tags']]);
    assert.ok(r.notes.some((n) => /has no record of it \(deleted, or past the namespace's retention\); answered from MLflow tags/.test(n)), r.notes.join('\n'));
    assert.equal((JSON.parse(await audit(model, '--json')) as AuditReport).version, v2);
  });
});
