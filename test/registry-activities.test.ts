/**
 * The registry activities driven directly (as a worker would, one attempt at a time) against the real MLflow
 * server, through a recording proxy that counts every call: the Production lock's fencing check, what serves
 * now, the workflow-decided baseline and previous version, and exactly-once across a first attempt that
 * writes blind and a retry that reads first.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { createRegistryActivities, type RegistryActivities } from '../src/activities/registry.js';
import { parsePolicy } from '../src/policy/load.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG, TAG_MODEL } from '../src/mlflow/tags.js';
import { FailureTypes } from '../src/workflows/definitions.js';
import { testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { startRecordingProxy, writes, type RecordingProxy } from './support/recording-proxy.js';

const POLICY = parsePolicy(
  `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.5"]
    noRegression: [{ metric: accuracy, direction: higher_is_better, tolerance: 0.01 }]
  approval: { approvers: [alice], quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
`,
  'registry-activities-test.yaml',
);

describe('registry activities (real MLflow)', () => {
  let direct: MlflowClient;
  let proxied: MlflowClient;
  let proxy: RecordingProxy;
  let acts: RegistryActivities;

  before(async () => {
    direct = testMlflow(testStack().mlflowUri);
    proxy = await startRecordingProxy(testStack().mlflowUri);
    proxied = testMlflow(proxy.url);
    acts = createRegistryActivities({ mlflow: proxied, policies: { policyFor: (model) => ({ ...POLICY.policyFor(model), model }) }, stages: 'on' });
  });

  after(async () => {
    await proxy?.close();
    await proxied?.close();
    await direct?.close();
  });

  /** One attempt of an activity, as the worker would run it (attempt > 1: a retry). */
  type Acts = RegistryActivities;
  const attempt = (n: number) => ({
    run: <K extends keyof Acts>(name: K, input: Parameters<Acts[K]>[0]): Promise<Awaited<ReturnType<Acts[K]>>> => {
      const fn = acts[name] as (i: Parameters<Acts[K]>[0]) => Promise<Awaited<ReturnType<Acts[K]>>>;
      return new MockActivityEnvironment({ attempt: n }).run<[Parameters<Acts[K]>[0]], Awaited<ReturnType<Acts[K]>>, typeof fn>(fn, input);
    },
  });
  const callsFor = (model: string) => proxy.requests.filter((r) => JSON.stringify(r.body ?? {}).includes(model) || r.path.includes(encodeURIComponent(model)));
  const change = (model: string, version: number) => ({ model, version, workflowId: `modelgate/${model}/v${version}`, at: '2026-03-01T10:00:00.000Z' });
  const failureOf = async (p: Promise<unknown>): Promise<ApplicationFailure> => {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ApplicationFailure, `expected an ApplicationFailure, got ${String(err)}`);
      return err;
    }
    assert.fail('expected the activity to fail');
  };

  it('when the model carries the fence token, then a fenced enterProduction promotes; when the token is newer or missing, then it fails StaleFence and writes nothing', async () => {
    const model = unique('fence');
    const v = await registerTrainedVersion(direct, model);
    await attempt(1).run('enterStaging', change(model, v.version));

    // No token recorded yet: nobody holds the lock as far as MLflow knows.
    const missing = await failureOf(attempt(1).run('enterProduction', { ...change(model, v.version), fence: { token: 3 }, previousVersion: null }));
    assert.equal(missing.type, FailureTypes.StaleFence);
    assert.equal(missing.nonRetryable, true);
    assert.match(missing.message, new RegExp(`${model}.*no lock token.*token 3`));

    await direct.setRegisteredModelTag(model, TAG_MODEL.lockToken, '4');
    const before = proxy.requests.length;
    const stale = await failureOf(attempt(1).run('enterProduction', { ...change(model, v.version), fence: { token: 3 }, previousVersion: null }));
    assert.equal(stale.type, FailureTypes.StaleFence);
    assert.match(stale.message, new RegExp(`${model}.*lock token "4".*holds token 3`));
    assert.deepEqual(proxy.requests.slice(before).map((r) => r.method), ['GET'], 'only the fence read, no write');
    assert.equal((await direct.getModelVersion(model, v.version)).current_stage, 'Staging');

    const archive = await failureOf(attempt(1).run('archiveVersion', { model, version: v.version, at: change(model, v.version).at, outcome: 'retired', fence: { token: 3 } }));
    assert.equal(archive.type, FailureTypes.StaleFence);

    const r = await attempt(1).run('enterProduction', { ...change(model, v.version), fence: { token: 4 }, previousVersion: null });
    assert.deepEqual(r, {});
    const mv = await direct.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Production');
    assert.deepEqual(mv.aliases, [ALIAS.production]);
  });

  it('when nothing, one alias holder or several stage holders are Production, then currentProduction says which serves', async () => {
    const model = unique('current');
    const v1 = await registerTrainedVersion(direct, model);
    assert.deepEqual(await attempt(1).run('currentProduction', { model }), { stageHolders: [] });
    const v2 = await registerTrainedVersion(direct, model);
    const v3 = await registerTrainedVersion(direct, model);
    // Two versions in stage Production (a hand-made mess): latest_versions would show only v3.
    await direct.transitionStage(model, v1.version, 'Production');
    await direct.transitionStage(model, v3.version, 'Production');
    assert.deepEqual(await attempt(1).run('currentProduction', { model }), { serving: v3.version, stageHolders: [v1.version, v3.version] });
    await direct.setAlias(model, ALIAS.production, v2.version);
    assert.deepEqual(await attempt(1).run('currentProduction', { model }), {
      serving: v2.version,
      aliasHolder: v2.version,
      stageHolders: [v1.version, v3.version],
    });
  });

  it('when nothing is in stage Production, then currentProduction costs one MLflow call', async () => {
    const model = unique('current-one');
    const v = await registerTrainedVersion(direct, model);
    await direct.setAlias(model, ALIAS.production, v.version);
    const before = proxy.requests.length;
    assert.deepEqual(await attempt(1).run('currentProduction', { model }), { serving: v.version, aliasHolder: v.version, stageHolders: [] });
    assert.equal(proxy.requests.length - before, 1);
  });

  it('when the workflow names the baseline, then evaluateVersion compares with exactly that version (null: with none) and never reads the alias', async () => {
    const model = unique('baseline');
    const weak = await registerTrainedVersion(direct, model, { metrics: { accuracy: 0.7 } });
    const strong = await registerTrainedVersion(direct, model, { metrics: { accuracy: 0.95 } });
    const candidate = await registerTrainedVersion(direct, model, { metrics: { accuracy: 0.9 } });
    await direct.setAlias(model, ALIAS.production, weak.version);
    const policy = POLICY.policyFor(model).evaluation;
    const input = { model, version: candidate.version, runId: candidate.runId, policy };

    const before = proxy.requests.length;
    const vsStrong = await attempt(1).run('evaluateVersion', { ...input, baselineVersion: strong.version });
    assert.equal(vsStrong.passed, false);
    assert.equal(vsStrong.baselineVersion, strong.version);
    const vsNone = await attempt(1).run('evaluateVersion', { ...input, baselineVersion: null });
    assert.equal(vsNone.passed, true);
    assert.equal(vsNone.baselineVersion, undefined);
    assert.ok(!proxy.requests.slice(before).some((r) => r.path.includes('registered-models/alias')), 'the alias is not read');
    // Without the key: today's behaviour, the alias holder.
    assert.equal((await attempt(1).run('evaluateVersion', input)).baselineVersion, weak.version);
  });

  it('when enterProduction is given previousVersion, then it records that value and ignores a previous_production_version tag already there', async () => {
    const model = unique('previous');
    const v1 = await registerTrainedVersion(direct, model);
    const v2 = await registerTrainedVersion(direct, model);
    await direct.setVersionTag(model, v2.version, TAG.previousVersion, '99');
    await attempt(1).run('enterStaging', change(model, v2.version));
    const r = await attempt(1).run('enterProduction', { ...change(model, v2.version), previousVersion: v1.version });
    assert.deepEqual(r, { previousVersion: v1.version });
    assert.equal((await direct.getModelVersion(model, v2.version)).tags[TAG.previousVersion], String(v1.version));

    const v3 = await registerTrainedVersion(direct, model);
    await direct.setVersionTag(model, v3.version, TAG.previousVersion, String(v1.version));
    assert.deepEqual(await attempt(1).run('enterProduction', { ...change(model, v3.version), previousVersion: null }), {});
    assert.equal((await direct.getModelVersion(model, v3.version)).tags[TAG.previousVersion], 'none');
  });

  it('when a first attempt wrote everything and its retry runs again, then the retry reads and writes nothing twice', async () => {
    const model = unique('retry');
    const v = await registerTrainedVersion(direct, model);
    const tags = { [TAG.approvedBy]: 'alice', [TAG.approvedAt]: '2026-03-01T09:59:00.000Z' };
    for (const n of [1, 2]) await attempt(n).run('enterStaging', change(model, v.version));
    for (const n of [1, 2, 3]) await attempt(n).run('enterProduction', { ...change(model, v.version), tags, previousVersion: null });
    const key = { name: model, version: v.version };
    assert.equal(writes(proxy, 'model-versions/transition-stage', { ...key, stage: 'Staging' }).length, 1);
    assert.equal(writes(proxy, 'model-versions/transition-stage', { ...key, stage: 'Production' }).length, 1);
    assert.equal(writes(proxy, 'registered-models/alias', { name: model, alias: ALIAS.staging }).length, 2, 'set once, deleted once');
    assert.equal(writes(proxy, 'registered-models/alias', { name: model, alias: ALIAS.production }).length, 1);
    const perKey = new Map<string, number>();
    for (const w of writes(proxy, 'model-versions/set-tag', key)) perKey.set(String(w.body?.key), (perKey.get(String(w.body?.key)) ?? 0) + 1);
    for (const [k, n] of perKey) assert.equal(n, 1, `tag ${k} written ${n} times`);
    // Stages are served: the stage is MLflow's, not a tag as well.
    assert.ok(!perKey.has(TAG.stage));
    const mv = await direct.getModelVersion(model, v.version);
    assert.equal(mv.current_stage, 'Production');
    assert.deepEqual(mv.aliases, [ALIAS.production]);
    // First attempts: staging = transition + alias + 2 tags; production = transition + alias + drop staging + 3 tags
    // (no previous version: an absent tag says "none" already); each retry one read.
    assert.equal(callsFor(model).length, 4 + 6 + 3, 'calls of both first attempts and their reading retries');
    assert.equal(mv.tags[TAG.previousVersion], undefined);
  });
});
