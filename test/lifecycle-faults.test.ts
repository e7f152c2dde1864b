/**
 * Reliability: the real worker process (`node dist/src/worker-main.js`) is SIGKILLed at the worst moments and a new
 * one finishes the promotion. A recording proxy in front of the real MLflow server counts every write: each
 * transition, alias and tag happens exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import { approve, startLifecycle, TEST_IDENTITIES_YAML, TEST_KEYS, TEST_KID } from './support/identity.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually } from './support/worker.js';
import { startRecordingProxy, writes, type RecordingProxy } from './support/recording-proxy.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('modelLifecycle when the worker process dies', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let proxy: RecordingProxy;
  let policyFile: string;
  const children = new Set<ChildProcess>();

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    proxy = await startRecordingProxy(testStack().mlflowUri);
    policyFile = join(testStack().dataDir, `${unique('policy')}.yaml`);
    writeFileSync(policyFile, POLICY);
  });

  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await proxy?.close();
    await mlflow?.close();
    await env?.teardown();
  });

  function startWorkerProcess(taskQueue: string): ChildProcess {
    const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'src', 'worker-main.js')], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: testStack().temporalAddress,
        MLFLOW_TRACKING_URI: proxy.url,
        MODELGATE_POLICY_FILE: policyFile,
        MODELGATE_TASK_QUEUE: taskQueue,
        MODELGATE_LOG_LEVEL: 'warn',
        MODELGATE_ATTESTATION_PUBLIC_KEYS: `${TEST_KID}=${TEST_KEYS[TEST_KID]}`,
        MODELGATE_IDENTITIES: TEST_IDENTITIES_YAML,
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  }

  function kill(child: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  const phaseIs = (model: string, version: number, phase: LifecycleState['phase']) =>
    eventually(`${model} v${version} ${phase}`, async () => {
      const s = await getState(client, model, version);
      return s.phase === phase ? s : undefined;
    }, 120_000);

  function assertEachWriteOnce(model: string, version: number): void {
    const key = { name: model, version };
    assert.equal(writes(proxy, 'model-versions/transition-stage', { ...key, stage: 'Staging' }).length, 1, 'Staging transitions');
    assert.equal(writes(proxy, 'model-versions/transition-stage', { ...key, stage: 'Production' }).length, 1, 'Production transitions');
    assert.equal(writes(proxy, 'registered-models/alias', { name: model, alias: 'production', version }).length, 1, 'production alias');
    assert.equal(writes(proxy, 'registered-models/alias', { name: model, alias: 'staging', version }).length, 1, 'staging alias');
    const tagWrites = writes(proxy, 'model-versions/set-tag', key);
    // modelgate.stage legitimately changes (Staging, then Production): count each key *and value* once.
    const perWrite = new Map<string, number>();
    for (const w of tagWrites) {
      const k = `${String(w.body?.key)}=${String(w.body?.value)}`;
      perWrite.set(k, (perWrite.get(k) ?? 0) + 1);
    }
    for (const [k, n] of perWrite) assert.equal(n, 1, `tag ${k} written ${n} times`);
    assert.ok(perWrite.has('modelgate.approved_by=alice') || perWrite.has('modelgate.approved_by=bob'));
    assert.ok([...perWrite.keys()].some((k) => k.startsWith('modelgate.promoted_at=')));
  }

  it('when the worker is killed while waiting for approval, then a new worker finishes and every write happened once', async () => {
    const model = unique('kill-waiting');
    const taskQueue = unique('faults');
    const v = await registerTrainedVersion(mlflow, model);
    const first = startWorkerProcess(taskQueue);
    await startLifecycle(client, model, v.version, { source: 'test' }, taskQueue);
    await phaseIs(model, v.version, 'awaiting_approval');
    await kill(first);
    const second = startWorkerProcess(taskQueue);
    await approve(client, model, v.version, { by: 'alice' });
    await phaseIs(model, v.version, 'production');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Production');
    assertEachWriteOnce(model, v.version);
    await kill(second);
  });

  it('when the worker is killed right after MLflow applied the Production transition, then the retry does not transition or tag again', async () => {
    const model = unique('kill-after-transition');
    const taskQueue = unique('faults');
    const v = await registerTrainedVersion(mlflow, model);
    const first = startWorkerProcess(taskQueue);
    let killed: Promise<void> | undefined;
    proxy.afterUpstream = (rec) => {
      const b = rec.body ?? {};
      if (rec.path.includes('transition-stage') && b.name === model && b.stage === 'Production') {
        // MLflow has applied it; the worker dies before it hears the answer.
        killed ??= kill(first);
        return killed;
      }
    };
    await startLifecycle(client, model, v.version, { source: 'test' }, taskQueue);
    await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'bob' });
    await eventually('the worker killed mid-promotion', () => (killed ? true : undefined), 60_000);
    await killed;
    proxy.afterUpstream = undefined;
    const second = startWorkerProcess(taskQueue);
    await phaseIs(model, v.version, 'production');
    assert.equal((await mlflow.getModelVersion(model, v.version)).current_stage, 'Production');
    assertEachWriteOnce(model, v.version);
    await kill(second);
  });
});
