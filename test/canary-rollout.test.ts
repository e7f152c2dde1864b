/**
 * Progressive rollout end to end (issue #14) on the real Temporal and MLflow servers: the plain-git provider on
 * a real bare repository, the real @kubernetes/client-node against the Kubernetes API double (objects checked
 * against the published KServe CRD). The "ArgoCD + KServe" loop of test/support/canary-cluster.ts applies what
 * lands on main to the InferenceService and reports the canary split KServe would (revisions, traffic). The
 * analysis is the worker's real `measureCanary` against a real Prometheus (test/support/prometheus.ts)
 * scraping the model-server stand-in (test/support/model-server.ts) whose per-version error rate the test
 * sets; "unreachable" is that Prometheus stopped. Skipped, with the reason printed, without the binary.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client } from '@temporalio/client';
import { decideCanary, getState, ModelgateError } from '../src/client.js';
import { approve, startLifecycle, testSign } from './support/identity.js';
import { lifecycleWorkflowId, type LifecycleState } from '../src/workflows/definitions.js';
import { INFERENCE_SERVICES, type InferenceService } from '../src/k8s/types.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { readCanaryPercent } from '../src/gitops/canary-manifest.js';
import { readServingFields } from '../src/gitops/manifest.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { createK8sClient, loadK8sConfig } from '../src/config/k8s.js';
import { PrometheusClient } from '../src/prometheus/client.js';
import { collectAudit } from '../src/audit/collect.js';
import { temporalLifecycleReader } from '../src/audit/temporal.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { crdSchemasMissing } from './support/k8s-crds.js';
import { captureHistory } from './support/histories.js';
import { K8sDouble } from './support/k8s-double.js';
import { createServingInferenceService, revisionName } from './support/k8s-fixtures.js';
import { manifestAt as manifestOn, startReconciler, type Cluster } from './support/canary-cluster.js';
import { startModelServer, type ModelServer } from './support/model-server.js';
import { prometheusMissing, startPrometheus, type PrometheusServer } from './support/prometheus.js';

const run = promisify(execFile);
const tagOf = (mv: { tags?: Array<{ key: string; value: string }> | Record<string, string> }, key: string): string | undefined =>
  Array.isArray(mv.tags) ? mv.tags.find((t) => t.key === key)?.value : mv.tags?.[key];
const NAMESPACE = 'models';
const HEALTHY_ERROR_RATE = 0.01;
const HIGH_ERROR_RATE = 0.4;
const missing = prometheusMissing();
if (missing) process.stdout.write(`# canary-rollout: skipped: ${missing}\n`);

describe('progressive rollout (canary) in GitOps mode', { skip: missing }, () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  let double: K8sDouble;
  let worker: RunningWorker;
  let dir: string;
  let kubeconfig: string;
  let modelServer: ModelServer;
  let prom: PrometheusServer;
  const repos = new Map<string, { repo: string; manifestPath: string }>();
  const clusters = new Map<string, Cluster>();
  let loop: { stop(): Promise<void> } | undefined;

  const manifestAt = (model: string, ref = 'main') => manifestOn(repos.get(model)!, ref);

  /** The model server serves `version` of `model` at `errorRate`, and Prometheus has scraped it twice (rate() has two points). */
  async function serve(model: string, version: number, errorRate: number): Promise<void> {
    modelServer.setVersion({ model, version }, { errorRate });
    await prom.waitForScrape(modelServer.target);
    await prom.waitForScrape(modelServer.target);
  }

  /** A trained version that the model server already serves healthily. */
  async function registerServing(model: string) {
    const v = await registerTrainedVersion(mlflow, model);
    await serve(model, v.version, HEALTHY_ERROR_RATE);
    return v;
  }

  async function mainLog(model: string): Promise<string> {
    return (await run('git', ['--git-dir', repos.get(model)!.repo, 'log', 'main', '--format=%B%x00'], { encoding: 'utf8' })).stdout;
  }

  /** Merges of each canary step branch on main (a step applied twice would show twice). */
  async function stepMerges(model: string): Promise<string[]> {
    return [...(await mainLog(model)).matchAll(/^Modelgate-Branch: (\S+-canary-\S+)$/gm)].map((m) => m[1]);
  }

  /** The steps of main's own commits (first parent: a merged branch's commit is not one), each as often as made. */
  async function stepCommits(model: string): Promise<string[]> {
    const log = (await run('git', ['--git-dir', repos.get(model)!.repo, 'log', 'main', '--first-parent', '--format=%B%x00'], { encoding: 'utf8' })).stdout;
    return [...log.matchAll(/^Modelgate-Canary-Step: (\S+)$/gm)].map((m) => m[1]);
  }

  /** Models whose policy says `canary.commit: pull-request`. */
  const viaPullRequest = new Set<string>();

  async function gitopsModel(prefix: string, mode: 'Serverless' | 'RawDeployment' = 'Serverless'): Promise<{ model: string; cluster: Cluster }> {
    const model = unique(prefix);
    const repo = await initLocalGitopsRepo(join(dir, `${model}.git`), { model, namespace: NAMESPACE, name: model });
    repos.set(model, { repo: repo.repo, manifestPath: repo.manifestPath });
    const uri = readServingFields(await manifestAt(model), { namespace: NAMESPACE, name: model }).storageUri!;
    createServingInferenceService(double, { namespace: NAMESPACE, name: model, storageUri: uri, mode });
    const cluster: Cluster = { namespace: NAMESPACE, name: model, repo: repo.repo, manifestPath: repo.manifestPath, applied: [] };
    clusters.set(model, cluster);
    return { model, cluster };
  }

  function policyFor(model: string) {
    const r = repos.get(model)!;
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
      storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow-artifacts/" }]
    kserve: { deploymentMode: Serverless, rolloutDeadline: 60s, rollback: auto }
    canary:
      steps: [10, 50, 100]
      metrics:
        - name: error-rate
          query: 'sum(rate(model_errors_total{model="${model}",version="{{version}}"}[5s])) / sum(rate(model_requests_total{model="${model}",version="{{version}}"}[5s]))'
          successCondition: result < 0.05
          interval: 1s
          count: 2
          consecutiveErrorLimit: 1
${viaPullRequest.has(model) ? '      commit: pull-request\n' : ''}`;
    return { ...parsePolicy(text, `${model}.yaml`).policyFor(model), model };
  }

  async function startWorker(): Promise<RunningWorker> {
    return startTestWorker(env, {
      mlflow,
      policies: { policyFor },
      gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: 'canary-e2e-marker-secret' },
      k8s: { k8s: createK8sClient(loadK8sConfig({ MODELGATE_KUBECONFIG: kubeconfig })), heartbeatIntervalMs: 500 },
      canary: { prometheus: new PrometheusClient({ url: prom.url, timeoutMs: 5000 }) },
      stickyQueueTimeoutMs: 1000,
      ...(worker ? { taskQueue: worker.taskQueue } : {}),
    });
  }

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    mlflow = testMlflow(testStack().mlflowUri);
    dir = mkdtempSync(join(testStack().dataDir, 'canary-e2e-'));
    double = await K8sDouble.start();
    kubeconfig = double.writeKubeconfig(dir);
    modelServer = await startModelServer({ requestsPerSecond: 200 });
    prom = await startPrometheus({ targets: [modelServer.target] });
    worker = await startWorker();
    loop = startReconciler(double, () => clusters.values());
  });

  after(async () => {
    await loop?.stop();
    await worker?.stop();
    await prom?.stop();
    await modelServer?.stop();
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
  const canaryIs = (model: string, version: number, status: string) =>
    eventually(`${model} v${version} canary ${status}`, async () => {
      const s = await getState(client, model, version);
      return s.canary?.status === status ? s : undefined;
    }, 120_000);

  /** A version through its whole healthy canary to Production. */
  async function promoteHealthy(model: string): Promise<{ version: number; state: LifecycleState }> {
    const v = await registerServing(model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'alice' });
    return { version: v.version, state: await phaseIs(model, v.version, 'production', 'done') };
  }

  it('when the analysis stays healthy, then 10 → 50 → 100 are applied once each and the version becomes Production', async () => {
    const { model, cluster } = await gitopsModel('canary-ok');
    const v = await registerServing(model);
    await start(model, v.version);
    const staged = await phaseIs(model, v.version, 'awaiting_approval');
    // The promotion PR carries the first step with the storageUri: KServe splits on that one spec change.
    assert.equal(readCanaryPercent(await manifestAt(model, staged.pullRequest!.branch), { namespace: NAMESPACE, name: model }), 10);
    await approve(client, model, v.version, { by: 'alice' });
    const s = await phaseIs(model, v.version, 'production', 'done');
    assert.equal(s.phase, 'production', s.outcomeReason);
    const uri = s.pullRequest!.storageUri!;
    assert.deepEqual(cluster.applied, [`10@${uri}`, `50@${uri}`, `100@${uri}`]);
    assert.equal(s.canary?.status, 'succeeded');
    assert.deepEqual(s.canary.steps.map((x) => [x.percent, x.verdict, x.measurements.length]), [[10, 'successful', 2], [50, 'successful', 2], [100, 'successful', 2]]);
    assert.equal(s.canary.previousRevision, revisionName(model, 1));
    // Each later step is one commit of modelgate's own straight on main (canary.commit defaults to direct).
    assert.deepEqual((await stepCommits(model)).sort(), ['1', '2']);
    assert.deepEqual(await stepMerges(model), []);
    // At 100 the field is gone, as KServe prescribes; the new revision has all the traffic.
    assert.equal(readCanaryPercent(await manifestAt(model), { namespace: NAMESPACE, name: model }), undefined);
    const isvc = double.read(INFERENCE_SERVICES, NAMESPACE, model) as InferenceService;
    assert.deepEqual(isvc.status!.components!.predictor.traffic!.map((t) => [t.revisionName, t.percent]), [[revisionName(model, 2), 100]]);
    for (const action of ['canary step 1/3 (10%) analysis successful', 'canary step 2/3 (50%) committed', 'canary step 3/3 (100%) serving']) {
      assert.ok(s.timeline.some((t) => t.action === action), `timeline has "${action}"`);
    }
    const mv = await mlflow.getModelVersion(model, v.version);
    assert.equal(tagOf(mv, 'modelgate.ready_revision'), revisionName(model, 2));
    // The audit shows the analysis per step.
    const report = await collectAudit({ mlflow, lifecycles: temporalLifecycleReader(client) }, model, { version: v.version });
    assert.deepEqual(report.canary?.steps.map((x) => [x.percent, x.verdict, x.metrics[0].values.length]), [[10, 'successful', 2], [50, 'successful', 2], [100, 'successful', 2]]);
    // Prometheus's rate() over the stand-in's counters: about the error rate it was set to, below the condition's 0.05.
    for (const x of report.canary.steps) for (const value of x.metrics[0].values) assert.ok(typeof value === 'number' && value > 0 && value < 0.05, `healthy value ${String(value)}`);
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v.version)), 'canary-healthy-production');
  });

  it('when the error rate rises at 50%, then it is rolled back to 0%, the previous revision serves everything and the failing query and values are recorded', async () => {
    const { model, cluster } = await gitopsModel('canary-fail');
    const first = await promoteHealthy(model);
    assert.equal(first.state.phase, 'production');
    cluster.applied.length = 0;
    const v2 = await registerServing(model);
    cluster.onApply = async (percent) => {
      // KServe reports the 50% split only once Prometheus has scraped the raised error rate: the first sample sees it.
      if (percent === 50) await serve(model, v2.version, HIGH_ERROR_RATE);
    };
    await start(model, v2.version);
    await phaseIs(model, v2.version, 'awaiting_approval');
    await approve(client, model, v2.version, { by: 'alice' });
    const s = await phaseIs(model, v2.version, 'done');
    assert.equal(s.outcome, 'rolled_back');
    assert.match(s.outcomeReason ?? '', /canary analysis failed at step 2\/3 \(50%\): error-rate \[0\.\d+/);
    assert.ok(s.outcomeReason!.includes(`model_errors_total{model="${model}",version="2"}`), `the rendered query is named: ${s.outcomeReason}`);
    const uri = s.pullRequest!.storageUri!;
    assert.deepEqual(cluster.applied, [`10@${uri}`, `50@${uri}`, `0@${uri}`]);
    const failing = s.canary!.failure!.metrics[0];
    assert.deepEqual(s.canary?.failure?.metrics, [{ metric: 'error-rate', query: failing.query, values: failing.values, phases: ['failed'] }]);
    assert.equal(failing.values.length, 1);
    const value = failing.values[0] ?? Number.NaN;
    assert.ok(value >= 0.05 && value <= HIGH_ERROR_RATE + 0.01, `failing value ${value}`);
    assert.equal(s.canary?.rollback?.previousServing, true);
    assert.equal(readCanaryPercent(await manifestAt(model), { namespace: NAMESPACE, name: model }), 0);
    const isvc = double.read(INFERENCE_SERVICES, NAMESPACE, model) as InferenceService;
    const prev = s.canary.previousRevision!;
    assert.equal(prev, revisionName(model, 2), 'v1 revision is the previous one');
    assert.equal(isvc.status!.components!.predictor.traffic!.find((t) => t.revisionName === prev)?.percent, 100);
    // The failing sample was acted on at once: no further sample after it.
    assert.equal(s.canary.steps[1].measurements.length, 1);
    // MLflow: v1 stays Production.
    const mv1 = await mlflow.getModelVersion(model, first.version);
    const mv2 = await mlflow.getModelVersion(model, v2.version);
    assert.equal(mv1.aliases?.includes('production') ?? mv1.current_stage === 'Production', true);
    assert.notEqual(mv2.current_stage, 'Production');
    assert.ok(!(mv2.aliases ?? []).includes('production'));
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v2.version)), 'canary-failed-rolled-back');
  });

  it('when Prometheus is unreachable, then the step is inconclusive, the canary pauses, an outsider may not decide and an approver aborts it (attested)', async (t) => {
    const { model, cluster } = await gitopsModel('canary-pause');
    const v = await registerServing(model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    // Prometheus goes away before the first sample; it is started again once this case is over.
    await prom.stop();
    t.after(() => prom.start());
    await approve(client, model, v.version, { by: 'alice' });
    const paused = await canaryIs(model, v.version, 'paused');
    assert.equal(paused.canary!.pause!.step, 0);
    assert.match(paused.canary!.pause!.reason, /analysis inconclusive: error-rate/);
    assert.ok(paused.canary!.steps[0].measurements.every((m) => m.phase === 'error' && m.value === undefined));
    // Bare (unsigned) decisions and people outside the approvers are refused; nothing moves.
    await assert.rejects(decideCanary(client, 'abort', model, v.version, { by: 'bob', reason: 'unsigned' }), (e: ModelgateError) => e.code === 'unverified_decision');
    await assert.rejects(decideCanary(client, 'continue', model, v.version, { by: 'mallory' }, testSign), (e: ModelgateError) => e.code === 'unauthorized_approver');
    await assert.rejects(decideCanary(client, 'abort', model, v.version, { by: 'bob' }, testSign), (e: ModelgateError) => e.code === 'invalid_input', 'an abort needs a reason');
    const aborted = await decideCanary(client, 'abort', model, v.version, { by: 'bob', reason: 'no metrics, no traffic' }, testSign);
    assert.equal(aborted.canary?.pause?.decision?.by, 'bob');
    assert.equal(aborted.canary?.pause?.decision?.verified, true);
    const s = await phaseIs(model, v.version, 'done');
    assert.equal(s.outcome, 'rolled_back');
    assert.match(s.outcomeReason ?? '', /canary aborted at step 1\/3 \(10%\) by bob: no metrics, no traffic/);
    const uri = s.pullRequest!.storageUri!;
    assert.deepEqual(cluster.applied, [`10@${uri}`, `0@${uri}`]);
    // A decision after the fact is refused with a stable code.
    await assert.rejects(decideCanary(client, 'continue', model, v.version, { by: 'alice' }, testSign), (e: ModelgateError) => e.code === 'not_awaiting_approval' || e.code === 'canary_not_paused');
    await captureHistory(client.workflow.getHandle(lifecycleWorkflowId(model, v.version)), 'canary-inconclusive-aborted');
  });

  it('when the worker dies between steps, then a new one resumes at the right step and no step is committed or applied twice', async () => {
    const { model, cluster } = await gitopsModel('canary-crash');
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let reached!: () => void;
    const at50 = new Promise<void>((r) => (reached = r));
    cluster.onApply = async (percent) => {
      if (percent !== 50) return;
      reached();
      await held;
    };
    const v = await registerServing(model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'alice' });
    await at50;
    // Step 2's commit is on main and KServe has not reported its split: the worker goes away mid-wait.
    await worker.stop();
    worker = await startWorker();
    release();
    const s = await phaseIs(model, v.version, 'production', 'done');
    assert.equal(s.phase, 'production', s.outcomeReason);
    const uri = s.pullRequest!.storageUri!;
    assert.deepEqual(cluster.applied, [`10@${uri}`, `50@${uri}`, `100@${uri}`]);
    assert.deepEqual((await stepCommits(model)).sort(), ['1', '2']);
    const titles = (await run('git', ['--git-dir', repos.get(model)!.repo, 'log', 'main', '--first-parent', '--format=%s'], { encoding: 'utf8' })).stdout;
    assert.equal(titles.match(/ canary step \d/g)?.length, 2, `one step merge each on main:\n${titles}`);
  });

  it('when the base branch takes only merges, then a refused direct step commit falls back to a branch merged once per step', async () => {
    const { model, cluster } = await gitopsModel('canary-protected');
    // The remote refuses any update of main that is not a merge commit, as a protected branch would.
    const hook = join(repos.get(model)!.repo, 'hooks', 'pre-receive');
    writeFileSync(hook, `#!/bin/sh
while read old new ref; do
  if [ "$ref" = refs/heads/main ] && [ "$(git rev-list --parents -n 1 "$new" | wc -w)" -lt 3 ]; then
    echo "main is protected: merges only" >&2; exit 1
  fi
done
`);
    chmodSync(hook, 0o755);
    const { version, state: s } = await promoteHealthy(model);
    assert.equal(s.phase, 'production', s.outcomeReason);
    assert.deepEqual(cluster.applied, [`10@${s.pullRequest!.storageUri!}`, `50@${s.pullRequest!.storageUri!}`, `100@${s.pullRequest!.storageUri!}`]);
    assert.deepEqual((await stepMerges(model)).sort(), [`modelgate/${model}/v${version}-canary-1`, `modelgate/${model}/v${version}-canary-2`]);
    assert.deepEqual(await stepCommits(model), []);
  });

  it('when the policy says commit: pull-request, then each later step is a branch merged once', async () => {
    const { model } = await gitopsModel('canary-via-pr');
    viaPullRequest.add(model);
    const { version, state: s } = await promoteHealthy(model);
    assert.equal(s.phase, 'production', s.outcomeReason);
    assert.deepEqual((await stepMerges(model)).sort(), [`modelgate/${model}/v${version}-canary-1`, `modelgate/${model}/v${version}-canary-2`]);
    assert.deepEqual(await stepCommits(model), []);
  });

  it('when the InferenceService is RawDeployment, then the canary is refused before any traffic moves and the PR is closed', async () => {
    const { model, cluster } = await gitopsModel('canary-raw', 'RawDeployment');
    const before = await manifestAt(model);
    const v = await registerServing(model);
    await start(model, v.version);
    await phaseIs(model, v.version, 'awaiting_approval');
    await approve(client, model, v.version, { by: 'alice' });
    const s = await phaseIs(model, v.version, 'done');
    assert.equal(s.outcome, 'rolled_back');
    assert.match(s.outcomeReason ?? '', /canary refused: .*RawDeployment mode, which ignores spec\.predictor\.canaryTrafficPercent/);
    assert.equal(s.canary?.status, 'refused');
    assert.equal(await manifestAt(model), before, 'nothing merged');
    assert.deepEqual(cluster.applied, []);
    assert.equal(s.pullRequest?.mergeSha, undefined);
  });

  it('when every scenario above has run, then every object the double stored or served conformed to the published CRD schemas', { skip: crdSchemasMissing() }, () => {
    double.assertConforming();
  });
});
