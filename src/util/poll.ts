/**
 * Waiting for something another process does (a server becoming ready, a workflow reaching a phase): ask a
 * probe at an interval until it answers, with a deadline that names what was awaited. One helper for the stack,
 * the tests and the bench, so every wait fails the same readable way.
 */

/** Thrown by a probe to stop polling at once: what is awaited can no longer happen. */
export class StopPolling extends Error {
  override name = 'StopPolling';
}

export interface PollOptions {
  intervalMs: number;
  timeoutMs: number;
}

/**
 * Calls `probe` every `intervalMs` until it returns something other than undefined or false, and returns that.
 * A probe that throws is asked again (the last error is quoted if time runs out), except with StopPolling or a
 * failed node:assert assertion (a test's verdict, not a not-yet).
 */
export async function pollUntil<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  opts: PollOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof StopPolling || (err as { code?: unknown } | null)?.code === 'ERR_ASSERTION') throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)})`;
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs));
  }
}
