/**
 * The worker's leaving settings (#12): MODELGATE_WORKER_SHUTDOWN_GRACE_MS, MODELGATE_WORKER_SHUTDOWN_FORCE_MS and
 * MODELGATE_STICKY_QUEUE_TIMEOUT_MS are validated at start (a bad value names the key) and reach the SDK worker
 * that worker-main builds. What they do to a running worker is test/worker-shutdown.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { buildWorkerFromConfig } from '../src/worker-main.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';

describe('the worker shutdown and sticky queue settings', () => {
  it('when none is set, then a stopping worker has 60 s of grace, gives up at 80 s (under the pod\'s 90 s), and the sticky timeout is 3 s', () => {
    assert.deepEqual(
      (({ shutdownGraceMs, shutdownForceMs, stickyQueueTimeoutMs }) => ({ shutdownGraceMs, shutdownForceMs, stickyQueueTimeoutMs }))(loadConfig({}).worker),
      { shutdownGraceMs: 60_000, shutdownForceMs: 80_000, stickyQueueTimeoutMs: 3000 },
    );
  });

  it('when the force time does not exceed the grace, then loadConfig refuses naming both keys', () => {
    assert.throws(
      () => loadConfig({ MODELGATE_WORKER_SHUTDOWN_GRACE_MS: '30000', MODELGATE_WORKER_SHUTDOWN_FORCE_MS: '30000' }),
      { name: 'ConfigError', message: /^MODELGATE_WORKER_SHUTDOWN_FORCE_MS: must exceed MODELGATE_WORKER_SHUTDOWN_GRACE_MS \(30000\)/ },
    );
  });

  it('when a value is not a whole number of milliseconds in range, then loadConfig names the key and the value', () => {
    for (const [key, value] of [
      ['MODELGATE_STICKY_QUEUE_TIMEOUT_MS', '500'],
      ['MODELGATE_STICKY_QUEUE_TIMEOUT_MS', '120000'],
      ['MODELGATE_WORKER_SHUTDOWN_GRACE_MS', '-1'],
      ['MODELGATE_WORKER_SHUTDOWN_GRACE_MS', '10s'],
      ['MODELGATE_WORKER_SHUTDOWN_FORCE_MS', '0'],
    ] as const) {
      assert.throws(() => loadConfig({ [key]: value }), { name: 'ConfigError', message: new RegExp(`^${key}: .*\\(got "${value}"\\)$`) }, `${key}=${value}`);
    }
  });

  it('when worker-main builds the worker, then the SDK worker has the configured grace, force time and sticky timeout', async () => {
    // The SDK runtime (installed here before the first native connection) is the test's, with its quiet logger.
    const env = await connectTestEnv();
    const rt = await buildWorkerFromConfig({
      TEMPORAL_ADDRESS: testStack().temporalAddress,
      MLFLOW_TRACKING_URI: testStack().mlflowUri,
      MODELGATE_POLICY_FILE: join(PROJECT_ROOT, 'policies', 'policy.yaml'),
      MODELGATE_TASK_QUEUE: unique('shutdown-config'),
      MODELGATE_LOG_LEVEL: 'silent',
      MODELGATE_WORKER_SHUTDOWN_GRACE_MS: '7000',
      MODELGATE_WORKER_SHUTDOWN_FORCE_MS: '9000',
      MODELGATE_STICKY_QUEUE_TIMEOUT_MS: '2500',
    });
    try {
      const o = rt.worker.options;
      assert.deepEqual(
        { grace: o.shutdownGraceTimeMs, force: o.shutdownForceTimeMs, sticky: o.stickyQueueScheduleToStartTimeoutMs },
        { grace: 7000, force: 9000, sticky: 2500 },
      );
    } finally {
      // Never polled: run and stop it at once so the native worker is released before the connections close.
      const running = rt.worker.run();
      rt.worker.shutdown();
      await running;
      await rt.close();
      await env.teardown();
    }
  });
});
