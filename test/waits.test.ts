/** The pure rules of the lifecycle's long waits: back-off, deadlines, and how many looks a wait can make. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { budgetHeadroom, budgetReached, earliest, looksWithin, nextPollMs, POLL_MAX_MS, POLL_MIN_MS, ranToDeadline, sleepMs } from '../src/workflows/waits.js';
import { MAX_MANUAL_WAIT_MS } from '../src/policy/schema.js';
import { HISTORY_BUDGET } from '../src/workflows/definitions.js';

describe('bounded waits', () => {
  test('when nothing changes, then the interval doubles from 1 min up to 15 min, and anything happening resets it', () => {
    const seen: number[] = [];
    let p = POLL_MIN_MS;
    for (let i = 0; i < 6; i++) seen.push((p = nextPollMs(p, true)) / 60_000);
    assert.deepEqual(seen, [2, 4, 8, 15, 15, 15]);
    assert.equal(nextPollMs(POLL_MAX_MS, false), POLL_MIN_MS);
  });

  test('when the deadline is nearer than the interval, then the sleep ends at the deadline and is never zero or negative', () => {
    assert.equal(sleepMs(60_000, 10_500, 10_000), 500);
    assert.equal(sleepMs(60_000, 9_000, 10_000), 1);
    assert.equal(sleepMs(60_000, Number.POSITIVE_INFINITY, 0), 60_000);
  });

  test('when a wait times out, then it reached the deadline only if its timer was set to the time left, whatever the clock reads next', () => {
    // A 20 s approval window waited in one timer: the deadline passed, even if the next task's clock read 0 s later.
    assert.equal(ranToDeadline(20_000, 20_000), true);
    // A 1 min PR look inside a 20 min window: not the deadline, even if the next task's clock is late.
    assert.equal(ranToDeadline(60_000, 20 * 60_000), false);
    // Past the deadline already: the 1 ms timer sleepMs gives ends the wait.
    assert.equal(ranToDeadline(sleepMs(60_000, 9_000, 10_000), 9_000 - 10_000), true);
    assert.equal(ranToDeadline(60_000, Number.POSITIVE_INFINITY), false);
  });

  test('when a run nears its history budget, then it continues as new a step early (50 events, a quarter of a small budget); older runs at the budget', () => {
    assert.equal(budgetReached(4_949, 5_000, true), false);
    assert.equal(budgetReached(4_950, 5_000, true), true);
    assert.equal(budgetReached(4_999, 5_000, false), false);
    assert.equal(budgetReached(5_000, 5_000, false), true);
    assert.equal(budgetHeadroom(60), 15);
    // One PR check (about 11 events) after the line still ends within the budget.
    assert.ok(5_000 - budgetHeadroom(5_000) + 11 <= 5_000);
  });

  test('when several bounds apply, then the earliest wins and missing ones are ignored', () => {
    assert.equal(earliest(5, undefined, 3), 3);
    assert.equal(earliest(undefined), Number.POSITIVE_INFINITY);
  });

  test('when a manual wait is set to its longest (3d), then its quiet looks (about 11 events each) fit in one history budget', () => {
    const looks = looksWithin(MAX_MANUAL_WAIT_MS);
    // Leave a third of the budget for what the run wrote before (evaluation, approvals, lock, merge attempt).
    assert.ok(looks * 11 <= (HISTORY_BUDGET * 2) / 3, `${looks} looks`);
    // A day: ~100 looks at the 15-minute cap.
    assert.ok(looksWithin(24 * 3_600_000) <= 100);
  });
});
