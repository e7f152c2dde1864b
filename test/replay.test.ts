/** Replays every committed history against the current workflow bundle: non-determinism fails CI. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { WORKFLOW_BUNDLE } from './support/stack.js';
import { HISTORIES_DIR } from './support/histories.js';

describe('committed workflow histories', () => {
  // Subfolders keep the histories of earlier releases: running executions started then must still replay.
  const files = (readdirSync(HISTORIES_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith('.json')).sort();

  it('when the suite runs, then there are committed histories to replay', () => {
    assert.ok(files.length >= 5, `expected at least 5 histories in ${HISTORIES_DIR}, found ${files.length}`);
  });

  /** Issue #12: every path a long-lived execution can be parked on or resume through has a history here. */
  const PATHS: Record<string, RegExp> = {
    GitOps: /^gitops-/,
    rollback: /rollback/,
    're-approval (round dropped)': /reapproved|approvals-dropped/,
    'approval expiry': /expired|expiry/,
    'lock workflow': /^lock-workflow-/,
    'continue-as-new (the run that continues)': /^continued-as-new-first-run/,
    'continue-as-new (the run it starts)': /^continued-as-new-then/,
    superseded: /^superseded/,
    retired: /retired/,
  };
  for (const [path, pattern] of Object.entries(PATHS)) {
    it(`when the suite runs, then the ${path} path has a committed history of this release`, () => {
      assert.ok(files.some((f) => !f.includes('/') && pattern.test(f)), `no history in ${HISTORIES_DIR} matches ${String(pattern)}`);
    });
  }

  for (const file of files) {
    it(`when ${file} is replayed with the current workflow code, then it is deterministic`, async () => {
      const history = JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')) as { events?: Array<{ eventType?: string }> }; // the Temporal CLI's JSON; replay converts it
      // A run captured before its first task completed replays nothing (and the replayer waits for ever on it).
      assert.ok(history.events?.some((e) => e.eventType === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED'), `${file}: no completed workflow task (captured too early)`);
      const workflowId = file.replace(/\.json$/, '').replace(/[\\/]/g, '-');
      for await (const result of Worker.runReplayHistories({ workflowBundle: WORKFLOW_BUNDLE }, [{ workflowId, history }])) {
        assert.equal(result.error, undefined, `${file}: ${String(result.error)}`);
      }
    });
  }
});
