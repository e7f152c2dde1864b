/**
 * Durations in the policy file are human strings (`500ms`, `30s`, `15m`, `72h`, `7d`) so a reviewer reads
 * "72h" rather than 259200000. One number and one unit: compound forms like `1h30m` are refused rather than
 * guessed at (write `90m`).
 */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds in `s`; throws Error naming the bad string and the accepted form. */
export function parseDuration(s: string): number {
  const m = typeof s === 'string' ? DURATION.exec(s.trim()) : null;
  if (!m) {
    throw new Error(`invalid duration ${JSON.stringify(s)}: expected a number and a unit ms, s, m, h or d (e.g. 500ms, 30s, 15m, 72h, 7d)`);
  }
  const ms = Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
  if (!Number.isSafeInteger(ms)) throw new Error(`invalid duration ${JSON.stringify(s)}: too large`);
  return ms;
}
