/**
 * `modelgate history` against the real Temporal server's visibility: lifecycles are started with the search
 * attributes the lifecycle keeps current (no worker polls their task queue, so they stay exactly as written),
 * closed ones are terminated, and the list queries on ModelName / Approver / ModelgateOutcome must find them.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { connectClient } from '../src/client.js';
import { classify, historyQuery, listHistory, toHistoryEntries, type HistoryEntry } from '../src/audit/history.js';
import { temporalLifecycleReader } from '../src/audit/temporal.js';
import { registerHistoryCommand } from '../src/cli/commands/history.js';
import { APPROVER, LIFECYCLE_WORKFLOW, MODEL_NAME, MODEL_STAGE, MODEL_VERSION, OUTCOME, type Outcome } from '../src/workflows/definitions.js';
import { testStack, unique } from './support/stack.js';

describe('history (unit)', () => {
  it('when filters are given, then the visibility query names the search attributes', () => {
    assert.equal(historyQuery({ model: 'churn' }), "WorkflowType = 'modelLifecycle' AND ModelName = 'churn'");
    assert.equal(
      historyQuery({ approver: 'alice', outcome: 'superseded' }),
      "WorkflowType = 'modelLifecycle' AND Approver = 'alice' AND ModelgateOutcome = 'superseded'",
    );
    assert.equal(historyQuery({ model: "o'brien" }), `WorkflowType = 'modelLifecycle' AND ModelName = "o'brien"`);
    assert.throws(() => historyQuery({ model: `a'b"c` }), /cannot be used in a Temporal visibility query/);
    assert.throws(() => historyQuery({}), /needs a model or --approver/);
  });

  it('when rows carry outcomes, then each is a promotion, rejection, expiry or rollback, newest first', () => {
    const row = (version: number, startTime: string, extra: object) => ({ workflowId: `w${version}`, runId: 'r', type: LIFECYCLE_WORKFLOW, status: 'COMPLETED', startTime, model: 'm', version, approvers: [], ...extra });
    const entries = toHistoryEntries([
      row(1, '2026-01-01T00:00:00Z', { outcome: 'superseded', approvers: ['alice'] }),
      row(3, '2026-01-03T00:00:00Z', { outcome: 'rejected_by_evaluation' }),
      row(2, '2026-01-02T00:00:00Z', { status: 'RUNNING', stage: 'Production' }),
      row(4, '2026-01-04T00:00:00Z', { outcome: 'expired' }),
      row(5, '2026-01-05T00:00:00Z', { outcome: 'rolled_back' }),
      row(6, '2026-01-06T00:00:00Z', { status: 'RUNNING', stage: 'Staging' }),
      row(7, '2026-01-07T00:00:00Z', { status: 'TERMINATED' }),
    ]);
    assert.deepEqual(entries.map((e) => `${e.version}:${e.event}`), ['7:aborted', '6:in_progress', '5:rollback', '4:expiry', '3:rejection', '2:promotion', '1:promotion']);
    assert.equal(classify({ ...row(1, '', { outcome: 'retired' }) }).detail, 'was Production; retired');
  });
});

describe('history (real Temporal visibility)', () => {
  let client: Client;
  const model = unique('hist-model');
  const other = unique('hist-other');
  const alice = unique('alice');
  const bob = unique('bob');
  const taskQueue = unique('no-worker');
  const started: Array<{ id: string; open: boolean }> = [];

  async function lifecycle(m: string, version: number, sa: { stage: string; approvers?: string[]; outcome?: Outcome }): Promise<void> {
    const workflowId = `${m}/v${version}`;
    const handle = await client.workflow.start(LIFECYCLE_WORKFLOW, {
      taskQueue,
      workflowId,
      args: [{ model: m, version, trigger: { source: 'test' } }],
      typedSearchAttributes: new TypedSearchAttributes([
        { key: MODEL_NAME, value: m },
        { key: MODEL_VERSION, value: version },
        { key: MODEL_STAGE, value: sa.stage },
        ...(sa.approvers ? [{ key: APPROVER, value: sa.approvers }] : []),
        ...(sa.outcome ? [{ key: OUTCOME, value: sa.outcome }] : []),
      ]),
    });
    // A lifecycle with an outcome has ended.
    if (sa.outcome) await handle.terminate('history test: ended lifecycle');
    started.push({ id: workflowId, open: !sa.outcome });
  }

  before(async () => {
    client = await connectClient({ address: testStack().temporalAddress, namespace: 'default' });
    await lifecycle(model, 1, { stage: 'Archived', approvers: [alice], outcome: 'superseded' });
    await lifecycle(model, 2, { stage: 'Production', approvers: [alice, bob] });
    await lifecycle(model, 3, { stage: 'Staging', outcome: 'rejected' });
    await lifecycle(model, 4, { stage: 'Staging', outcome: 'expired' });
    await lifecycle(model, 5, { stage: 'Staging', approvers: [bob], outcome: 'rolled_back' });
    await lifecycle(other, 1, { stage: 'Production', approvers: [alice] });
  });

  after(async () => {
    for (const s of started.filter((x) => x.open)) await client.workflow.getHandle(s.id).terminate('history test done').catch(() => undefined);
    await client.connection.close();
  });

  /** Visibility is eventually consistent: poll with a deadline. */
  async function eventually(what: string, read: () => Promise<HistoryEntry[]>, ok: (e: HistoryEntry[]) => boolean): Promise<HistoryEntry[]> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const entries = await read();
      if (ok(entries)) return entries;
      if (Date.now() > deadline) throw new Error(`${what}: got ${JSON.stringify(entries.map((e) => `${e.model} v${e.version} ${e.outcome ?? e.status}`))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  it('when asked about a model, then every lifecycle is listed newest first with its event', async () => {
    const reader = temporalLifecycleReader(client);
    const entries = await eventually('5 lifecycles of the model', () => listHistory(reader, { model }), (e) => e.length === 5 && e.every((x) => x.status !== 'RUNNING' || x.version === 2));
    assert.deepEqual(entries.map((e) => `v${e.version}:${e.event}`), ['v5:rollback', 'v4:expiry', 'v3:rejection', 'v2:promotion', 'v1:promotion']);
    const v2 = entries.find((e) => e.version === 2)!;
    assert.equal(v2.detail, 'in Production');
    assert.deepEqual(v2.approvers, [alice, bob]);
    assert.equal(v2.closedAt, null);
    assert.equal(entries.find((e) => e.version === 1)!.outcome, 'superseded');
    assert.ok(entries.every((e) => e.model === model));
  });

  it('when asked about an approver, then every lifecycle they approved is listed, across models', async () => {
    const reader = temporalLifecycleReader(client);
    const entries = await eventually('alice\'s three lifecycles', () => listHistory(reader, { approver: alice }), (e) => e.length === 3);
    assert.deepEqual(entries.map((e) => `${e.model === model ? 'model' : 'other'} v${e.version}`).sort(), ['model v1', 'model v2', 'other v1']);
    const bobs = await eventually('bob\'s two lifecycles', () => listHistory(reader, { approver: bob }), (e) => e.length === 2);
    assert.deepEqual(bobs.map((e) => e.version), [5, 2]);
    const bobsRollbacks = await listHistory(reader, { approver: bob, outcome: 'rolled_back' });
    assert.deepEqual(bobsRollbacks.map((e) => e.event), ['rollback']);
  });

  it('when run as `modelgate history`, then JSON rows and a table come out, and a bad call is one line', async () => {
    const run = async (...args: string[]) => {
      let out = '';
      const program = new Command('modelgate').exitOverride().configureOutput({ writeErr: () => undefined });
      registerHistoryCommand(program, () => Promise.resolve({ client }), { write: (t) => (out += t) });
      await program.parseAsync(['node', 'modelgate', 'history', ...args]);
      return out;
    };
    await eventually('visibility caught up', () => listHistory(temporalLifecycleReader(client), { model }), (e) => e.length === 5);
    const rows = JSON.parse(await run(model, '--json')) as HistoryEntry[];
    assert.equal(rows.length, 5);
    assert.equal(rows[0].version, 5);
    const table = await run('--approver', alice);
    assert.match(table.split('\n')[0], /^started\s+closed\s+model\s+version\s+event\s+detail\s+approvers$/);
    assert.equal(table.trim().split('\n').length, 2 + 3);
    assert.match(await run(model, '--markdown', '--limit', '2'), /^\| started \| closed \|[^\n]*\n\| --- \|[^\n]*\n\|[^\n]*\n\|[^\n]*\n$/);
    await assert.rejects(run(), /give a model or --approver/);
    await assert.rejects(run(model, '--outcome', 'won'), /expected one of/);
  });
});
