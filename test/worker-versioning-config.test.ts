/**
 * Worker Versioning settings (#12): MODELGATE_WORKER_DEPLOYMENT_NAME and MODELGATE_WORKER_BUILD_ID are both set
 * or both unset (half a version is refused naming the missing key), validated at start, and reach the SDK worker
 * worker-main builds as an AUTO_UPGRADE deployment version. What versioning does to running lifecycles is in
 * test/upgrade.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { buildWorkerFromConfig } from '../src/worker-main.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { versionRouting } from '../src/worker-version.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { testMlflow } from './support/fixtures.js';
import { loadPolicyFile } from '../src/policy/load.js';
import { eventually, startTestWorker } from './support/worker.js';
import { setCurrentVersion, setRampingVersion } from './support/versioning.js';

describe('the Worker Versioning settings', () => {
  it('when neither key is set, then the worker is unversioned', () => {
    assert.equal(loadConfig({}).worker.deployment, undefined);
  });

  it('when both keys are set, then the worker has that deployment version', () => {
    assert.deepEqual(loadConfig({ MODELGATE_WORKER_DEPLOYMENT_NAME: 'modelgate', MODELGATE_WORKER_BUILD_ID: '1.5.0' }).worker.deployment, {
      deploymentName: 'modelgate',
      buildId: '1.5.0',
    });
  });

  it('when only one key is set, then loadConfig refuses naming the missing key', () => {
    assert.throws(() => loadConfig({ MODELGATE_WORKER_DEPLOYMENT_NAME: 'modelgate' }), {
      name: 'ConfigError',
      message: /^MODELGATE_WORKER_BUILD_ID: required when MODELGATE_WORKER_DEPLOYMENT_NAME is set/,
    });
    assert.throws(() => loadConfig({ MODELGATE_WORKER_BUILD_ID: '1.5.0' }), {
      name: 'ConfigError',
      message: /^MODELGATE_WORKER_DEPLOYMENT_NAME: required when MODELGATE_WORKER_BUILD_ID is set/,
    });
  });

  it('when a value has a dot in the name, spaces, a slash or is too long, then loadConfig names the key and the value', () => {
    for (const [key, value] of [
      ['MODELGATE_WORKER_DEPLOYMENT_NAME', 'model.gate'],
      ['MODELGATE_WORKER_DEPLOYMENT_NAME', 'model gate'],
      ['MODELGATE_WORKER_DEPLOYMENT_NAME', 'x'.repeat(101)],
      ['MODELGATE_WORKER_BUILD_ID', '1.5.0 rc'],
      ['MODELGATE_WORKER_BUILD_ID', '../1.5'],
      ['MODELGATE_WORKER_BUILD_ID', '-rf'],
    ] as const) {
      const both = { MODELGATE_WORKER_DEPLOYMENT_NAME: 'modelgate', MODELGATE_WORKER_BUILD_ID: '1.5.0', [key]: value };
      assert.throws(
        () => loadConfig(both),
        (err: Error) => err.name === 'ConfigError' && err.message.startsWith(`${key}: `) && err.message.endsWith(`(got ${JSON.stringify(value)})`),
        `${key}=${value}`,
      );
    }
  });

  it('when worker-main builds a versioned worker, then the SDK worker polls as that version with AUTO_UPGRADE', async () => {
    const env = await connectTestEnv();
    const rt = await buildWorkerFromConfig({
      TEMPORAL_ADDRESS: testStack().temporalAddress,
      MLFLOW_TRACKING_URI: testStack().mlflowUri,
      MODELGATE_POLICY_FILE: join(PROJECT_ROOT, 'policies', 'policy.yaml'),
      MODELGATE_TASK_QUEUE: unique('versioning-config'),
      MODELGATE_LOG_LEVEL: 'silent',
      MODELGATE_WORKER_DEPLOYMENT_NAME: unique('modelgate'),
      MODELGATE_WORKER_BUILD_ID: '1.5.0',
    });
    try {
      const o = rt.worker.options.workerDeploymentOptions;
      assert.deepEqual(
        { build: o?.version.buildId, versioned: o?.useWorkerVersioning, behavior: o?.defaultVersioningBehavior },
        { build: '1.5.0', versioned: true, behavior: 'AUTO_UPGRADE' },
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

  it('when a build is new, made current, or ramped, then versionRouting says idle, current or ramping (what the worker logs at start)', async () => {
    const env = await connectTestEnv();
    const mlflow = testMlflow(testStack().mlflowUri);
    const deploymentName = unique('modelgate-routing');
    const taskQueue = unique('versioning-routing');
    const policies = loadPolicyFile(join(PROJECT_ROOT, 'policies', 'policy.yaml'));
    const workers = [];
    try {
      assert.deepEqual(await versionRouting(env.client, 'default', { deploymentName, buildId: 'x' }), { routing: 'idle' });
      workers.push(await startTestWorker(env, { mlflow, policies, taskQueue, deployment: { deploymentName, buildId: 'x' } }));
      await setCurrentVersion(deploymentName, 'x');
      assert.deepEqual(await versionRouting(env.client, 'default', { deploymentName, buildId: 'x' }), { routing: 'current', currentBuildId: 'x' });
      // The next release polls beside it: idle (the deploy that forgot set-current-version), then ramping.
      workers.push(await startTestWorker(env, { mlflow, policies, taskQueue, deployment: { deploymentName, buildId: 'y' } }));
      await eventually('build y known to the deployment', async () => {
        const r = await versionRouting(env.client, 'default', { deploymentName, buildId: 'y' });
        return r.routing === 'idle' && r.currentBuildId === 'x' ? r : undefined;
      });
      await setRampingVersion(deploymentName, 'y', 25);
      assert.deepEqual(await versionRouting(env.client, 'default', { deploymentName, buildId: 'y' }), { routing: 'ramping', currentBuildId: 'x' });
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
      await mlflow.close();
      await env.teardown();
    }
  });
});
