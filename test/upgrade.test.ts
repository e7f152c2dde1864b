/**
 * Issue #12 on the real Temporal dev server and the real MLflow server: 50 lifecycles parked on build A (the
 * workflow bundle of this commit) in Staging and Production, worker A replaced by build B on the same task
 * queue, whose lifecycle has one extra step guarded by `patched()` (test/workflows/upgrade-step.ts); then every
 * one is approved, superseded, rejected or retired on build B and must end as expected with no failed workflow
 * task. The negative control parks two more on build A and gives them to build B without the guard: the
 * replay fails with a non-determinism error, so the test can tell a safe change from an unsafe one.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import { getState } from '../src/client.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { lifecycleWorkflowId, lockWorkflowId, pullRequestSignal, type LifecycleState, type Outcome } from '../src/workflows/definitions.js';
import { MlflowClient } from '../src/mlflow/client.js';
import { approve, reject, retire, startLifecycle } from './support/identity.js';
import { policiesByPrefix } from './support/policies.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';
import { setCurrentVersion } from './support/versioning.js';
import { UPGRADE_STEP_PATCH, UPGRADE_STEP_TAG } from './workflows/upgrade-step.js';

const POLICY = `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.9"]
    requiredTags: []
    noRegression:
      - { metric: accuracy, direction: higher_is_better, tolerance: 0.01 }
  approval: { approvers: [alice, bob, carol], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
models:
  quorum: { approval: { quorum: 2 } }
`;

/** How many models of each kind; 2 × pair + single + reject + quorum = 50 lifecycles. */
const COUNTS = { pair: 15, single: 10, reject: 5, quorum: 5 } as const;
type Kind = keyof typeof COUNTS;
const PARALLEL = 8;
/**
 * Workers keep a workflow cache here (unlike the other lifecycle tests): a new worker's cache is empty, so
 * build B's first task of every parked lifecycle replays its whole history from build A regardless; the cache
 * only spares re-replaying B's own tasks after that, which keeps 50 lifecycles within the time budget.
 */
const CACHE = { maxCachedWorkflows: 200 };
/** Wall time of each phase, printed as a diagnostic (the figures in the report). */
const timings: Record<string, number> = {};
const timed = async <T>(phase: string, fn: () => Promise<T>): Promise<T> => {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[phase] = Date.now() - t0;
  }
};

interface Parked {
  kind: Kind;
  model: string;
  /** Every lifecycle of the model with the outcome it must end with on build B. */
  versions: { version: number; expect: Outcome; promotedOnB: boolean }[];
}

/** Runs `fn` over `items`, at most `limit` at a time (MLflow and the 2 cores are shared). */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

function failedTasks(events: HistoryEvent[]): string[] {
  return events.filter((e) => e.workflowTaskFailedEventAttributes).map((e) => e.workflowTaskFailedEventAttributes?.failure?.message ?? 'workflow task failed');
}

function hasPatchMarker(events: HistoryEvent[], id: string): boolean {
  return events.some((e) => {
    const details = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
    return e.markerRecordedEventAttributes?.markerName === 'core_patch' && !!details && Buffer.from(details).toString('utf8').includes(id);
  });
}

async function buildB(interceptorModule: string): Promise<{ code: string }> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(PROJECT_ROOT, 'dist', 'src', 'workflows', 'index.js'),
    workflowInterceptorModules: [join(PROJECT_ROOT, 'dist', 'test', 'workflows', interceptorModule)],
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
  });
  return { code };
}

describe('upgrading the worker while lifecycles are parked', () => {
  let env: TestWorkflowEnvironment;
  let client: Client;
  let mlflow: MlflowClient;
  const policies = policiesByPrefix(POLICY, 'upgrade-policy.yaml');
  const queue = unique('modelgate-upgrade');
  const controlQueue = unique('modelgate-upgrade-control');
  const running: RunningWorker[] = [];
  let parked: Parked[] = [];
  let control: { model: string; version: number }[] = [];
  let bundleB: { code: string };
  let bundleUnguarded: { code: string };

  const state = (model: string, version: number) => getState(client, model, version);
  const phaseIs = (model: string, version: number, phase: LifecycleState['phase'], ms = 150_000) =>
    eventually(`${model} v${version}: ${phase}`, async () => {
      const s = await state(model, version);
      return s.phase === phase ? s : undefined;
    }, ms);
  const history = async (workflowId: string) => (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];

  /** A model of `kind` with the versions it needs registered in MLflow (before any lifecycle, so MLflow is not also busy with them). */
  async function register(kind: Kind | 'control'): Promise<{ kind: Kind | 'control'; model: string; versions: number[] }> {
    const model = unique(kind);
    const versions = [(await registerTrainedVersion(mlflow, model)).version];
    if (kind === 'pair') versions.push((await registerTrainedVersion(mlflow, model)).version);
    return { kind, model, versions };
  }

  /** Starts the lifecycles of one registered model on whatever worker serves `taskQueue` and parks them. */
  async function park({ kind, model, versions }: Awaited<ReturnType<typeof register>>, taskQueue: string): Promise<Parked> {
    const registered = [...versions];
    const start = async () => {
      const v = registered.shift()!;
      await startLifecycle(client, model, v, { source: 'test' }, taskQueue);
      await phaseIs(model, v, 'awaiting_approval');
      return v;
    };
    const toProduction = async () => {
      const v = await start();
      await approve(client, model, v, { by: 'alice' });
      await phaseIs(model, v, 'production');
      return v;
    };
    switch (kind) {
      case 'pair': {
        const v1 = await toProduction();
        const v2 = await start();
        return { kind, model, versions: [{ version: v1, expect: 'superseded', promotedOnB: false }, { version: v2, expect: 'retired', promotedOnB: true }] };
      }
      case 'single':
        return { kind, model, versions: [{ version: await toProduction(), expect: 'retired', promotedOnB: false }] };
      case 'control':
        return { kind: 'single', model, versions: [{ version: await toProduction(), expect: 'retired', promotedOnB: false }] };
      case 'reject':
        return { kind, model, versions: [{ version: await start(), expect: 'rejected', promotedOnB: false }] };
      case 'quorum': {
        // One of the two approvals on build A: the second, on build B, completes the quorum.
        const v = await start();
        const s = await approve(client, model, v, { by: 'alice' });
        assert.equal(s.phase, 'awaiting_approval');
        return { kind, model, versions: [{ version: v, expect: 'retired', promotedOnB: true }] };
      }
    }
  }

  /** What build B is asked to do with one parked model; resolves when all its lifecycles ended. */
  async function finishOnB(p: Parked): Promise<void> {
    const [first, second] = p.versions;
    const promoteThenRetire = async (version: number) => {
      await approve(client, p.model, version, { by: 'bob' });
      await phaseIs(p.model, version, 'production');
      await retire(client, p.model, version, { by: 'carol', reason: 'upgrade test' });
    };
    if (p.kind === 'pair') await promoteThenRetire(second.version);
    if (p.kind === 'quorum') await promoteThenRetire(first.version);
    if (p.kind === 'single') await retire(client, p.model, first.version, { by: 'bob', reason: 'upgrade test' });
    if (p.kind === 'reject') await reject(client, p.model, first.version, { by: 'carol', reason: 'upgrade test' });
    await Promise.all(p.versions.map((v) => client.workflow.getHandle(lifecycleWorkflowId(p.model, v.version)).result()));
  }

  before(async () => {
    env = await connectTestEnv();
    client = env.client;
    // A generous timeout: 50 lifecycles' activities and the fixtures share one MLflow worker process.
    mlflow = new MlflowClient({ trackingUri: testStack().mlflowUri, timeoutMs: 60_000 });
    // Build A: the prebuilt bundle of this commit (dist/workflow-bundle.js), as startTestWorker loads it.
    running.push(await startTestWorker(env, { mlflow, policies, taskQueue: queue, ...CACHE }));
    running.push(await startTestWorker(env, { mlflow, policies, taskQueue: controlQueue, ...CACHE }));
    const kinds = (Object.keys(COUNTS) as Kind[]).flatMap((k) => Array.from({ length: COUNTS[k] }, () => k));
    // Bundling build B while build A parks the lifecycles: the same CPU, less wall time.
    const bundles = Promise.all([buildB('upgrade-build-b.js'), buildB('upgrade-build-b-unguarded.js')]);
    const models = await timed('register', () => pool([...kinds, 'control' as const, 'control' as const], 2, register));
    const controls = pool(models.filter((m) => m.kind === 'control'), 2, (m) => park(m, controlQueue));
    parked = await timed('park on A', () => pool(models.filter((m) => m.kind !== 'control'), PARALLEL, (m) => park(m, queue)));
    control = (await controls).map((p) => ({ model: p.model, version: p.versions[0].version }));
    [bundleB, bundleUnguarded] = await timed('bundles B', () => bundles);
    // Worker A goes away (a rolling update's last old pod); nothing is open on it but parked lifecycles.
    await Promise.all(running.splice(0).map((w) => w.stop()));
  });

  after(async () => {
    console.log(`upgrade test phases (ms): ${JSON.stringify(timings)}`);
    await Promise.all(running.map((w) => w.stop()));
    await mlflow?.close();
    await env?.teardown();
  });

  it('when build A parked the lifecycles, then 50 wait in Staging or Production', () => {
    assert.equal(parked.reduce((n, p) => n + p.versions.length, 0), 50);
  });

  it('when build B with the guarded extra step takes over, then all 50 end as expected with no failed workflow task', async () => {
    running.push(await startTestWorker(env, { mlflow, policies, taskQueue: queue, ...CACHE, workerOptions: { workflowBundle: bundleB } }));
    await timed('finish on B', () => pool(parked, PARALLEL, finishOnB));

    const problems: string[] = [];
    await pool(parked, PARALLEL, async (p) => {
      for (const v of p.versions) {
        const id = lifecycleWorkflowId(p.model, v.version);
        const s = (await client.workflow.getHandle(id).result()) as LifecycleState;
        if (s.outcome !== v.expect) problems.push(`${id}: ${s.outcome} (expected ${v.expect})`);
        const events = await history(id);
        for (const f of failedTasks(events)) problems.push(`${id}: workflow task failed: ${f}`);
        // The new step ran exactly where build B reached Production, and never in a replay of build A's history.
        const tagged = UPGRADE_STEP_TAG in ((await mlflow.getModelVersion(p.model, v.version)).tags ?? {});
        if (tagged !== v.promotedOnB) problems.push(`${id}: extra step ${tagged ? 'ran' : 'did not run'} (promoted on ${v.promotedOnB ? 'B' : 'A'})`);
        if (hasPatchMarker(events, UPGRADE_STEP_PATCH) !== v.promotedOnB) problems.push(`${id}: patch marker ${v.promotedOnB ? 'missing' : 'recorded'}`);
      }
      // The lock workflow was started on build A too and served every grant on B.
      if (p.kind !== 'reject') for (const f of failedTasks(await history(lockWorkflowId(p.model)))) problems.push(`${lockWorkflowId(p.model)}: workflow task failed: ${f}`);
    });
    assert.deepEqual(problems, []);
  });

  it('when Worker Versioning is on (AUTO_UPGRADE), then lifecycles parked on build a move to build b once it is current, and end', async () => {
    const deploymentName = unique('modelgate-upgrade');
    const taskQueue = unique('modelgate-upgrade-versioned');
    const a = await startTestWorker(env, { mlflow, policies, taskQueue, ...CACHE, deployment: { deploymentName, buildId: 'a' } });
    running.push(a);
    await setCurrentVersion(deploymentName, 'a');
    const p = await park(await register('pair'), taskQueue);
    // The ramp: build b polls beside build a; nothing moves until b is made current, then every AUTO_UPGRADE
    // lifecycle's next task goes to b.
    running.push(await startTestWorker(env, { mlflow, policies, taskQueue, ...CACHE, deployment: { deploymentName, buildId: 'b' }, workerOptions: { workflowBundle: bundleB } }));
    await setCurrentVersion(deploymentName, 'b');
    await finishOnB(p);
    await a.stop();
    const problems: string[] = [];
    for (const v of p.versions) {
      const handle = client.workflow.getHandle(lifecycleWorkflowId(p.model, v.version));
      const s = (await handle.result()) as LifecycleState;
      if (s.outcome !== v.expect) problems.push(`v${v.version}: ${s.outcome} (expected ${v.expect})`);
      for (const f of failedTasks(await history(handle.workflowId))) problems.push(`v${v.version}: workflow task failed: ${f}`);
      const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
      const build = info?.deploymentVersion?.buildId ?? info?.version;
      if (!String(build).endsWith('b')) problems.push(`v${v.version}: last ran on ${String(build)}, not build b`);
      const tagged = UPGRADE_STEP_TAG in ((await mlflow.getModelVersion(p.model, v.version)).tags ?? {});
      if (tagged !== v.promotedOnB) problems.push(`v${v.version}: extra step ${tagged ? 'ran' : 'did not run'}`);
    }
    assert.deepEqual(problems, []);
  });

  it('when build B has the same step without patched(), then a lifecycle parked in Production fails with a non-determinism error', async () => {
    running.push(await startTestWorker(env, { mlflow, policies, taskQueue: controlQueue, ...CACHE, workerOptions: { workflowBundle: bundleUnguarded } }));
    // Any message gives the parked lifecycle a workflow task, which replays build A's history on build B.
    const failures = await pool(control, 2, async (c) => {
      const handle = client.workflow.getHandle(lifecycleWorkflowId(c.model, c.version));
      await handle.signal(pullRequestSignal, { hint: true });
      const failed = await eventually(`${c.model} v${c.version}: a failed workflow task`, async () => {
        const f = failedTasks(await history(handle.workflowId));
        return f.length ? f : undefined;
      }, 60_000);
      await handle.terminate('upgrade test negative control');
      return failed[0];
    });
    for (const f of failures) assert.match(f, /nondetermin/i);
  });
});
