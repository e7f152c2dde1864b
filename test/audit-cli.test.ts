/**
 * `modelgate audit` against the real MLflow and Temporal servers of the test stack. Versions are promoted and
 * superseded the way the lifecycle's registry activities record it in MLflow (stage, alias, modelgate.* tags);
 * no lifecycle workflow runs here, so approvals and dates come from the tags (the audit's fallback path) — the
 * lifecycle's own end-to-end test covers the workflow-state path.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { connectClient } from '../src/client.js';
import { registerAuditCommand } from '../src/cli/commands/audit.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import type { AuditReport } from '../src/audit/types.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';
import { testStack, unique } from './support/stack.js';

describe('modelgate audit (real MLflow + Temporal)', () => {
  let client: Client;
  let mlflow: MlflowClient;
  const model = unique('audit-model');
  const trainedAt = Date.parse('2026-02-27T08:00:00Z');
  let v1: number;
  let v2: number;
  let run2: string;

  async function train(metrics: Record<string, number>, startTime: number): Promise<{ version: number; runId: string }> {
    const exp = await mlflow.getOrCreateExperiment(`modelgate-tests-${model}`);
    const run = await mlflow.createRun(exp, { runName: `train-${model}`, startTime, tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events', 'mlflow.user': 'dana' } });
    await mlflow.logBatch(run.run_id, { metrics, params: { lr: '0.01', epochs: '20' } });
    await mlflow.finishRun(run.run_id);
    const v = await mlflow.createModelVersion({ name: model, source: `runs:/${run.run_id}/model`, runId: run.run_id });
    return { version: v.version, runId: run.run_id };
  }

  async function tag(version: number, tags: Record<string, string>): Promise<void> {
    for (const [k, v] of Object.entries(tags)) await mlflow.setVersionTag(model, version, k, v);
  }

  before(async () => {
    client = await connectClient({ address: testStack().temporalAddress, namespace: 'default' });
    mlflow = new MlflowClient({ trackingUri: testStack().mlflowUri, timeoutMs: 15_000 });
    await mlflow.createRegisteredModel(model);
    const a = await train({ accuracy: 0.91, f1: 0.88 }, trainedAt - 10 * 86_400_000);
    const b = await train({ accuracy: 0.94, f1: 0.9 }, trainedAt);
    v1 = a.version;
    v2 = b.version;
    run2 = b.runId;
    // v1: promoted on March 1st (as registry.enterProduction records it)…
    await mlflow.transitionStage(model, v1, 'Production');
    await mlflow.setAlias(model, ALIAS.production, v1);
    await tag(v1, {
      [TAG.previousVersion]: 'none',
      [TAG.stage]: 'Production',
      [TAG.workflowId]: lifecycleWorkflowId(model, v1),
      [TAG.promotedAt]: '2026-03-01T10:00:00.000Z',
      [TAG.approvedBy]: 'alice',
      [TAG.approvedAt]: '2026-03-01T09:58:00.000Z',
    });
    // …then v2 supersedes it on March 10th (enterProduction for v2, archiveVersion for v1).
    await tag(v2, { [TAG.previousVersion]: String(v1) });
    await mlflow.transitionStage(model, v2, 'Production');
    await mlflow.setAlias(model, ALIAS.production, v2);
    await tag(v2, {
      [TAG.stage]: 'Production',
      [TAG.workflowId]: lifecycleWorkflowId(model, v2),
      [TAG.promotedAt]: '2026-03-10T09:00:00.000Z',
      [TAG.approvedBy]: 'bob,carol',
      [TAG.approvedAt]: '2026-03-10T08:58:00.000Z',
      [TAG.prUrl]: 'https://github.com/acme/deploy/pull/12',
      [TAG.mergeSha]: 'b'.repeat(40),
      [TAG.storageUri]: 's3://models/audit/v2',
    });
    await mlflow.transitionStage(model, v1, 'Archived');
    await tag(v1, { [TAG.stage]: 'Archived', [TAG.archivedAt]: '2026-03-10T09:00:04.000Z', [TAG.outcome]: 'superseded', [TAG.supersededBy]: String(v2) });
  });

  after(async () => {
    await client.connection.close();
    await mlflow.close();
  });

  async function audit(...args: string[]): Promise<string> {
    let out = '';
    // The root has a version flag, as a CLI usually does: `audit --version N` must still reach the subcommand.
    const program = new Command('modelgate').version('0.0.0').enablePositionalOptions().exitOverride().configureOutput({ writeErr: () => undefined });
    registerAuditCommand(program, () => Promise.resolve({ client, mlflow }), { write: (t) => (out += t) });
    await program.parseAsync(['node', 'modelgate', 'audit', model, ...args]);
    return out;
  }

  it('when audited without options, then the six questions are answered for the Production version', async () => {
    const r = JSON.parse(await audit('--json')) as AuditReport;
    assert.equal(r.version, v2);
    assert.equal(r.subject, 'production');
    assert.deepEqual(
      { productionVersion: r.serving.productionVersion, storageUri: r.serving.storageUri, stage: r.serving.stage, aliases: r.serving.aliases },
      { productionVersion: v2, storageUri: 's3://models/audit/v2', stage: 'Production', aliases: ['production'] },
    );
    assert.deepEqual(r.metrics, { accuracy: 0.94, f1: 0.9 });
    assert.equal(r.training.runId, run2);
    assert.equal(r.training.startedAt, new Date(trainedAt).toISOString());
    assert.deepEqual(r.data, { tags: { 'data.lookback_days': '30', 'training.source': 'warehouse.events' }, params: { epochs: '20', lr: '0.01' } });
    assert.equal(r.approval.source, 'mlflow-tags');
    assert.deepEqual(r.approval.approvals.map((a) => a.by), ['bob', 'carol']);
    assert.equal(r.approval.approvedAt, '2026-03-10T08:58:00.000Z');
    assert.equal(r.approval.pullRequest.url, 'https://github.com/acme/deploy/pull/12');
    assert.equal(r.comparison.previousVersion, v1);
    assert.deepEqual(r.comparison.rows, [
      { metric: 'accuracy', current: 0.94, previous: 0.91, delta: 0.03 },
      { metric: 'f1', current: 0.9, previous: 0.88, delta: 0.02 },
    ]);
    assert.deepEqual(r.productionHistory.map((i) => [i.version, i.from, i.to ?? null]), [
      [v1, '2026-03-01T10:00:00.000Z', '2026-03-10T09:00:04.000Z'],
      [v2, '2026-03-10T09:00:00.000Z', null],
    ]);
    assert.match(r.notes.join('\n'), /could not be read from Temporal/, 'no lifecycle ran: the report says where the answers came from');
  });

  it('when asked about a time before and after the supersede, then the version serving then is audited', async () => {
    const before = JSON.parse(await audit('--at', '2026-03-05T12:00:00Z', '--json')) as AuditReport;
    assert.deepEqual(before.productionAt, { at: '2026-03-05T12:00:00.000Z', version: v1 });
    assert.equal(before.version, v1);
    assert.deepEqual(before.approval.approvals.map((a) => a.by), ['alice']);
    assert.equal(before.comparison.previousVersion, null);
    const after = JSON.parse(await audit('--at', '2026-03-10T09:00:02Z', '--json')) as AuditReport;
    assert.equal(after.version, v2, 'during the archive of v1 the alias already points at v2');
    const pinned = JSON.parse(await audit('--version', String(v1), '--at', '2026-03-12T00:00:00Z', '--json')) as AuditReport;
    assert.equal(pinned.version, v1);
    assert.equal(pinned.productionAt?.version, v2);
  });

  it('when printed as a table or Markdown, then every question has its section; bad input is one line', async () => {
    const text = await audit();
    for (const s of ['1. What is serving', '2. Metrics', '3. When trained', '4. What data', '5. Who approved it, when', `6. Compared with version ${v1}`, '7. Production history']) {
      assert.ok(text.includes(s), `table output has "${s}"`);
    }
    const md = await audit('--markdown', '--at', '2026-03-05T00:00:00Z');
    assert.match(md, new RegExp(`^## Audit: ${model} version ${v1}`));
    assert.match(md, new RegExp(`### 7\\. Production at 2026-03-05T00:00:00\\.000Z: version ${v1}`));
    await assert.rejects(audit('--at', 'last tuesday'), /expected an ISO time/);
    await assert.rejects(audit('--version', 'two'), /expected a positive integer/);
    await assert.rejects(audit('--json', '--markdown'), /choose one of --json and --markdown/);
    await assert.rejects(audit('--at', '2020-01-01T00:00:00Z'), /no version of .* was in Production at 2020-01-01/);
  });
});
