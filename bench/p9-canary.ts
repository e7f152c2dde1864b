/**
 * P9 (issue #14): a progressive rollout on the real worker (createWorker, real activities, real Temporal and
 * MLflow of the bench, the plain-git provider on a bare repo, @kubernetes/client-node against the k8s double with
 * the "ArgoCD + KServe" loop of test/support/canary-cluster.ts, the analysis stand-in for Prometheus):
 *  - P9a: time from the failing analysis sample (its `at`) to the rollback commit recorded (timeline
 *    "canary rolled back to 0%") ÷ the metric's interval — target ≤ 1.5;
 *  - P9b: modelgate's wall time per step beyond the configured waits (soak + (count − 1) × interval), from one
 *    step's passed analysis to the next one's, median over the healthy run's later steps — target ≤ 1 s.
 *    The simulated cluster's poll (150 ms) is inside that figure: conservative.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { getState } from '../src/client.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { createK8sClient, loadK8sConfig } from '../src/config/k8s.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { readServingFields } from '../src/gitops/manifest.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { parsePolicy } from '../src/policy/load.js';
import { createWorker } from '../src/worker.js';
import type { LifecycleState } from '../src/workflows/definitions.js';
import { metricsSource, manifestAt, standInAnalysis, startReconciler, type Cluster } from '../test/support/canary-cluster.js';
import { registerTrainedVersion } from '../test/support/fixtures.js';
import { approve, startLifecycle, TEST_KEYS, testDirectory } from '../test/support/identity.js';
import { K8sDouble } from '../test/support/k8s-double.js';
import { createServingInferenceService } from '../test/support/k8s-fixtures.js';
import { benchId } from './promotion-rig.js';
import { fmt, median, pollUntil, type BenchContext, type Figure } from './support.js';

const NAMESPACE = 'models';
const INTERVAL_MS = 1000;
const COUNT = 3;

export async function measureP9(ctx: BenchContext): Promise<Figure[]> {
  const dir = mkdtempSync(join(ctx.dataDir, 'p9-'));
  const double = await K8sDouble.start();
  const clusters = new Map<string, Cluster>();
  const repos = new Map<string, string>();
  const policyFor = (model: string) => {
    const c = clusters.get(model)!;
    const text = `
defaults:
  evaluation: { thresholds: ["accuracy >= 0.9"], requiredTags: [data.lookback_days], noRegression: [] }
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment:
    mode: gitops
    gitops: { provider: git, repo: ${JSON.stringify(repos.get(model))}, baseBranch: main, manifestPath: ${c.manifestPath}, namespace: ${NAMESPACE}, inferenceService: ${model},
              storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow-artifacts/" }] }
    kserve: { deploymentMode: Serverless, rolloutDeadline: 60s, rollback: auto }
    canary:
      steps: [10, 25, 50, 100]
      metrics:
        - { name: error-rate, query: 'sum(rate(model_errors_total{version="{{version}}"}[30s]))', successCondition: result < 0.05, interval: ${INTERVAL_MS / 1000}s, count: ${COUNT} }
`;
    return { ...parsePolicy(text, `${model}.yaml`).policyFor(model), model };
  };
  const taskQueue = benchId('bench-p9');
  const mlflow = new MlflowClient({ trackingUri: ctx.mlflowUri, timeoutMs: 30_000 });
  const worker = await createWorker({
    connection: ctx.connection,
    namespace: ctx.namespace,
    taskQueue,
    client: ctx.client,
    mlflow,
    policies: { policyFor },
    verificationKeys: () => TEST_KEYS,
    identities: testDirectory(),
    gitops: { ...createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') })), markerSecret: 'p9-bench-marker-secret-0123' },
    k8s: { k8s: createK8sClient(loadK8sConfig({ MODELGATE_KUBECONFIG: double.writeKubeconfig(dir) })), heartbeatIntervalMs: 1000 },
    canaryAnalysis: standInAnalysis,
  });
  const running = worker.run();
  const reconciler = startReconciler(double, () => clusters.values());

  const model = async (prefix: string): Promise<string> => {
    const name = benchId(prefix);
    const repo = await initLocalGitopsRepo(join(dir, `${name}.git`), { model: name, namespace: NAMESPACE, name });
    repos.set(name, repo.repo);
    const c: Cluster = { namespace: NAMESPACE, name, repo: repo.repo, manifestPath: repo.manifestPath, applied: [] };
    const uri = readServingFields(await manifestAt(c), { namespace: NAMESPACE, name }).storageUri!;
    createServingInferenceService(double, { namespace: NAMESPACE, name, storageUri: uri, mode: 'Serverless' });
    metricsSource.set(name, { errorRate: 0.01 });
    clusters.set(name, c);
    return name;
  };
  const promote = async (name: string): Promise<LifecycleState> => {
    const v = await registerTrainedVersion(mlflow, name);
    await startLifecycle(ctx.client, name, v.version, { source: 'test' }, taskQueue);
    await pollUntil(`${name} awaiting approval`, async () => ((await getState(ctx.client, name, v.version)).phase === 'awaiting_approval' ? true : undefined), { intervalMs: 100, timeoutMs: 120_000 });
    await approve(ctx.client, name, v.version, { by: 'alice' });
    return pollUntil(`${name} ended`, async () => {
      const s = await getState(ctx.client, name, v.version);
      return s.phase === 'production' || s.phase === 'done' ? s : undefined;
    }, { intervalMs: 100, timeoutMs: 300_000 });
  };
  const at = (s: LifecycleState, action: string): number => {
    const e = s.timeline.find((t) => t.action === action);
    if (!e) throw new Error(`P9: no timeline entry "${action}" (outcome ${s.outcome ?? s.phase}: ${s.outcomeReason ?? ''})`);
    return Date.parse(e.at);
  };

  try {
    ctx.log('P9: healthy canary 10 → 25 → 50 → 100');
    const healthy = await promote(await model('bench-p9-ok'));
    if (healthy.phase !== 'production') throw new Error(`P9: the healthy canary ended ${healthy.outcome}: ${healthy.outcomeReason}`);
    const configured = (COUNT - 1) * INTERVAL_MS;
    const added: number[] = [];
    // Where a step's time goes: the commit, KServe serving the split, the analysis beyond its configured waits.
    const parts: string[] = [];
    for (let k = 2; k <= 4; k++) {
      const step = (n: number, what: string) => at(healthy, `canary step ${n}/4 (${[10, 25, 50, 100][n - 1]}%) ${what}`);
      added.push(step(k, 'analysis successful') - step(k - 1, 'analysis successful') - configured);
      parts.push(`step ${k}: commit ${step(k, 'committed') - step(k - 1, 'analysis successful')} ms, split served ${step(k, 'serving') - step(k, 'committed')} ms, analysis +${step(k, 'analysis successful') - step(k, 'serving') - configured} ms`);
    }
    ctx.log(`P9: ${parts.join('; ')}`);

    ctx.log('P9: canary failing at 50%');
    const failing = await model('bench-p9-fail');
    clusters.get(failing)!.onApply = (percent) => {
      if (percent === 50) metricsSource.set(failing, { errorRate: 0.5 });
    };
    const failed = await promote(failing);
    if (failed.outcome !== 'rolled_back') throw new Error(`P9: the failing canary ended ${failed.outcome ?? failed.phase}`);
    const bad = failed.canary!.steps.flatMap((x) => x.measurements).find((m) => m.phase === 'failed');
    if (!bad) throw new Error('P9: no failed sample recorded');
    const reaction = at(failed, 'canary rolled back to 0%') - Date.parse(bad.at);
    const ratio = reaction / INTERVAL_MS;
    const perStep = median(added) / 1000;
    return [
      {
        id: 'P9a',
        name: 'failing canary sample → rollback commit ÷ analysis interval',
        target: '≤ 1.5',
        value: ratio,
        pass: ratio <= 1.5,
        detail: `failing sample → 0% commit ${reaction} ms, interval ${INTERVAL_MS} ms`,
      },
      {
        id: 'P9b',
        name: "modelgate's added wall time per canary step beyond the configured waits (s)",
        target: '≤ 1 s',
        value: perStep,
        pass: perStep <= 1,
        detail: `steps 2–4 beyond ${configured} ms of configured analysis waits: ${added.map((x) => `${x} ms`).join(', ')} (median ${fmt(perStep)} s; includes the simulated cluster's 150 ms poll); ${parts.join('; ')}`,
      },
    ];
  } finally {
    await reconciler.stop();
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await double.close();
    await mlflow.close();
  }
}
