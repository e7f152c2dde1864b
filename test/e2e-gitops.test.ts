/**
 * The GitOps deployment mode end to end on the real Temporal and MLflow servers: the plain-git provider on a
 * real bare repository, and rollout verification through the real @kubernetes/client-node against the
 * Kubernetes API double (objects checked against the published KServe/ArgoCD CRDs; without them, against
 * their structure, and the final conformance test skips). A small "ArgoCD" loop in the test applies what
 * lands on the repo's main branch to the InferenceService, as a cluster would.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { getState } from '../src/client.js';
import { approve, reject, startLifecycle, startRun } from './support/identity.js';
import { lifecycleWorkflowId, pullRequestSignal, type LifecycleState } from '../src/workflows/definitions.js';
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
import { captureHistory } from './support/histories.js';
import { K8sDouble } from './support/k8s-double.js';
import { applyStorageUri, createServingInferenceService, markFailedToLoad, markReady } from './support/k8s-fixtures.js';
import { collectAudit } from '../src/audit/collect.js';
import { gitopsServingReader } from '../src/audit/gitops-serving.js';
import { temporalLifecycleReader } from '../src/audit/temporal.js';

const NAMESPACE = 'models';

describe('modelLifecycle in GitOps mode', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let double: K8sDouble;
  let worker: RunningWorker;
  let dir: string;
  const repos = new Map<string, { repo: string; manifestPath: string }>();

  /** Every test model gets its own bare repo and InferenceService, created before the worker asks for them. */
  async function gitopsModel(prefix: string, opts: { kserve?: boolean } = {}): Promise<string> {
    const model = unique(prefix);
    const repo = await initLocalGitopsRepo(join(dir, `${model}.git`), { model, namespace: NAMESPACE, name: model });
    repos.set(model, { repo: repo.repo, manifestPath: repo.manifestPath });
    if (opts.kserve) {
      createServingInferenceService(double, { namespace: NAMESPACE, name: model, storageUri: servedUri(model), mode: 'Serverless' });
    }
    return model;
  }

  function servedUri(model: string): string {
    const r = repos.get(model)!;
    const text = execFileSync('git', ['--git-dir', r.repo, 'show', `main:${r.manifestPath}`], { encoding: 'utf8' });
    return /storageUri:\s*"?([^"\s]+)"?/.exec(text)![1];
  }

  function policyFor(model: string) {
    const r = repos.get(model)!;
    const quorum = model.startsWith('gitops-reround') ? 2 : 1;
    const kserve = model.startsWith('kserve') ? `\n    kserve: { deploymentMode: Serverless, rolloutDeadline: 90s, rollback: auto }` : '';
    const text = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [data.lookback_days], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: ${quorum}, expiresAfter: 1h }
  deployment:
    mode: gitops
    gitops:
      provider: git
      repo: ${JSON.stringify(r.repo)}
      baseBranch: main
      manifestPath: ${r.manifestPath}
      namespace: ${NAMESPACE}
      inferenceService: ${model}
      storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow-artifacts/" }]${kserve}
`;
    return { ...parsePolicy(text, `${model}.yaml`).policyFor(model), model };
  }

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    dir = mkdtempSync(join(testStack().dataDir, 'gitops-e2e-'));
    double = await K8sDouble.start();
    const kubeconfig = double.writeKubeconfig(dir);
    worker = await startTestWorker(env, {
      mlflow,
      policies: { policyFor },
      gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: 'e2e-gitops-marker-secret' },
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
  const phaseIs = (model: string, version: number, ...phases: LifecycleState['phase'][]) =>
    eventually(`${model} v${version} ${phases.join('/')}`, async () => {
      const s = await getState(client, model, version);
      return phases.includes(s.phase) ? s : undefined;
    }, 120_000);

  it('when a version reaches Staging, then a PR branch changes only the serving lines; approval merges it and the version becomes Production', async () => {
    const model = await gitopsModel('gitops-happy');
    const before = servedUri(model);
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    const pr = staged.pullRequest!;
    assert.equal(pr.branch, `modelgate/${model}/v${v.version}`);
    assert.match(pr.storageUri ?? '', /^s3:\/\/mlflow-artifacts\//);
    const r = repos.get(model)!;
    const diff = execFileSync('git', ['--git-dir', r.repo, 'diff', 'main', pr.branch, '--', r.manifestPath], { encoding: 'utf8' });
    const changed = diff.split('\n').filter((l) => /^[+-][^+-]/.test(l));
    assert.ok(changed.some((l) => l.startsWith('+') && l.includes(pr.storageUri!)), diff);
    assert.ok(changed.every((l) => /storageUri|modelgate\.io\/|^\+\s*labels:$/.test(l)), `only serving lines change:\n${diff}`);
    assert.equal(servedUri(model), before, 'nothing merged before approval');

    await approve(client, model, v.version, { by: 'alice' });
    const prod = await phaseIs(model, v.version, 'production');
    assert.equal(servedUri(model), pr.storageUri);
    assert.ok(prod.pullRequest?.mergeSha);
    const log = execFileSync('git', ['--git-dir', r.repo, 'log', '-1', '--format=%B', 'main'], { encoding: 'utf8' });
    assert.match(log, /Approved-by: alice/);
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Production');
    assert.equal(mv.tags['modelgate.merge_sha'], prod.pullRequest?.mergeSha);
    assert.equal(mv.tags['modelgate.storage_uri'], pr.storageUri);

    // The audit reads the manifest on main through the same provider: it agrees with MLflow.
    const providers = createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'audit-work') }));
    const serving = gitopsServingReader({ policyFor, providerFor: (g) => providers.providerFor(g) });
    const report = await collectAudit({ mlflow, lifecycles: temporalLifecycleReader(client), serving }, model, {});
    assert.equal(report.version, v.version);
    assert.equal(report.serving.manifest?.storageUri, pr.storageUri);
    assert.equal(report.serving.manifest?.revision, prod.pullRequest?.mergeSha);
    assert.equal(report.serving.manifest?.agrees, true);
    assert.equal(report.serving.manifest?.source, `git:${repos.get(model)!.repo}@main:${r.manifestPath}`);
    assert.match(report.serving.manifest?.detail ?? '', new RegExp(`labelled ${model} v${v.version}`));
  });

  it('when the version is rejected, then its PR is closed and nothing is merged', async () => {
    const model = await gitopsModel('gitops-reject');
    const before = servedUri(model);
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await reject(client, model, v.version, { by: 'bob', reason: 'drifted features' });
    const end = await phaseIs(model, v.version, 'done');
    assert.equal(end.outcome, 'rejected');
    assert.equal(servedUri(model), before);
    const r = repos.get(model)!;
    const branches = execFileSync('git', ['--git-dir', r.repo, 'for-each-ref', '--format=%(refname)'], { encoding: 'utf8' });
    // The plain-git provider marks a closed "PR" with refs/modelgate/closed/<branch> (docs/gitops.md).
    assert.match(branches, new RegExp(`refs/modelgate/closed/modelgate/${model}/v${v.version}\n`), 'the PR is closed');
  });

  it('when KServe serves the merged version, then it becomes Production with the ready revision recorded', async () => {
    const model = await gitopsModel('kserve-ok', { kserve: true });
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'alice' });
    // "ArgoCD": once main serves the new URI, apply it to the cluster; then KServe becomes ready.
    await eventually('merge on main', () => (servedUri(model) === staged.pullRequest!.storageUri ? true : undefined), 60_000);
    applyStorageUri(double, NAMESPACE, model, staged.pullRequest!.storageUri!);
    markReady(double, NAMESPACE, model);
    const prod = await phaseIs(model, v.version, 'production');
    assert.equal(prod.stage, 'Production');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.tags['modelgate.deploy'], 'serving');
    assert.ok(mv.tags['modelgate.ready_revision'], 'ready revision tagged');
  });

  it('when the new revision fails to load, then one revert is merged, the previous URI serves again and the version ends rolled back', async () => {
    const model = await gitopsModel('kserve-fail', { kserve: true });
    const previous = servedUri(model);
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'bob' });
    await eventually('merge on main', () => (servedUri(model) === staged.pullRequest!.storageUri ? true : undefined), 60_000);
    applyStorageUri(double, NAMESPACE, model, staged.pullRequest!.storageUri!);
    markFailedToLoad(double, NAMESPACE, model);
    // The revert lands on main; "ArgoCD" applies it and the previous revision serves again.
    await eventually('revert on main', () => (servedUri(model) === previous ? true : undefined), 60_000);
    applyStorageUri(double, NAMESPACE, model, previous);
    markReady(double, NAMESPACE, model);
    const end = await phaseIs(model, v.version, 'done');
    assert.equal(end.outcome, 'rolled_back');
    const r = repos.get(model)!;
    const reverts = execFileSync('git', ['--git-dir', r.repo, 'log', '--format=%s', 'main'], { encoding: 'utf8' })
      .split('\n')
      .filter((s) => /revert/i.test(s));
    assert.ok(reverts.length >= 1 && reverts.length <= 2, `one revert (and its merge): ${reverts.join(' | ')}`);
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.tags['modelgate.deploy'], 'failed');
    assert.notEqual(mv.current_stage, 'Production');
    assert.equal(await mlflow.getVersionByAlias(model, 'production'), null);
    const events = await client.workflow.getHandle(lifecycleWorkflowId(model, v.version)).fetchHistory();
    assert.ok((events.events?.length ?? 0) > 0);
  });

  it('when v2 replaced v1 and v1 is rolled back to, then a PR of its own points the InferenceService back at v1 and v1 serves', async () => {
    const model = await gitopsModel('gitops-rollback');
    const v1 = await registerTrainedVersion(mlflow, model);
    await start(model, v1.version);
    const s1 = await phaseIs(model, v1.version, 'awaiting_approval');
    await approve(client, model, v1.version, { by: 'alice' });
    await phaseIs(model, v1.version, 'production');
    const v2 = await registerTrainedVersion(mlflow, model);
    await start(model, v2.version);
    await phaseIs(model, v2.version, 'awaiting_approval');
    await approve(client, model, v2.version, { by: 'alice' });
    await phaseIs(model, v2.version, 'production');
    await phaseIs(model, v1.version, 'done');

    await startRun(client, model, v1.version, { kind: 'rollback', reason: 'v2 drifts on EU traffic' }, 'bob', worker.taskQueue);
    const back = await eventually('rollback PR open', async () => {
      const s = await getState(client, model, v1.version);
      return s.phase === 'awaiting_approval' && s.request?.kind === 'rollback' ? s : undefined;
    }, 120_000);
    // Not the first run's (merged) branch: the rollback run's own.
    assert.match(back.pullRequest?.branch ?? '', new RegExp(`^modelgate/${model}/v${v1.version}-rollback-[0-9a-z]+$`));
    assert.equal(back.pullRequest?.storageUri, s1.pullRequest?.storageUri);
    await approve(client, model, v1.version, { by: 'alice' });
    const prod = await phaseIs(model, v1.version, 'production');
    assert.equal(servedUri(model), s1.pullRequest?.storageUri);
    assert.equal(prod.previousProductionVersion, v2.version);
    assert.equal((await phaseIs(model, v2.version, 'done')).outcome, 'superseded');
    assert.equal((await mlflow.getVersionByAlias(model, 'production'))?.version, v1.version);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v1.version)), 'gitops-rollback-own-pr');
  });

  /** A person merges (or pushes to) the promotion branch by hand, with plain git, outside modelgate. */
  function byHand(model: string, branch: string, what: 'merge' | 'push'): void {
    const r = repos.get(model)!;
    const wt = mkdtempSync(join(dir, 'hand-'));
    const git = (...args: string[]) => execFileSync('git', ['-C', wt, '-c', 'user.name=Mallory', '-c', 'user.email=m@example.com', ...args], { encoding: 'utf8' });
    execFileSync('git', ['clone', '-q', r.repo, wt]);
    if (what === 'merge') {
      git('merge', '-q', '--no-ff', '-m', `Merge ${branch}\n\nMerged-by: alice`, `origin/${branch}`);
      git('push', '-q', 'origin', 'HEAD:main');
    } else {
      git('checkout', '-q', '-b', 'side', `origin/${branch}`);
      writeFileSync(join(wt, 'NOTES.md'), 'a change after approval\n');
      git('add', 'NOTES.md');
      git('commit', '-q', '-m', 'tweak');
      git('push', '-q', 'origin', `HEAD:${branch}`);
    }
  }
  const hint = (model: string, version: number) =>
    client.workflow.getHandle(lifecycleWorkflowId(model, version)).signal(pullRequestSignal, { action: 'merged', hint: true, by: 'alice' });

  it('when someone merges the promotion PR by hand (plain git, "Merged-by: alice" trailer), then it is reverted and the version never becomes Production', async () => {
    const model = await gitopsModel('gitops-handmerge');
    const before = servedUri(model);
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    byHand(model, staged.pullRequest!.branch, 'merge');
    assert.equal(servedUri(model), staged.pullRequest!.storageUri, 'the hand merge reached main');
    await hint(model, v.version);
    const end = await phaseIs(model, v.version, 'done');
    assert.equal(end.outcome, 'rejected');
    assert.match(end.outcomeReason ?? '', /unapproved merge reverted/);
    assert.ok(end.pullRequest?.unapprovedMerge?.revertUrl, 'the revert is recorded');
    assert.ok(end.timeline.some((t) => t.action === 'reverted the unapproved merge'));
    assert.equal(servedUri(model), before, 'main serves the previous version again');
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Staging');
    assert.match(mv.tags['modelgate.flag'] ?? '', /not accepted/);
    assert.equal(await mlflow.getVersionByAlias(model, 'production'), null);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v.version)), 'gitops-unapproved-merge-reverted');
  });

  it('when the PR head moves after an approval, then the round is dropped and the same approver approves the new round', async () => {
    const model = await gitopsModel('gitops-reround');
    const v = await registerTrainedVersion(mlflow, model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    // Quorum 2 via a second approval later: alice approves round 1, then the branch moves.
    const first = await approve(client, model, v.version, { by: 'alice', via: 'test' });
    assert.equal(first.approvals.length, 1);
    byHand(model, staged.pullRequest!.branch, 'push');
    await hint(model, v.version);
    const dropped = await eventually('round 2', async () => {
      const s = await getState(client, model, v.version);
      return (s.approvalRound ?? 1) === 2 ? s : undefined;
    }, 60_000);
    assert.equal(dropped.approvals.length, 0);
    await approve(client, model, v.version, { by: 'alice' });
    await approve(client, model, v.version, { by: 'bob' });
    const prod = await phaseIs(model, v.version, 'production');
    assert.deepEqual(prod.approvals.map((a) => [a.by, a.round]), [['alice', 2], ['bob', 2]]);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v.version)), 'gitops-round-dropped-reapproved');
  });

  it('when every scenario above has run, then every object the double stored or served conformed to the published CRD schemas', { skip: crdSchemasMissing() }, () => {
    assert.equal(double.checkedAgainst, 'crd');
    assert.ok(double.requestsFor(INFERENCE_SERVICES).length > 0, 'the scenarios ran against the double');
    double.assertConforming();
  });
});
