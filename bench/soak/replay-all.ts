/**
 * Replays every workflow history the soak left (lifecycles and locks, every run) against the workflow bundle
 * the worker ran. A non-determinism shows up here even when no worker happened to replay that history during
 * the soak, so one soak checks far more orderings than the kills alone reach. Failing histories are written
 * to the data folder for test/histories/.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';

export interface ReplayFailure {
  workflowId: string;
  runId: string;
  error: string;
  file: string;
}

export interface ReplayAllResult {
  replayed: number;
  failures: ReplayFailure[];
}

export async function replayAll(client: Client, query: string, bundlePath: string, dataDir: string): Promise<ReplayAllResult> {
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const wf of client.workflow.list({ query })) runs.push({ workflowId: wf.workflowId, runId: wf.runId });
  // Results come back in the order the histories went in (one replay at a time); ids repeat across runs.
  const inFlight: { workflowId: string; runId: string; history: unknown }[] = [];
  // One replay worker for all of them (loading the bundle once); each history is fetched as it is needed.
  async function* each() {
    for (const { workflowId, runId } of runs) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      inFlight.push({ workflowId, runId, history });
      yield { workflowId, history };
    }
  }
  const failures: ReplayFailure[] = [];
  let replayed = 0;
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: bundlePath } }, each())) {
    replayed++;
    const { runId, history } = inFlight.shift() ?? { runId: 'unknown', history: undefined };
    if (!r.error) continue;
    const file = join(dataDir, `replay-failed-${r.workflowId.replace(/[^A-Za-z0-9._-]/g, '_')}-${runId}.history.json`);
    writeFileSync(file, JSON.stringify(history));
    failures.push({ workflowId: r.workflowId, runId, error: (r.error.message ?? String(r.error)).split('\n')[0].slice(0, 300), file });
  }
  return { replayed, failures };
}
