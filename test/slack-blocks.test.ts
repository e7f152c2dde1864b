/** What the Slack message says about a promotion that was re-judged under the lock, and about a rollback run. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderLifecycleMessage, statusLine } from '../src/slack/blocks.js';
import type { LifecycleState } from '../src/workflows/definitions.js';

const base: LifecycleState = {
  model: 'fraud', version: 7, workflowId: 'modelgate/fraud/v7', stage: 'Staging', phase: 'awaiting_approval', approvals: [], timeline: [],
};

describe('Slack message after a re-check and for a rollback', () => {
  it('when the re-check under the lock failed, then the status line says so with the serving version and the reasons', () => {
    const s = { ...base, recheck: { passed: false, checks: [], reasons: ['accuracy 0.92 regresses against 0.95'], baselineVersion: 6, candidateMetrics: {} } };
    assert.equal(statusLine(s), 'Not promoted: the re-check against version 6, serving now failed (accuracy 0.92 regresses against 0.95); in *Staging*, awaiting approval again');
    assert.match(statusLine(base), /^In \*Staging\*, awaiting approval/);
  });

  it('when the run is a rollback, then the title says rollback', () => {
    const m = renderLifecycleMessage({ ...base, request: { kind: 'rollback', reason: 'INC-1' } }, {});
    assert.match(JSON.stringify(m.blocks), /fraud version 7 \(rollback\)/);
  });
});
