/**
 * Pure rules of the lifecycle's long waits (docs/operations.md "Bounded histories"): how often a wait looks
 * again, and when it gives up. No Temporal imports: workflow code and tests both use them.
 */

/** A wait checks the Git host this often at first, and after every change or webhook hint. */
export const POLL_MIN_MS = 60_000;
/** While nothing changes the interval doubles up to this (about 11 history events per look). */
export const POLL_MAX_MS = 15 * 60 * 1000;

/** The next interval: back off while quiet, look again soon after anything happened. */
export function nextPollMs(currentMs: number, quiet: boolean): number {
  return quiet ? Math.min(POLL_MAX_MS, Math.max(POLL_MIN_MS, currentMs) * 2) : POLL_MIN_MS;
}

/** How long to sleep before the next look: the interval, never past the deadline, never zero. */
export function sleepMs(pollMs: number, deadline: number, now: number): number {
  return Math.max(1, Math.min(pollMs, deadline - now));
}

/** The earliest of the bounds that apply (undefined ones ignored). */
export function earliest(...bounds: Array<number | undefined>): number {
  const set = bounds.filter((b): b is number => b !== undefined && Number.isFinite(b));
  return set.length ? Math.min(...set) : Number.POSITIVE_INFINITY;
}

/** Looks a quiet wait of `ms` makes under the back-off schedule (the history it can write is about 11 × this). */
export function looksWithin(ms: number): number {
  let t = 0;
  let poll = POLL_MIN_MS;
  let n = 0;
  while (t + poll <= ms) {
    t += poll;
    n++;
    poll = nextPollMs(poll, true);
  }
  return n;
}

/**
 * Whether a wait that timed out ran all the way to its deadline: its timer was set to the time left. Judged by
 * the timer that fired (in history) rather than by comparing the clock with the deadline afterwards, because a
 * task's clock is not guaranteed to be the same in the execution and in every replay (a soak found a
 * worker whose clock read the earlier task's time right after the deadline timer fired; docs/operations.md).
 */
export function ranToDeadline(sleptMs: number, leftMs: number): boolean {
  return sleptMs >= leftMs;
}

/** The most history one step between two budget checks writes (a PR check or a hint ~11, a lock re-request ~11). */
export const BUDGET_HEADROOM = 50;

/** Headroom kept below a budget: BUDGET_HEADROOM, or a quarter of a small (test) budget. */
export function budgetHeadroom(budget: number): number {
  return Math.min(BUDGET_HEADROOM, Math.floor(budget / 4));
}

/**
 * Time to continue as new: with `headroom` (PATCHES.budgetHeadroom) a step early enough that the run that
 * crosses the line still ends within the budget; without it (older executions) at the budget itself.
 */
export function budgetReached(historyLength: number, budget: number, headroom: boolean): boolean {
  return historyLength >= (headroom ? budget - budgetHeadroom(budget) : budget);
}
