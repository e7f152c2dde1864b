/**
 * Reliability (#12): the Temporal server itself is killed with SIGKILL in the middle of a promotion and started
 * again on the same database. The shared test stack's server is never killed (other files use it): this file
 * runs a dev server of its own on its own port with a `--db-filename` on disk (test/support/fault-stack.ts), and
 * the deployed worker process against it. A recording proxy in front of the shared MLflow counts what MLflow
 * applied: the promotion completes and each transition, alias and tag happened exactly once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { getState } from '../src/client.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import type { TemporalServer } from '../src/stack/embedded.js';
import { approve, startLifecycle } from './support/identity.js';
import { testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually } from './support/wait.js';
import { startRecordingProxy, type Recorded, type RecordingProxy } from './support/recording-proxy.js';
import { startOwnTemporal, type RestartableServer } from './support/fault-stack.js';
import { spawnWorkerProcess, type WorkerProcess } from './support/worker-process.js';
import { assertPromotedOnce } from './support/exactly-once.js';

const POLICY = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`;

describe('modelLifecycle when the Temporal server is killed mid-promotion', () => {
  let temporal: RestartableServer<TemporalServer> & { address: string; dbFile: string };
  let connection: Connection;
  let client: Client;
  let mlflow: MlflowClient;
  let proxy: RecordingProxy;
  let policyFile: string;
  const workers = new Set<WorkerProcess>();

  before(async () => {
    temporal = await startOwnTemporal(testStack().dataDir);
    connection = await Connection.connect({ address: temporal.address });
    client = new Client({ connection, namespace: 'default' });
    mlflow = testMlflow(testStack().mlflowUri);
    proxy = await startRecordingProxy(testStack().mlflowUri);
    policyFile = join(testStack().dataDir, `${unique('policy')}.yaml`);
    writeFileSync(policyFile, POLICY);
  });

  after(async () => {
    for (const w of workers) await w.kill();
    await connection?.close();
    await temporal?.stop();
    await proxy?.close();
    await mlflow?.close();
  });

  function startWorker(taskQueue: string): WorkerProcess {
    const w = spawnWorkerProcess({ temporalAddress: temporal.address, mlflowUri: proxy.url, policyFile, taskQueue });
    workers.add(w);
    void w.exited.then(() => workers.delete(w));
    return w;
  }

  const phaseIs = (model: string, version: number, phase: LifecycleState['phase'], timeoutMs = 120_000) =>
    eventually(`${model} v${version} ${phase}`, async () => {
      const s = await getState(client, model, version);
      return s.phase === phase ? s : undefined;
    }, timeoutMs);

  /**
   * Kills the server once, when MLflow has applied the write `when` matches and before its answer reaches the
   * worker: the activity's effect is in MLflow, its completion has nowhere to go. Resolves with the kill's time.
   */
  function killServerAfter(when: (r: Recorded) => boolean): { killed: () => Promise<number> | undefined } {
    let killed: Promise<number> | undefined;
    proxy.afterUpstream = (rec) => {
      if (!when(rec)) return;
      killed ??= temporal.kill().then(() => Date.now());
      return killed.then(() => undefined);
    };
    return { killed: () => killed };
  }

  /** Waits for the kill, restarts on the same port and database; returns how long the server was away. */
  async function restartAfterKill(k: { killed: () => Promise<number> | undefined }): Promise<number> {
    const at = await eventually('the Temporal server killed', async () => k.killed(), 60_000);
    proxy.afterUpstream = undefined;
    await temporal.restart();
    return Date.now() - at;
  }

  it('when the server is killed right after MLflow applied the Staging transition, then after a restart on the same database the promotion completes and every write happened once', async (t) => {
    const model = unique('temporal-kill-staging');
    const taskQueue = unique('temporal-faults');
    const v = await registerTrainedVersion(mlflow, model);
    const worker = startWorker(taskQueue);
    const k = killServerAfter((r) => r.path.includes('transition-stage') && r.body?.name === model && r.body?.stage === 'Staging');
    await startLifecycle(client, model, v.version, { source: 'test' }, taskQueue);
    const downMs = await restartAfterKill(k);
    const restartedAt = Date.now();
    await phaseIs(model, v.version, 'awaiting_approval');
    const stagingMs = Date.now() - restartedAt;
    await approve(client, model, v.version, { by: 'alice' });
    await phaseIs(model, v.version, 'production');
    t.diagnostic(`server away ${downMs} ms (kill to answering again); awaiting approval ${stagingMs} ms after the restart`);
    assert.equal((await mlflow.getModelVersion(model, v.version)).current_stage, 'Production');
    assertPromotedOnce(proxy, model, v.version);
    // The restarted server kept modelgate's search attributes (registered at start, as the embedded stack does).
    await eventually('the lifecycle listed by its search attributes', async () => {
      for await (const wf of client.workflow.list({ query: `ModelName = '${model}' AND ModelStage = 'Production'` })) return wf;
      return undefined;
    });
    // The same worker process rode out the outage: it reconnected instead of exiting.
    assert.equal(worker.child.exitCode, null, worker.output());
    await worker.kill();
  });

  it('when the server is killed after approval, right after MLflow applied the Production transition, then after a restart the promotion completes and every write happened once', async (t) => {
    const model = unique('temporal-kill-production');
    const taskQueue = unique('temporal-faults');
    const v = await registerTrainedVersion(mlflow, model);
    const worker = startWorker(taskQueue);
    await startLifecycle(client, model, v.version, { source: 'test' }, taskQueue);
    await phaseIs(model, v.version, 'awaiting_approval');
    const k = killServerAfter((r) => r.path.includes('transition-stage') && r.body?.name === model && r.body?.stage === 'Production');
    await approve(client, model, v.version, { by: 'bob' });
    const downMs = await restartAfterKill(k);
    const restartedAt = Date.now();
    const s = await phaseIs(model, v.version, 'production');
    t.diagnostic(`server away ${downMs} ms; in Production ${Date.now() - restartedAt} ms after the restart`);
    assert.equal(s.stage, 'Production');
    assert.equal((await mlflow.getModelVersion(model, v.version)).current_stage, 'Production');
    assertPromotedOnce(proxy, model, v.version);
    assert.equal(worker.child.exitCode, null, worker.output());
    await worker.kill();
  });
});
