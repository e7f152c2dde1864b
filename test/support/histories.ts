/**
 * Committed workflow histories under test/histories/ are replayed in CI (test/replay.test.ts), so a change
 * that makes the workflow non-deterministic fails the build. `MODELGATE_CAPTURE_HISTORIES=1 npm test` rewrites
 * them from the lifecycle tests' real executions.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { PROJECT_ROOT } from '../../src/stack/embedded.js';

export const HISTORIES_DIR = join(PROJECT_ROOT, 'test', 'histories');

export async function captureHistory(handle: WorkflowHandle, name: string): Promise<void> {
  if (!process.env.MODELGATE_CAPTURE_HISTORIES) return;
  mkdirSync(HISTORIES_DIR, { recursive: true });
  const history = await handle.fetchHistory();
  writeFileSync(join(HISTORIES_DIR, `${name}.json`), historyToJSON(history));
}
