/**
 * Reliability (#12): the MLflow server is killed with SIGKILL in the middle of a promotion and stays away for
 * 30 s. The shared test stack's MLflow is never killed (other files use it): this file runs an MLflow server of
 * its own (SQLite store on disk, test/support/fault-stack.ts) behind a recording proxy that resets the worker's
 * connections while MLflow is down, as a direct connection to a dead server would. The worker's activities fail,
 * Temporal retries them, and once MLflow is back the promotion completes with each write applied exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import type { MlflowServer } from '../src/stack/embedded.js';
import { approve, startLifecycle } from './support/identity.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually } from './support/wait.js';
import { startRecordingProxy, type RecordingProxy } from './support/recording-proxy.js';
import { startOwnMlflow, type RestartableServer } from './support/fault-stack.js';
import { spawnWorkerProcess, type WorkerProcess } from './support/worker-process.js';
import { assertPromotedOnce } from './support/exactly-once.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

/** How long MLflow stays down: the fault itself (issue #12), not a wait for something to happen. */
const OUTAGE_MS = 30_000;

describe('modelLifecycle when MLflow is down for 30 s mid-promotion', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflowServer: RestartableServer<MlflowServer> & { url: string };
  let proxy: RecordingProxy;
  let policyFile: string;
  const workers = new Set<WorkerProcess>();

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflowServer = await startOwnMlflow(testStack().dataDir);
    proxy = await startRecordingProxy(mlflowServer.url, { whenUpstreamDown: 'reset' });
    policyFile = join(testStack().dataDir, `${unique('policy')}.yaml`);
    writeFileSync(policyFile, POLICY);
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await proxy?.close();
    await mlflowServer?.stop();
    await env?.teardown();
  });

  const phaseIs = (model: string, version: number, phase: LifecycleState['phase'], timeoutMs = 150_000) =>
    eventually(`${model} v${version} ${phase}`, async () => {
      const s = await getState(client, model, version);
      return s.phase === phase ? s : undefined;
    }, timeoutMs);

  it('when MLflow is killed after approval, right after it applied the Production lock token, and is back 30 s later, then the retries complete the promotion and every write happened once', async (t) => {
    const model = unique('mlflow-outage');
    const taskQueue = unique('mlflow-faults');
    const registering = testMlflow(mlflowServer.url);
    const v = await registerTrainedVersion(registering, model);
    await registering.close();
    const worker = spawnWorkerProcess({ temporalAddress: testStack().temporalAddress, mlflowUri: proxy.url, policyFile, taskQueue });
    workers.add(worker);
    await startLifecycle(client, model, v.version, { source: 'test' }, taskQueue);
    await phaseIs(model, v.version, 'awaiting_approval');

    // Under the lock, the first write is the fencing token; MLflow dies once it has applied it, before the
    // Production transition, alias and tags.
    let killed: Promise<number> | undefined;
    proxy.afterUpstream = (rec) => {
      if (rec.path.includes('registered-models/set-tag') && rec.body?.name === model) {
        killed ??= mlflowServer.kill().then(() => Date.now());
        return killed.then(() => undefined);
      }
    };
    await approve(client, model, v.version, { by: 'alice' });
    const killedAt = await eventually('MLflow killed mid-promotion', async () => killed, 60_000);
    proxy.afterUpstream = undefined;
    const triedWhileDown = () => proxy.requests.filter((r) => r.status === undefined).length;
    await delay(OUTAGE_MS);
    await mlflowServer.restart();
    const backAt = Date.now();
    // The worker kept trying while MLflow was away (the attempts reached the proxy and got no answer).
    const failedAttempts = triedWhileDown();
    assert.ok(failedAttempts > 0, 'no attempt while MLflow was down');

    const s = await phaseIs(model, v.version, 'production');
    t.diagnostic(
      `MLflow away ${backAt - killedAt} ms (kill to healthy again); ${failedAttempts} requests failed meanwhile; ` +
        `in Production ${Date.now() - backAt} ms after MLflow was back`,
    );
    assert.equal(s.stage, 'Production');
    const check = testMlflow(mlflowServer.url);
    try {
      assert.equal((await check.getModelVersion(model, v.version)).current_stage, 'Production');
    } finally {
      await check.close();
    }
    assertPromotedOnce(proxy, model, v.version);
    assert.equal(worker.child.exitCode, null, worker.output());
    await worker.kill();
  });
});
