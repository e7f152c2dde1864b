/**
 * Deployment verification on Kubernetes. First the pure judgements (every rule of the issue, one case each),
 * then the activities in a real Temporal worker on the real dev server, talking through the real
 * @kubernetes/client-node to the API double (test/support/k8s-double.ts) whose objects are checked against
 * the published CRDs: happy paths, load failure, deadline, a killed worker, 410, 409, 403, Ready flapping,
 * the ArgoCD gate, the smoke probe and the rollback wait. Without the CRD schemas (MODELGATE_CRD_DIR) all of
 * it still runs against a double that checks object structure only, and the final conformance test skips.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ActivityFailure, ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { MockActivityEnvironment, type TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import {
  createDeployActivities,
  KUBERNETES_FORBIDDEN,
  type RolloutCheckpoint,
  type RolloutResult,
  type WaitForRolloutInput,
} from '../src/activities/deploy.js';
import { ConfigError } from '../src/config.js';
import { createK8sClient, loadK8sConfig } from '../src/config/k8s.js';
import { judgeArgoApplication, judgeInferenceService } from '../src/k8s/rollout.js';
import { ARGO_APPLICATIONS, INFERENCE_SERVICES, type ArgoApplication, type InferenceService } from '../src/k8s/types.js';
import type { KservePolicy } from '../src/policy/types.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { crdSchemasMissing } from './support/k8s-crds.js';
import { K8sDouble } from './support/k8s-double.js';
import {
  applyStorageUri,
  argoOutOfSync,
  argoSync,
  createServingInferenceService,
  createSyncedApplication,
  markFailedToLoad,
  markProgressing,
  markReady,
  markReadyUnknown,
  revisionName,
} from './support/k8s-fixtures.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { eventually } from './support/worker.js';
import { metricValue } from './support/metrics.js';
import type { ActivitySettings } from './workflows/k8s-rollout-workflows.js';

/** Rollouts observed so far by result (the activities run in this process, so their registry is ours). */
const rolloutsObserved = (result: string) => metricValue('modelgate_rollout_duration_seconds', { result }, 'count');

const OLD_URI = 's3://models/iris/1/artifacts';
const NEW_URI = 's3://models/iris/2/artifacts';
const OLD_SHA = 'a'.repeat(40);
const MERGE_SHA = 'b'.repeat(40);

// ====================================================================== pure judgements

function isvc(o: {
  uri?: string;
  generation?: number;
  observed?: number;
  ready?: 'True' | 'False' | 'Unknown' | null;
  created?: string;
  readyRev?: string;
  traffic?: Array<{ revisionName: string; percent: number; tag?: string }>;
  modelStatus?: NonNullable<InferenceService['status']>['modelStatus'];
}): InferenceService {
  const rev = o.readyRev ?? 'iris-predictor-00002';
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'iris', namespace: 'ml', generation: o.generation ?? 2 },
    spec: { predictor: { model: { modelFormat: { name: 'mlflow' }, storageUri: o.uri ?? NEW_URI } } },
    status: {
      observedGeneration: o.observed ?? 2,
      conditions: o.ready === null ? [] : [{ type: 'Ready', status: o.ready ?? 'True', reason: o.ready === 'Unknown' ? 'IngressNotConfigured' : undefined }],
      modelStatus: o.modelStatus ?? { transitionStatus: 'UpToDate', states: { activeModelState: 'Loaded' } },
      components: {
        predictor: {
          latestCreatedRevision: o.created ?? rev,
          latestReadyRevision: rev,
          traffic: o.traffic ?? [{ revisionName: rev, percent: 100 }],
        },
      },
    },
  };
}

const serverless = { storageUri: NEW_URI, mode: 'Serverless' } as const;
const raw = { storageUri: NEW_URI, mode: 'RawDeployment' } as const;

describe('judging an InferenceService', () => {
  test('when it does not exist, then it is waiting', () => {
    assert.deepEqual(judgeInferenceService(undefined, serverless), { status: 'waiting', why: 'InferenceService not found' });
  });

  test('when spec.predictor.model.storageUri is still the old one, then it is waiting even though the old version is ready', () => {
    const v = judgeInferenceService(isvc({ uri: OLD_URI }), serverless);
    assert.equal(v.status, 'waiting');
    assert.match((v as { why: string }).why, /storageUri is s3:\/\/models\/iris\/1\/artifacts, expecting s3:\/\/models\/iris\/2/);
  });

  test('when status.observedGeneration lags metadata.generation, then it is waiting although Ready is True with all traffic', () => {
    const v = judgeInferenceService(isvc({ generation: 3, observed: 2 }), serverless);
    assert.equal(v.status, 'waiting');
    assert.match((v as { why: string }).why, /observedGeneration 2 .* metadata\.generation 3/);
  });

  test('when status has no observedGeneration, then it is waiting', () => {
    const o = isvc({});
    delete o.status!.observedGeneration;
    assert.equal(judgeInferenceService(o, serverless).status, 'waiting');
  });

  test('when a load failure is reported for an older generation, then it is waiting, not failed', () => {
    const v = judgeInferenceService(
      isvc({ generation: 3, observed: 2, modelStatus: { transitionStatus: 'BlockedByFailedLoad', states: { activeModelState: 'FailedToLoad' } } }),
      serverless,
    );
    assert.equal(v.status, 'waiting');
  });

  test('when modelStatus.transitionStatus is BlockedByFailedLoad, then it failed with the failure info', () => {
    const v = judgeInferenceService(
      isvc({
        ready: 'False',
        modelStatus: {
          transitionStatus: 'BlockedByFailedLoad',
          states: { activeModelState: 'Loaded', targetModelState: 'FailedToLoad' },
          lastFailureInfo: { reason: 'ModelLoadFailed', message: 'MLmodel not found' },
        },
      }),
      serverless,
    );
    assert.equal(v.status, 'failed');
    assert.match((v as { reason: string }).reason, /BlockedByFailedLoad.*targetModelState FailedToLoad.*ModelLoadFailed: MLmodel not found/);
  });

  test('when activeModelState is FailedToLoad, then it failed', () => {
    const v = judgeInferenceService(isvc({ modelStatus: { transitionStatus: 'InProgress', states: { activeModelState: 'FailedToLoad' } } }), raw);
    assert.equal(v.status, 'failed');
  });

  test('when transitionStatus is InvalidSpec, then it failed', () => {
    const v = judgeInferenceService(isvc({ modelStatus: { transitionStatus: 'InvalidSpec', states: { activeModelState: '' } } }), raw);
    assert.equal(v.status, 'failed');
  });

  test('when there is no Ready condition, then it is waiting', () => {
    assert.equal(judgeInferenceService(isvc({ ready: null }), serverless).status, 'waiting');
  });

  test('when Ready flaps to Unknown, then it is waiting (with the reason), not failed', () => {
    const v = judgeInferenceService(isvc({ ready: 'Unknown' }), serverless);
    assert.deepEqual(v, { status: 'waiting', why: 'Ready is Unknown (IngressNotConfigured)' });
  });

  test('when Ready is False without a load failure, then it is waiting for the deadline to decide', () => {
    assert.equal(judgeInferenceService(isvc({ ready: 'False' }), serverless).status, 'waiting');
  });

  test('when the latest created revision is not the latest ready one (serverless), then it is waiting', () => {
    const v = judgeInferenceService(isvc({ created: 'iris-predictor-00003' }), serverless);
    assert.equal(v.status, 'waiting');
    assert.match((v as { why: string }).why, /iris-predictor-00003 is not ready/);
  });

  test('when the ready revision has only canary traffic (serverless), then it is waiting', () => {
    const v = judgeInferenceService(
      isvc({ traffic: [{ revisionName: 'iris-predictor-00002', percent: 10 }, { revisionName: 'iris-predictor-00001', percent: 90 }] }),
      serverless,
    );
    assert.deepEqual(v, { status: 'waiting', why: 'revision iris-predictor-00002 has 10% of traffic, not 100%' });
  });

  test('when all traffic still goes to the previous revision (serverless), then it is waiting', () => {
    const v = judgeInferenceService(isvc({ traffic: [{ revisionName: 'iris-predictor-00001', percent: 100 }] }), serverless);
    assert.equal(v.status, 'waiting');
  });

  test('when the predictor reports no revisions (serverless), then it is waiting', () => {
    const o = isvc({});
    o.status!.components = {};
    assert.equal(judgeInferenceService(o, serverless).status, 'waiting');
  });

  test('when the new revision is ready with 100% of traffic (serverless), then it serves that revision', () => {
    assert.deepEqual(judgeInferenceService(isvc({}), serverless), { status: 'serving', revision: 'iris-predictor-00002' });
  });

  test('when traffic entries for the ready revision add up to 100% (tagged route at 0%), then it serves', () => {
    const v = judgeInferenceService(
      isvc({ traffic: [{ revisionName: 'iris-predictor-00002', percent: 100 }, { revisionName: 'iris-predictor-00002', percent: 0, tag: 'latest' }] }),
      serverless,
    );
    assert.equal(v.status, 'serving');
  });

  test('when RawDeployment is Ready at the current generation, then it serves without a revision', () => {
    const o = isvc({});
    o.status!.components = { predictor: {} };
    assert.deepEqual(judgeInferenceService(o, raw), { status: 'serving' });
  });

  test('when RawDeployment is not Ready, then it is waiting', () => {
    assert.equal(judgeInferenceService(isvc({ ready: 'Unknown' }), raw).status, 'waiting');
  });
});

function app(o: {
  revision?: string;
  sync?: string;
  health?: string;
  phase?: string;
  opRevision?: string | null;
  revisions?: string[];
}): ArgoApplication {
  const opRevision = o.opRevision === null ? undefined : (o.opRevision ?? o.revision ?? MERGE_SHA);
  return {
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'iris', namespace: 'argocd' },
    status: {
      sync: { status: o.sync ?? 'Synced', revision: o.revision ?? MERGE_SHA, ...(o.revisions ? { revisions: o.revisions } : {}) },
      health: { status: o.health ?? 'Healthy', message: o.health === 'Degraded' ? 'InferenceService not ready' : undefined },
      operationState: {
        phase: o.phase ?? 'Succeeded',
        message: o.phase === 'Failed' ? 'one or more objects failed to apply' : undefined,
        ...(opRevision ? { operation: { sync: { revision: opRevision } }, syncResult: { revision: opRevision } } : {}),
      },
    },
  };
}

describe('judging an ArgoCD Application', () => {
  test('when it does not exist, then it is waiting', () => {
    assert.equal(judgeArgoApplication(undefined, MERGE_SHA).status, 'waiting');
  });

  test('when it is synced and healthy at an older commit, then it is waiting for the merge commit', () => {
    const v = judgeArgoApplication(app({ revision: OLD_SHA }), MERGE_SHA);
    assert.equal(v.status, 'waiting');
    assert.match((v as { why: string }).why, new RegExp(`revision is ${OLD_SHA}, waiting for ${MERGE_SHA}`));
  });

  test('when it is OutOfSync at the merge commit, then it is waiting', () => {
    assert.equal(judgeArgoApplication(app({ sync: 'OutOfSync', phase: 'Running' }), MERGE_SHA).status, 'waiting');
  });

  test('when it is Synced but Progressing, then it is waiting', () => {
    assert.equal(judgeArgoApplication(app({ health: 'Progressing' }), MERGE_SHA).status, 'waiting');
  });

  test('when the sync operation is still Running, then it is waiting', () => {
    assert.equal(judgeArgoApplication(app({ phase: 'Running' }), MERGE_SHA).status, 'waiting');
  });

  test('when the last operation was for another commit, then it is waiting', () => {
    assert.equal(judgeArgoApplication(app({ opRevision: OLD_SHA }), MERGE_SHA).status, 'waiting');
  });

  test('when there is no operation state, then it is waiting (phase must be Succeeded)', () => {
    const a = app({ opRevision: null });
    delete a.status!.operationState;
    assert.equal(judgeArgoApplication(a, MERGE_SHA).status, 'waiting');
  });

  test('when it is Synced, Healthy and the operation Succeeded at the merge commit, then it passes', () => {
    assert.deepEqual(judgeArgoApplication(app({}), MERGE_SHA), { status: 'serving' });
  });

  test('when a multi-source Application lists the merge commit in sync.revisions, then it passes', () => {
    const a = app({ revisions: [OLD_SHA, MERGE_SHA], revision: '' });
    delete a.status!.sync!.revision;
    assert.equal(judgeArgoApplication(a, MERGE_SHA).status, 'serving');
  });

  test('when the sync of the merge commit ended Failed or Error, then it failed', () => {
    for (const phase of ['Failed', 'Error']) {
      const v = judgeArgoApplication(app({ phase, sync: 'OutOfSync', revision: OLD_SHA, opRevision: MERGE_SHA }), MERGE_SHA);
      assert.equal(v.status, 'failed', phase);
      assert.match((v as { reason: string }).reason, new RegExp(`sync of ${MERGE_SHA} ended ${phase}`));
    }
  });

  test('when a sync of another commit failed, then it is still waiting for the merge commit', () => {
    assert.equal(judgeArgoApplication(app({ phase: 'Failed', revision: OLD_SHA, opRevision: OLD_SHA }), MERGE_SHA).status, 'waiting');
  });

  test('when it is Degraded at the merge commit, then it failed', () => {
    const v = judgeArgoApplication(app({ health: 'Degraded' }), MERGE_SHA);
    assert.equal(v.status, 'failed');
    assert.match((v as { reason: string }).reason, /Degraded .*InferenceService not ready/);
  });

  test('when it is Degraded at an older commit, then it is waiting', () => {
    assert.equal(judgeArgoApplication(app({ health: 'Degraded', revision: OLD_SHA, opRevision: OLD_SHA }), MERGE_SHA).status, 'waiting');
  });
});

// ====================================================================== configuration

describe('Kubernetes configuration from the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-k8s-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('when nothing is set, then the client library default chain is used and ArgoCD refresh is off', () => {
    assert.deepEqual(loadK8sConfig({}), { source: { kind: 'default' }, argocdRefresh: false, requestTimeoutMs: 30_000 });
  });

  test('when MODELGATE_KUBECONFIG names a file, then that file is the source', () => {
    const path = join(dir, 'config');
    writeFileSync(path, 'apiVersion: v1\nkind: Config\n');
    assert.deepEqual(loadK8sConfig({ MODELGATE_KUBECONFIG: path, MODELGATE_ARGOCD_REFRESH: 'true' }).source, { kind: 'file', path });
    assert.equal(loadK8sConfig({ MODELGATE_KUBECONFIG: path, MODELGATE_ARGOCD_REFRESH: 'true' }).argocdRefresh, true);
  });

  test('when MODELGATE_K8S_IN_CLUSTER is true, then the service account is the source', () => {
    assert.deepEqual(loadK8sConfig({ MODELGATE_K8S_IN_CLUSTER: 'true' }).source, { kind: 'in-cluster' });
  });

  test('when the settings are wrong, then one line names the key', () => {
    assert.throws(() => loadK8sConfig({ MODELGATE_KUBECONFIG: join(dir, 'nope') }), (e: Error) => e instanceof ConfigError && /^MODELGATE_KUBECONFIG: no file at /.test(e.message));
    const path = join(dir, 'config2');
    writeFileSync(path, 'x');
    assert.throws(() => loadK8sConfig({ MODELGATE_KUBECONFIG: path, MODELGATE_K8S_IN_CLUSTER: 'true' }), /^ConfigError: MODELGATE_K8S_IN_CLUSTER: cannot be true when MODELGATE_KUBECONFIG is set/);
    assert.throws(() => loadK8sConfig({ MODELGATE_K8S_IN_CLUSTER: 'yes' }), /^ConfigError: MODELGATE_K8S_IN_CLUSTER: .*\(got "yes"\)/);
  });

  test('when the kubeconfig file is broken, then createK8sClient says so without quoting the file (it holds credentials)', () => {
    const path = join(dir, 'broken');
    writeFileSync(path, 'users: [{ name: u, user: { token: s3cr3t-token }\n  bad: : :');
    assert.throws(
      () => createK8sClient(loadK8sConfig({ MODELGATE_KUBECONFIG: path })),
      (e: Error) => e instanceof ConfigError && e.message.startsWith('MODELGATE_KUBECONFIG: cannot load Kubernetes configuration') && !e.message.includes('s3cr3t'),
    );
  });
});

// ====================================================================== activities in a real worker

describe('deployment activities against the Kubernetes API double', () => {
  let env: TestWorkflowEnvironment;
  let double: K8sDouble;
  let dir: string;
  let kubeconfig: string;
  let bundleCode: string;
  let bundlePath: string;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = unique('k8s-rollout');
  const normal: ActivitySettings = { heartbeatTimeoutMs: 5_000, initialIntervalMs: 500 };

  function deployActivities() {
    return createDeployActivities({
      k8s: createK8sClient(loadK8sConfig({ MODELGATE_KUBECONFIG: kubeconfig })),
      heartbeatIntervalMs: 500,
      smokeIntervalMs: 100,
      argocdRefresh: true,
    });
  }

  before(async () => {
    env = await connectTestEnv();
    double = await K8sDouble.start({ bookmarkIntervalMs: 500 });
    dir = mkdtempSync(join(testStack().dataDir, 'k8s-rollout-'));
    kubeconfig = double.writeKubeconfig(dir);
    ({ code: bundleCode } = await bundleWorkflowCode({
      workflowsPath: join(PROJECT_ROOT, 'dist', 'test', 'workflows', 'k8s-rollout-workflows.js'),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
    }));
    bundlePath = join(dir, 'k8s-rollout-bundle.js');
    writeFileSync(bundlePath, bundleCode);
    worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: { code: bundleCode },
      activities: deployActivities(),
    });
    running = worker.run();
  });

  after(async () => {
    if (worker?.getState() === 'RUNNING') worker.shutdown();
    await running;
    await double?.close();
    await env?.teardown();
    double?.assertConforming();
  });

  function kserve(over: Partial<KservePolicy> = {}): KservePolicy {
    return { deploymentMode: 'Serverless', rolloutDeadlineMs: 60_000, rollback: 'auto', ...over };
  }

  function rolloutInput(namespace: string, over: Partial<WaitForRolloutInput> = {}): WaitForRolloutInput {
    return { model: 'iris', version: 2, namespace, inferenceService: 'iris', storageUri: NEW_URI, kserve: kserve(), ...over };
  }

  function startRollout(input: WaitForRolloutInput, settings = normal, queue = taskQueue): Promise<WorkflowHandle> {
    return env.client.workflow.start('k8sRolloutWorkflow', { taskQueue: queue, workflowId: unique('k8s-rollout'), args: [input, settings] });
  }

  async function result(handle: WorkflowHandle): Promise<RolloutResult> {
    return (await handle.result()) as RolloutResult;
  }

  /** The activity's last heartbeat details as the server holds them. */
  async function checkpoint(handle: WorkflowHandle): Promise<RolloutCheckpoint | undefined> {
    const d = await handle.describe();
    const payload = d.raw.pendingActivities?.[0]?.heartbeatDetails?.payloads?.[0];
    return payload ? defaultPayloadConverter.fromPayload<RolloutCheckpoint>(payload) : undefined;
  }

  function waitForCheckpoint(handle: WorkflowHandle, what: string, ok: (c: RolloutCheckpoint) => boolean): Promise<RolloutCheckpoint> {
    return eventually(what, async () => {
      const c = await checkpoint(handle);
      return c && ok(c) ? c : undefined;
    });
  }

  function requestsIn(namespace: string) {
    return double.requests.filter((r) => r.namespace === namespace);
  }

  test('when the new revision becomes ready with all traffic (serverless), then waitForRollout reports serving only after the status caught up', async () => {
    const ns = unique('ml');
    const readyBefore = await rolloutsObserved('ready');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    const handle = await startRollout(rolloutInput(ns));
    await waitForCheckpoint(handle, 'waiting for the manifest', (c) => c.why.includes('change not applied yet'));

    // ArgoCD applied the manifest: the old generation's status (Ready, 100% on the old revision) must not count.
    applyStorageUri(double, ns, 'iris', NEW_URI);
    await waitForCheckpoint(handle, 'stale status seen', (c) => c.why.includes('observedGeneration 1'));
    markProgressing(double, ns, 'iris');
    await waitForCheckpoint(handle, 'new revision in progress', (c) => c.why.includes('Ready is Unknown (RevisionMissing'));
    markReady(double, ns, 'iris');

    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
    assert.equal((r as { revision?: string }).revision, revisionName('iris', 2));
    assert.ok(!Number.isNaN(Date.parse((r as { observedAt: string }).observedAt)));
    assert.equal(await rolloutsObserved('ready'), readyBefore + 1, 'modelgate_rollout_duration_seconds{result="ready"} observed once');
  });

  test('when a RawDeployment InferenceService is Ready at the new generation, then waitForRollout reports serving without a revision', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'RawDeployment' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    const handle = await startRollout(rolloutInput(ns, { kserve: kserve({ deploymentMode: 'RawDeployment' }) }));
    await waitForCheckpoint(handle, 'stale status seen', (c) => c.why.includes('observedGeneration 1'));
    markReady(double, ns, 'iris');
    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
    assert.equal((r as { revision?: string }).revision, undefined);
  });

  test('when the new model fails to load, then waitForRollout reports failed with KServe\'s reason', async () => {
    const ns = unique('ml');
    const failedBefore = await rolloutsObserved('failed');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    const handle = await startRollout(rolloutInput(ns));
    markProgressing(double, ns, 'iris');
    markFailedToLoad(double, ns, 'iris', 'MLmodel not found under s3://models/iris/2/artifacts');
    const r = await result(handle);
    assert.equal(r.outcome, 'failed');
    const reason = (r as { reason: string }).reason;
    assert.match(reason, new RegExp(`^InferenceService ${ns}/iris: model failed to load`));
    assert.match(reason, /BlockedByFailedLoad.*ModelLoadFailed: MLmodel not found/);
    assert.equal(await rolloutsObserved('failed'), failedBefore + 1);
  });

  test('when the rollout never becomes ready, then waitForRollout reports the deadline with the last state seen', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    markProgressing(double, ns, 'iris');
    const startedAt = Date.now();
    const handle = await startRollout(rolloutInput(ns, { kserve: kserve({ rolloutDeadlineMs: 2_000 }) }));
    const r = await result(handle);
    assert.equal(r.outcome, 'failed');
    assert.match((r as { reason: string }).reason, /^rollout deadline of 2000 ms .* passed; last seen: Ready is Unknown \(RevisionMissing: Configuration is waiting for a Revision/);
    assert.ok(Date.now() - startedAt >= 2_000);
  });

  test('when the deadline already passed according to the heartbeat details of an earlier attempt, then a retry fails at once instead of starting a new deadline', async () => {
    const ns = unique('ml');
    const earlier: RolloutCheckpoint = { startedAt: new Date(Date.now() - 120_000).toISOString(), phase: 'inferenceService', why: 'Ready is Unknown' };
    const acts = deployActivities();
    const mock = new MockActivityEnvironment({ heartbeatDetails: earlier, attempt: 2 });
    const r = await mock.run((i: WaitForRolloutInput) => acts.waitForRollout(i), rolloutInput(ns, { kserve: kserve({ rolloutDeadlineMs: 60_000 }) }));
    assert.deepEqual(r, { outcome: 'failed', reason: `rollout deadline of 60000 ms (from ${earlier.startedAt}) passed; last seen: Ready is Unknown` });
    assert.equal(requestsIn(ns).length, 0);
  });

  test('when the worker has no Kubernetes client, then the wait retries until the rollout deadline and then fails saying why', async () => {
    const acts = createDeployActivities({ k8s: undefined });
    const input = rolloutInput(unique('ml'), { kserve: kserve({ rolloutDeadlineMs: 60_000 }) });
    const fresh = new MockActivityEnvironment({ attempt: 1 });
    await assert.rejects(
      fresh.run((i: WaitForRolloutInput) => acts.waitForRollout(i), { ...input, startedAt: new Date().toISOString() }),
      /Kubernetes is not configured for this worker/,
    );
    const late = new MockActivityEnvironment({ attempt: 40 });
    const startedAt = new Date(Date.now() - 120_000).toISOString();
    const r = await late.run((i: WaitForRolloutInput) => acts.waitForRollout(i), { ...input, startedAt });
    assert.deepEqual(r, { outcome: 'failed', reason: `rollout deadline of 60000 ms (from ${startedAt}) passed: Kubernetes is not configured for this worker (MODELGATE_KUBECONFIG / MODELGATE_K8S_IN_CLUSTER)` });
  });

  test('when Ready flaps to Unknown mid-rollout, then waitForRollout keeps waiting and reports serving once ready', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    const handle = await startRollout(rolloutInput(ns));
    markProgressing(double, ns, 'iris');
    markReadyUnknown(double, ns, 'iris');
    await waitForCheckpoint(handle, 'Ready Unknown seen', (c) => c.why.includes('Ready is Unknown (IngressNotConfigured'));
    markReady(double, ns, 'iris');
    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
  });

  test('when the watch expires with 410 Gone, then waitForRollout lists again and still sees the rollout finish', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    const handle = await startRollout(rolloutInput(ns));
    await eventually('a watch open', () => Promise.resolve(double.openWatches(INFERENCE_SERVICES, ns) > 0 ? true : undefined));
    const listsBefore = requestsIn(ns).filter((r) => r.verb === 'list').length;
    const expiredAt = Date.now();
    double.expireWatches(); // ERROR 410 on the open watch; the events it could resume from are gone
    await eventually('a new list', () => Promise.resolve(requestsIn(ns).some((r) => r.verb === 'list' && r.at >= expiredAt) ? true : undefined));
    markProgressing(double, ns, 'iris');
    markReady(double, ns, 'iris');
    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
    assert.equal(listsBefore, 1);
    assert.equal(requestsIn(ns).filter((r) => r.verb === 'list').length, 2);
  });

  test('when RBAC forbids watching InferenceServices, then waitForRollout fails once, non-retryably, naming verb, resource and namespace', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    double.deny('watch', INFERENCE_SERVICES);
    try {
      const handle = await startRollout(rolloutInput(ns));
      const err = await handle.result().then(
        () => assert.fail('expected the workflow to fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ActivityFailure);
      const cause = err.cause.cause;
      assert.ok(cause instanceof ApplicationFailure);
      assert.equal(cause.type, KUBERNETES_FORBIDDEN);
      assert.equal(cause.nonRetryable, true);
      assert.match(cause.message, new RegExp(`watch inferenceservices\\.serving\\.kserve\\.io "iris" in namespace "${ns}" \\(403 Forbidden\\)`));
      assert.equal(requestsIn(ns).filter((r) => r.verb === 'watch' && r.status === 403).length, 1, 'one attempt only');
    } finally {
      double.allow();
    }
  });

  test('when ArgoCD has not synced the merge commit, then waitForRollout waits even though the InferenceService looks ready, and passes once it has', async () => {
    const ns = unique('ml');
    const argoNs = unique('argocd');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    markReady(double, ns, 'iris');
    createSyncedApplication(double, { namespace: argoNs, name: 'iris', revision: OLD_SHA, destinationNamespace: ns });
    const handle = await startRollout(
      rolloutInput(ns, { mergeSha: MERGE_SHA, kserve: kserve({ argocdApplication: { namespace: argoNs, name: 'iris' } }) }),
    );
    await waitForCheckpoint(handle, 'ArgoCD gate', (c) => c.phase === 'argocd' && c.why.includes(`waiting for ${MERGE_SHA}`));
    argoOutOfSync(double, argoNs, 'iris', MERGE_SHA);
    argoSync(double, argoNs, 'iris', MERGE_SHA, 'Running', 'Progressing');
    await waitForCheckpoint(handle, 'sync running', (c) => c.why.includes('OutOfSync'));
    assert.equal(requestsIn(ns).length, 0, 'the InferenceService is not looked at before ArgoCD passed');
    argoSync(double, argoNs, 'iris', MERGE_SHA, 'Succeeded', 'Healthy');
    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
    assert.equal(double.read(ARGO_APPLICATIONS, argoNs, 'iris')?.metadata?.annotations?.['argocd.argoproj.io/refresh'], 'normal');
  });

  test('when ArgoCD fails to sync the merge commit, then waitForRollout reports failed', async () => {
    const ns = unique('ml');
    const argoNs = unique('argocd');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    createSyncedApplication(double, { namespace: argoNs, name: 'iris', revision: OLD_SHA, destinationNamespace: ns });
    const handle = await startRollout(
      rolloutInput(ns, { mergeSha: MERGE_SHA, kserve: kserve({ argocdApplication: { namespace: argoNs, name: 'iris' } }) }),
    );
    argoSync(double, argoNs, 'iris', MERGE_SHA, 'Failed', 'Degraded');
    const r = await result(handle);
    assert.equal(r.outcome, 'failed');
    assert.match((r as { reason: string }).reason, new RegExp(`^${argoNs}/iris: ArgoCD sync of ${MERGE_SHA} ended Failed`));
  });

  test('when another writer changes the Application between read and write (409), then the refresh request re-reads and succeeds', async () => {
    const ns = unique('ml');
    const argoNs = unique('argocd');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    createSyncedApplication(double, { namespace: argoNs, name: 'iris', revision: OLD_SHA, destinationNamespace: ns });
    double.raceNextWrites(1);
    const handle = await startRollout(
      rolloutInput(ns, { mergeSha: MERGE_SHA, kserve: kserve({ argocdApplication: { namespace: argoNs, name: 'iris' } }) }),
    );
    // The gate lists the Application once the refresh request is done.
    await eventually('the ArgoCD wait', () => Promise.resolve(requestsIn(argoNs).some((r) => r.verb === 'list') ? true : undefined));
    assert.equal((await handle.describe()).raw.pendingActivities?.[0]?.attempt, 1, 'handled inside the attempt, not by a retry');
    const writes = requestsIn(argoNs).filter((r) => r.verb === 'get' || r.verb === 'update').map((r) => `${r.verb} ${r.status}`);
    assert.deepEqual(writes, ['get 200', 'update 409', 'get 200', 'update 200']);
    const stored = double.read(ARGO_APPLICATIONS, argoNs, 'iris')!;
    assert.equal(stored.metadata?.annotations?.['argocd.argoproj.io/refresh'], 'normal');
    assert.ok(stored.metadata?.labels?.['double.test/concurrent-writes'], 'the concurrent change survived');
    argoSync(double, argoNs, 'iris', MERGE_SHA, 'Succeeded', 'Healthy');
    applyStorageUri(double, ns, 'iris', NEW_URI);
    markReady(double, ns, 'iris');
    assert.equal((await result(handle)).outcome, 'serving');
  });

  test('when a smoke URL is configured, then waitForRollout serves only after /v2/models/<name>/ready answers OK', async () => {
    const ns = unique('ml');
    const hits: string[] = [];
    const smoke: Server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.writeHead(hits.length < 3 ? 503 : 200).end();
    });
    await new Promise<void>((resolve) => smoke.listen(0, '127.0.0.1', resolve));
    try {
      createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
      applyStorageUri(double, ns, 'iris', NEW_URI);
      markReady(double, ns, 'iris');
      const url = `http://127.0.0.1:${(smoke.address() as AddressInfo).port}/`;
      const handle = await startRollout(rolloutInput(ns, { kserve: kserve({ smokeUrl: url }) }));
      const r = await result(handle);
      assert.equal(r.outcome, 'serving');
      assert.equal((r as { revision?: string }).revision, revisionName('iris', 2));
      assert.equal(hits.length, 3);
      assert.deepEqual(new Set(hits), new Set(['/v2/models/iris/ready']));
    } finally {
      await new Promise<void>((resolve) => smoke.close(() => resolve()));
    }
  });

  test('when the revert restores the previous storageUri, then waitForRollback reports the previous version serving again', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);
    markFailedToLoad(double, ns, 'iris');
    const handle = await env.client.workflow.start('k8sRollbackWorkflow', {
      taskQueue,
      workflowId: unique('k8s-rollback'),
      args: [{ namespace: ns, inferenceService: 'iris', storageUri: OLD_URI, kserve: kserve() }, normal],
    });
    await waitForCheckpoint(handle, 'waiting for the revert', (c) => c.why.includes('change not applied yet'));
    applyStorageUri(double, ns, 'iris', OLD_URI);
    markReady(double, ns, 'iris');
    const r = await result(handle);
    assert.equal(r.outcome, 'serving');
    assert.equal((r as { revision?: string }).revision, revisionName('iris', 3));
  });

  test('when the worker is killed mid-wait, then another worker resumes from the heartbeat details and finishes within heartbeat timeout + first retry', async () => {
    const ns = unique('ml');
    const queue = unique('k8s-rollout-kill');
    const settings: ActivitySettings = { heartbeatTimeoutMs: 4_000, initialIntervalMs: 1_000 };
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: OLD_URI, mode: 'Serverless' });
    applyStorageUri(double, ns, 'iris', NEW_URI);

    const child: ChildProcess = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'test', 'support', 'k8s-worker-child.js')], {
      env: { ...process.env, MODELGATE_KUBECONFIG: kubeconfig, K8S_CHILD_TASK_QUEUE: queue, K8S_CHILD_BUNDLE: bundlePath },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let second: Worker | undefined;
    let secondRun: Promise<void> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        createInterface(child.stdout!).on('line', (l) => l === 'ready' && resolve());
        child.once('exit', (code) => reject(new Error(`worker child exited early (${code})`)));
      });
      const handle = await startRollout(rolloutInput(ns), settings, queue);
      markProgressing(double, ns, 'iris');
      await waitForCheckpoint(handle, 'a checkpoint with a resourceVersion', (c) => !!c.resourceVersion && c.why.includes('Ready is Unknown'));

      const killedAt = Date.now();
      child.kill('SIGKILL');
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve)));
      const saved = (await checkpoint(handle))!; // what the next attempt will get: the dead worker sends no more
      markReady(double, ns, 'iris'); // happens while nobody watches: the resumed watch must replay it

      second = await Worker.create({ connection: env.nativeConnection, taskQueue: queue, workflowBundle: { code: bundleCode }, activities: deployActivities() });
      secondRun = second.run();
      const r = await result(handle);
      const recoveredMs = Date.now() - killedAt;
      const resumedMs = (requestsIn(ns).find((q) => q.at >= killedAt)?.at ?? NaN) - killedAt;

      assert.equal(r.outcome, 'serving');
      assert.equal((r as { revision?: string }).revision, revisionName('iris', 2));
      const afterKill = requestsIn(ns).filter((q) => q.at >= killedAt);
      assert.equal(afterKill[0]?.verb, 'watch', 'resumed by watching, not by listing again');
      assert.equal(afterKill[0]?.resourceVersion, saved.resourceVersion);
      assert.equal(afterKill.filter((q) => q.verb === 'list').length, 0);
      const budget = settings.heartbeatTimeoutMs + settings.initialIntervalMs + 6_000;
      process.stderr.write(`k8s-rollout: killed worker: next attempt watching after ${resumedMs} ms, result after ${recoveredMs} ms (budget ${budget} ms)\n`);
      assert.ok(recoveredMs < budget, `recovered in ${recoveredMs} ms, budget ${budget} ms`);
      await eventually('the finished watch closed', () => Promise.resolve(double.openWatches(INFERENCE_SERVICES, ns) === 0 ? true : undefined), 5_000);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (second?.getState() === 'RUNNING') second.shutdown();
      await secondRun;
    }
  });

  test('when every scenario above has run, then every object the double stored or served conformed to the published CRD schemas', { skip: crdSchemasMissing() }, () => {
    assert.equal(double.checkedAgainst, 'crd');
    assert.ok(double.requestsFor(INFERENCE_SERVICES).length > 0, 'the scenarios ran against the double');
    double.assertConforming();
  });
});
