/**
 * Retiring a Production version in GitOps mode (issue #11), end to end on the real Temporal and MLflow servers,
 * the plain-git provider on a real bare repository and rollout verification against the Kubernetes API double.
 * As in e2e-gitops.test.ts, the test plays ArgoCD and the KServe controller: it applies what lands on main to
 * the InferenceService and then marks it ready (or failed, or prunes it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import { approve, retire, startLifecycle } from './support/identity.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { INFERENCE_SERVICES } from '../src/k8s/types.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { createK8sClient, loadK8sConfig } from '../src/config/k8s.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { crdSchemasMissing } from './support/k8s-crds.js';
import { K8sDouble } from './support/k8s-double.js';
import { captureHistory } from './support/histories.js';
import { applyStorageUri, createServingInferenceService, markFailedToLoad, markReady } from './support/k8s-fixtures.js';

const NAMESPACE = 'models';
const MARKER_SECRET = 'retire-gitops-marker-secret';

describe('retire in GitOps mode', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let double: K8sDouble;
  let worker: RunningWorker;
  let dir: string;
  const repos = new Map<string, { repo: string; manifestPath: string; onRetire?: 'previous' | 'remove'; kserve: boolean }>();

  async function gitopsModel(prefix: string, opts: { kserve?: boolean; onRetire?: 'previous' | 'remove' } = {}): Promise<string> {
    const model = unique(prefix);
    const repo = await initLocalGitopsRepo(join(dir, `${model}.git`), { model, namespace: NAMESPACE, name: model });
    repos.set(model, { repo: repo.repo, manifestPath: repo.manifestPath, onRetire: opts.onRetire, kserve: !!opts.kserve });
    if (opts.kserve) createServingInferenceService(double, { namespace: NAMESPACE, name: model, storageUri: servedUri(model)!, mode: 'Serverless' });
    return model;
  }

  const git = (model: string, ...args: string[]) => execFileSync('git', ['--git-dir', repos.get(model)!.repo, ...args], { encoding: 'utf8' });
  /** The manifest on main, or undefined when main has no such file. */
  function manifestOnMain(model: string): string | undefined {
    const r = repos.get(model)!;
    try {
      return execFileSync('git', ['--git-dir', r.repo, 'show', `main:${r.manifestPath}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
  }
  function servedUri(model: string): string | undefined {
    const text = manifestOnMain(model);
    return text ? /storageUri:\s*"?([^"\s]+)"?/.exec(text)?.[1] : undefined;
  }

  function policyFor(model: string) {
    const r = repos.get(model)!;
    const kserve = r.kserve ? `\n    kserve: { deploymentMode: Serverless, rolloutDeadline: 90s, rollback: auto }` : '';
    const onRetire = r.onRetire ? `\n      onRetire: ${r.onRetire}` : '';
    const text = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [data.lookback_days], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment:
    mode: gitops
    gitops:
      provider: git
      repo: ${JSON.stringify(r.repo)}
      baseBranch: main
      manifestPath: ${r.manifestPath}
      namespace: ${NAMESPACE}
      inferenceService: ${model}
      storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow-artifacts/" }]${onRetire}${kserve}
`;
    return { ...parsePolicy(text, `${model}.yaml`).policyFor(model), model };
  }

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    dir = mkdtempSync(join(testStack().dataDir, 'gitops-retire-'));
    double = await K8sDouble.start();
    const kubeconfig = double.writeKubeconfig(dir);
    worker = await startTestWorker(env, {
      mlflow,
      policies: { policyFor },
      gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: MARKER_SECRET },
      k8s: { k8s: createK8sClient(loadK8sConfig({ MODELGATE_KUBECONFIG: kubeconfig })), heartbeatIntervalMs: 1000 },
    });
  });

  after(async () => {
    await worker?.stop();
    await double?.close();
    await mlflow?.close();
    await env?.teardown();
  });

  const start = (model: string, version: number) => startLifecycle(client, model, version, { source: 'test' }, worker.taskQueue);
  const stateWhere = (what: string, model: string, version: number, ok: (s: LifecycleState) => boolean) =>
    eventually(`${model} v${version} ${what}`, async () => {
      const s = await getState(client, model, version);
      return ok(s) ? s : undefined;
    }, 120_000);
  const phaseIs = (model: string, version: number, ...phases: LifecycleState['phase'][]) =>
    stateWhere(phases.join('/'), model, version, (s) => phases.includes(s.phase));
  const onMain = (model: string, what: string, ok: () => boolean) => eventually(`${what} on main`, () => Promise.resolve(ok() ? true : undefined), 60_000);

  /** Register, approve and (with kserve) roll out one version: it ends in Production. */
  async function promote(model: string): Promise<{ version: number; storageUri: string }> {
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    const uri = staged.pullRequest!.storageUri!;
    await approve(client, model, v.version, { by: 'alice' });
    if (repos.get(model)!.kserve) {
      await onMain(model, `v${v.version}`, () => servedUri(model) === uri);
      applyStorageUri(double, NAMESPACE, model, uri);
      markReady(double, NAMESPACE, model);
    }
    await phaseIs(model, v.version, 'production');
    return { version: v.version, storageUri: uri };
  }

  it('when v2 is retired with onRetire previous, then a merged PR points the manifest back at v1, KServe serves v1, and only then v2 is archived while v1 is Production again', async () => {
    const model = await gitopsModel('retire-prev', { kserve: true });
    const v1 = await promote(model);
    const v2 = await promote(model);
    await phaseIs(model, v1.version, 'done');

    await retire(client, model, v2.version, { by: 'bob', reason: 'drift in the payments segment' });
    await onMain(model, 'v1 again', () => servedUri(model) === v1.storageUri);
    // Merged, not yet served: the version stays Production until KServe confirms.
    const waiting = await getState(client, model, v2.version);
    assert.equal(waiting.stage, 'Production');
    assert.equal((await mlflow.getModelVersion(model, v2.version)).current_stage, 'Production');

    const branch = `modelgate/${model}/v${v2.version}-retire-1`;
    const prText = git(model, 'log', '-1', '--format=%B', branch);
    assert.match(prText, new RegExp(`Retire ${model} v${v2.version}: back to v${v1.version}`));
    assert.match(prText, /Retired by \| bob/);
    assert.match(prText, /drift in the payments segment/);
    assert.ok(!prText.includes(MARKER_SECRET), 'no secret in the PR text');
    const merge = git(model, 'log', '-1', '--format=%B', 'main');
    assert.match(merge, new RegExp(`Modelgate-Branch: ${branch}`));
    assert.match(merge, /Approved-by: bob/);
    const manifest = manifestOnMain(model)!;
    assert.match(manifest, new RegExp(`modelgate.io/version: "?${v1.version}"?`));

    applyStorageUri(double, NAMESPACE, model, v1.storageUri);
    markReady(double, NAMESPACE, model);
    const end = await phaseIs(model, v2.version, 'done');
    assert.equal(end.outcome, 'retired');
    assert.equal(end.stage, 'Archived');
    assert.equal(end.retirement?.toVersion, v1.version);
    assert.equal(end.retirement?.pullRequest?.storageUri, v1.storageUri);
    const actions = end.timeline.map((t) => t.action);
    for (const a of ['retire requested', 'opened retire pull request', 'merged retire pull request', `v${v1.version} serving again`, `version ${v1.version} is Production again`]) {
      assert.ok(actions.includes(a), `timeline has "${a}": ${actions.join(' | ')}`);
    }
    assert.ok(actions.indexOf(`v${v1.version} serving again`) < actions.indexOf('Production → Archived'), 'archived only after KServe served v1');

    const mv2 = await mlflow.getModelVersion(model, v2.version);
    assert.equal(mv2.current_stage, 'Archived');
    assert.equal(mv2.tags['modelgate.retire_merge_sha'], end.retirement?.pullRequest?.mergeSha);
    const mv1 = await mlflow.getModelVersion(model, v1.version);
    assert.equal(mv1.current_stage, 'Production');
    assert.equal((await mlflow.getVersionByAlias(model, 'production'))?.version, v1.version);
    assert.match(mv1.tags['modelgate.reinstated_by'] ?? '', new RegExp(`retire of v${v2.version} by bob`));
    assert.equal(servedUri(model), v1.storageUri);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v2.version)), 'gitops-retired-back-to-previous');
  });

  it('when a version is retired with onRetire remove, then the merged PR deletes the manifest and it is archived once the InferenceService is gone', async () => {
    const model = await gitopsModel('retire-remove', { kserve: true, onRetire: 'remove' });
    const v1 = await promote(model);
    await retire(client, model, v1.version, { by: 'bob', reason: 'product sunset' });
    await onMain(model, 'manifest removed', () => manifestOnMain(model) === undefined);
    assert.equal((await getState(client, model, v1.version)).stage, 'Production', 'still Production while the InferenceService exists');
    double.remove(INFERENCE_SERVICES, NAMESPACE, model); // ArgoCD prunes it
    const end = await phaseIs(model, v1.version, 'done');
    assert.equal(end.outcome, 'retired');
    assert.equal(end.retirement?.onRetire, 'remove');
    assert.equal(end.retirement?.pullRequest?.storageUri, undefined);
    assert.ok(end.timeline.some((t) => t.action === 'InferenceService removed'));
    assert.equal((await mlflow.getModelVersion(model, v1.version)).current_stage, 'Archived');
    assert.equal(await mlflow.getVersionByAlias(model, 'production'), null);
    assert.match(git(model, 'log', '-1', '--format=%B', `modelgate/${model}/v${v1.version}-retire-1`), /remove its InferenceService[\s\S]*product sunset/);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v1.version)), 'gitops-retired-removed');
  });

  it('when the only Production version is retired with onRetire previous, then the retire fails saying why and the version stays Production and serving', async () => {
    const model = await gitopsModel('retire-first');
    const v1 = await promote(model);
    const before = manifestOnMain(model);
    await retire(client, model, v1.version, { by: 'alice', reason: 'try' });
    const s = await stateWhere('retire failed', model, v1.version, (x) => !!x.retirement?.failure && x.phase === 'production');
    assert.match(s.retirement!.failure!, /no previous Production version .*onRetire: remove/);
    assert.ok(s.timeline.some((t) => t.action === 'retire failed' && /stays in Production/.test(t.detail ?? '')));
    assert.equal(s.stage, 'Production');
    assert.equal((await mlflow.getModelVersion(model, v1.version)).current_stage, 'Production');
    assert.equal(manifestOnMain(model), before, 'nothing changed on main');
    // It may be asked again (and fails again the same way: the policy decides, not the retry). By someone else:
    // the client's retire update id is `retire:<identity>`, so the same person's second ask is deduplicated.
    await retire(client, model, v1.version, { by: 'bob', reason: 'again' });
    const again = await stateWhere('retire failed twice', model, v1.version, (x) => x.retirement?.attempt === 2 && x.phase === 'production');
    assert.equal(again.stage, 'Production');
  });

  it('when the previous version fails to load after the retire merged, then the retire is reverted, the version serves and stays Production, and a second retire succeeds', async () => {
    const model = await gitopsModel('retire-fail', { kserve: true });
    const v1 = await promote(model);
    const v2 = await promote(model);
    await phaseIs(model, v1.version, 'done');

    await retire(client, model, v2.version, { by: 'bob', reason: 'first try' });
    await onMain(model, 'v1 again', () => servedUri(model) === v1.storageUri);
    applyStorageUri(double, NAMESPACE, model, v1.storageUri);
    markFailedToLoad(double, NAMESPACE, model);
    await onMain(model, 'revert of the retire', () => servedUri(model) === v2.storageUri);
    applyStorageUri(double, NAMESPACE, model, v2.storageUri);
    markReady(double, NAMESPACE, model);
    const failed = await stateWhere('retire failed', model, v2.version, (x) => !!x.retirement?.failure && x.phase === 'production');
    assert.match(failed.retirement!.failure!, /retire rollout failed: .*failed to load/);
    assert.ok(failed.retirement!.revertUrl);
    const actions = failed.timeline.map((t) => t.action);
    for (const a of ['retire rollout failed', 'opened revert of the retire', 'merged revert of the retire', `v${v2.version} serving again`, 'retire failed']) {
      assert.ok(actions.includes(a), `timeline has "${a}": ${actions.join(' | ')}`);
    }
    assert.equal((await mlflow.getModelVersion(model, v2.version)).current_stage, 'Production');
    assert.equal((await mlflow.getVersionByAlias(model, 'production'))?.version, v2.version);

    await retire(client, model, v2.version, { by: 'alice', reason: 'second try' });
    await onMain(model, 'v1 again (attempt 2)', () => servedUri(model) === v1.storageUri);
    applyStorageUri(double, NAMESPACE, model, v1.storageUri);
    markReady(double, NAMESPACE, model);
    const end = await phaseIs(model, v2.version, 'done');
    assert.equal(end.outcome, 'retired');
    assert.equal(end.retirement?.attempt, 2);
    assert.equal((await mlflow.getModelVersion(model, v1.version)).current_stage, 'Production');
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v2.version)), 'gitops-retire-failed-reverted-retried');
  });

  it('when every scenario above has run, then every object the double stored or served conformed to the published CRD schemas', { skip: crdSchemasMissing() }, () => {
    assert.equal(double.checkedAgainst, 'crd');
    double.assertConforming();
  });
});
