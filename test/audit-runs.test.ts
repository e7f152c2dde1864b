/** The audit and history fold a lifecycle that continued as new into one run of its story. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { foldContinued } from '../src/audit/runs.js';
import { toHistoryEntries } from '../src/audit/history.js';
import type { VisibilityRow } from '../src/audit/types.js';

const row = (runId: string, startTime: string, status: string, extra: Partial<VisibilityRow> = {}): VisibilityRow => ({
  workflowId: 'modelgate/m/v1', runId, type: 'modelLifecycle', status, startTime, approvers: [], model: 'm', version: 1, ...extra,
});

describe('continued-as-new runs in the audit', () => {
  test('when a lifecycle continued as new three times, then it is one entry: the newest run, started when the first did', () => {
    const rows = [
      row('r3', '2026-12-01T03:00:00.000Z', 'CONTINUED_AS_NEW'),
      row('r1', '2026-12-01T01:00:00.000Z', 'CONTINUED_AS_NEW'),
      row('r4', '2026-12-01T04:00:00.000Z', 'RUNNING', { stage: 'Staging' }),
      row('r2', '2026-12-01T02:00:00.000Z', 'CONTINUED_AS_NEW'),
    ];
    const folded = foldContinued(rows);
    assert.equal(folded.length, 1);
    assert.equal(folded[0].runId, 'r4');
    assert.equal(folded[0].startTime, '2026-12-01T01:00:00.000Z');
    assert.equal(folded[0].continuedRuns, 3);
    const [entry] = toHistoryEntries(folded);
    assert.equal(entry.event, 'in_progress');
    assert.notEqual(entry.event, 'aborted');
  });

  test('when a version had an ended run and a later rollback run, then both stay separate runs', () => {
    const rows = [
      row('a1', '2026-12-01T01:00:00.000Z', 'CONTINUED_AS_NEW'),
      row('a2', '2026-12-01T02:00:00.000Z', 'COMPLETED', { outcome: 'superseded' }),
      row('b1', '2026-12-02T01:00:00.000Z', 'RUNNING'),
      row('x1', '2026-12-01T01:30:00.000Z', 'COMPLETED', { workflowId: 'modelgate/m/v2', version: 2, outcome: 'expired' }),
    ];
    const folded = foldContinued(rows);
    assert.deepEqual(folded.map((r) => [r.runId, r.startTime, r.continuedRuns ?? 0]), [
      ['a2', '2026-12-01T01:00:00.000Z', 1],
      ['b1', '2026-12-02T01:00:00.000Z', 0],
      ['x1', '2026-12-01T01:30:00.000Z', 0],
    ]);
  });
});
