/**
 * A lifecycle that continued as new (bounded histories, docs/operations.md) is several Temporal runs of one
 * story. Visibility lists each run; the audit and history fold each chain into its newest run, started when
 * the chain started, so a continued lifecycle is one entry — not one per run, nor "aborted" runs.
 */
import type { VisibilityRow } from './types.js';

export const CONTINUED = 'CONTINUED_AS_NEW';

/** Rows of the same workflow id, each chain of CONTINUED_AS_NEW runs folded into the run that went on. */
export function foldContinued<R extends VisibilityRow>(rows: R[]): Array<R & { continuedRuns?: number }> {
  const byId = new Map<string, R[]>();
  for (const r of rows) byId.set(r.workflowId, [...(byId.get(r.workflowId) ?? []), r]);
  const out: Array<R & { continuedRuns?: number }> = [];
  for (const list of byId.values()) {
    list.sort((a, b) => a.startTime.localeCompare(b.startTime));
    let chain: R[] = [];
    for (const r of list) {
      chain.push(r);
      if (r.status === CONTINUED) continue;
      out.push(fold(chain));
      chain = [];
    }
    // The newest run is missing from the page (or still being created): the chain stands as it is.
    if (chain.length) out.push(fold(chain));
  }
  return out;
}

function fold<R extends VisibilityRow>(chain: R[]): R & { continuedRuns?: number } {
  const last = chain[chain.length - 1];
  if (chain.length === 1) return last;
  return { ...last, startTime: chain[0].startTime, continuedRuns: chain.length - 1 };
}
