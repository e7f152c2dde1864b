/**
 * The state query every front door asks before it decides: bounded per attempt, so a query task lost on the
 * worker side (a dead sticky worker, or a query the SDK dropped when it evicted the run it was buffered behind)
 * costs one attempt, not the server's 30 s query timeout per attempt.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ServiceError } from '@temporalio/client';
import { lifecycleHandle, stateOf } from '../src/client.js';
import { startLifecycle } from './support/identity.js';
import { connectTestEnv, unique } from './support/stack.js';

describe('the state query', () => {
  let env: TestWorkflowEnvironment;

  before(async () => {
    env = await connectTestEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  // The runner's timeout guards the old behaviour (5 attempts of 30 s each); nothing here measures time.
  it('when no worker answers, then stateOf gives up after its attempts with DEADLINE_EXCEEDED', { timeout: 25_000 }, async () => {
    const model = unique('unanswered');
    // A task queue no worker polls: every query task is lost, as one handed to a dead worker is.
    await startLifecycle(env.client, model, 1, { source: 'test' }, unique('nobody-polls'));
    const err = await stateOf(lifecycleHandle(env.client, model, 1), { attemptMs: 500, attempts: 3 }).then(
      () => assert.fail('a query no worker answers must fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ServiceError, String(err));
    assert.equal((err.cause as { code?: number } | undefined)?.code, 4, err.message);
  });
});
