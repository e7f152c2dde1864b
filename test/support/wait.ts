/** Test waits on top of the shared poller (src/util/poll.ts): on results or state, never on fixed sleeps. */
import { pollUntil } from '../../src/util/poll.js';

/** Until `probe` returns a value (undefined = not yet); every 100 ms. */
export function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return pollUntil(what, probe, { intervalMs: 100, timeoutMs });
}

/** Until a condition on in-process state holds; polled tightly (the state changes on this event loop). */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await pollUntil(what, async () => (await probe()) || undefined, { intervalMs: 2, timeoutMs });
}
