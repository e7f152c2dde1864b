/**
 * Committed workflow histories under test/histories/ are replayed in CI (test/replay.test.ts), so a change
 * that makes the workflow non-deterministic fails the build. `MODELGATE_CAPTURE_HISTORIES=1 npm test` rewrites
 * them from the lifecycle tests' real executions, in the Temporal CLI's JSON format (what the UI downloads).
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { PROJECT_ROOT, resolveTemporalBinary } from '../../src/stack/embedded.js';
import { testStack } from './stack.js';

export const HISTORIES_DIR = join(PROJECT_ROOT, 'test', 'histories');

/** The latest run of the handle's workflow, or the run `runId` (e.g. one that ended by continuing as new). */
export async function captureHistory(handle: WorkflowHandle, name: string, runId?: string): Promise<void> {
  if (!process.env.MODELGATE_CAPTURE_HISTORIES) return;
  await mkdir(HISTORIES_DIR, { recursive: true });
  const run = runId ? ['--run-id', runId] : [];
  const { stdout: json } = await promisify(execFile)(
    resolveTemporalBinary(),
    ['workflow', 'show', '--workflow-id', handle.workflowId, ...run, '--output', 'json', '--address', testStack().temporalAddress, '--namespace', 'default'],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  await writeFile(join(HISTORIES_DIR, `${name}.json`), json);
}
