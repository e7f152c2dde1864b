/**
 * The soak's TMPRL1100 (docs/operations.md, "Deadlines are judged by their timers"): a worker ran the task after
 * the approval-expiry timer fired with the clock of the task that had started the timer, so it waited again;
 * every later replay read the right clock, expired the approval, and no longer matched the history. Here the
 * same skew is written into a committed history: with PATCHES.deadlineByTimer the decision comes from the fired
 * timer and replays; the history of an execution started before it still fails, which shows the skew is the bug.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_BUNDLE } from './support/stack.js';
import { HISTORIES_DIR } from './support/histories.js';

type CliEvent = Record<string, unknown> & { eventId: string; eventType: string; eventTime: string };

/** The task after the last timer fired reads the clock of the task that started that timer. */
function staleClockAfterTimer(file: string): { events: CliEvent[] } {
  const history = JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as { events: CliEvent[] };
  const events = history.events;
  const byId = new Map(events.map((e) => [e.eventId, e]));
  const fired = events.filter((e) => e.eventType === 'EVENT_TYPE_TIMER_FIRED').at(-1);
  assert.ok(fired, `${file}: no timer fired`);
  const started = byId.get(String((fired.timerFiredEventAttributes as { startedEventId: string }).startedEventId))!;
  const completed = byId.get(String((started.timerStartedEventAttributes as { workflowTaskCompletedEventId: string }).workflowTaskCompletedEventId))!;
  const taskThatStartedIt = byId.get(String((completed.workflowTaskCompletedEventAttributes as { startedEventId: string }).startedEventId))!;
  const next = events.find((e) => Number(e.eventId) > Number(fired.eventId) && e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_STARTED');
  assert.ok(next, `${file}: no workflow task after the timer`);
  next.eventTime = taskThatStartedIt.eventTime;
  return history;
}

async function replay(history: unknown, workflowId: string): Promise<Error | undefined> {
  for await (const r of Worker.runReplayHistories({ workflowBundle: WORKFLOW_BUNDLE }, [{ workflowId, history }])) return r.error;
  return undefined;
}

describe('deadlines and sampling times judged by their timers', () => {
  it('when the task after the approval timer fired reads the earlier task clock, then the expiry still replays', async () => {
    const err = await replay(staleClockAfterTimer('approval-expired.json'), 'skewed-approval-expired');
    assert.equal(err, undefined, String(err));
  });

  it('when the same clock skew hits an execution started before deadline-by-timer, then its replay fails as the soak saw (the skew is the bug)', async () => {
    const err = await replay(staleClockAfterTimer('before-deadline-by-timer/approval-expired.json'), 'skewed-before-approval-expired');
    assert.ok(err, 'the old code replayed a skewed history: the test no longer reproduces the bug');
    assert.match(err.message, /TMPRL1100|[Nn]ondeterminism/);
  });

  it('when the task after a canary sampling timer reads the earlier task clock, then the analysis still measures and replays', async () => {
    const err = await replay(staleClockAfterTimer('canary-healthy-production.json'), 'skewed-canary-healthy-production');
    assert.equal(err, undefined, String(err));
  });

  it('when the same skew hits a canary analysis started before canary-due-by-timer, then its replay fails (it would sleep again)', async () => {
    const err = await replay(staleClockAfterTimer('before-deadline-by-timer/canary-healthy-production.json'), 'skewed-before-canary-healthy-production');
    assert.ok(err, 'the old canary analysis replayed a skewed history: the test no longer shows the hazard');
    assert.match(err.message, /TMPRL1100|[Nn]ondeterminism/);
  });
});
