/**
 * The canary pieces that need no servers: the pure KServe split judgement (every rule of the issue, one case
 * each), the manifest edit of canaryTrafficPercent (only that line changes; the result is a valid
 * InferenceService by the published CRD), and the k8s double's canary status progression checked against the
 * CRD schema (skipped with the reason when ../shared/crds is absent).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { canaryRefusal, deploymentModeOf, judgeCanaryRollback, judgeCanarySplit } from '../src/k8s/canary.js';
import { INFERENCE_SERVICES, type InferenceService } from '../src/k8s/types.js';
import { applyCanaryPercent, readCanaryPercent } from '../src/gitops/canary-manifest.js';
import { ManifestError } from '../src/gitops/errors.js';
import { crdKinds, crdSchemasMissing } from './support/k8s-crds.js';
import { K8sDouble } from './support/k8s-double.js';
import { applyCanaryPercent as applyCanaryInCluster, createServingInferenceService, markCanarySplit, markProgressing, revisionName } from './support/k8s-fixtures.js';
import { unique } from './support/stack.js';

const URI = 's3://models/iris/2';
const PREV = 'iris-predictor-00001';
const LATEST = 'iris-predictor-00002';

function isvc(o: { percent?: number; split?: Array<[string, number]>; generation?: number; observed?: number; ready?: string; latest?: string; readyRev?: string; mode?: string; annotation?: string; uri?: string } = {}): InferenceService {
  const generation = o.generation ?? 3;
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: 'iris', namespace: 'ml', generation, ...(o.annotation ? { annotations: { 'serving.kserve.io/deploymentMode': o.annotation } } : {}) },
    spec: { predictor: { model: { storageUri: o.uri ?? URI }, ...(o.percent !== undefined ? { canaryTrafficPercent: o.percent } : {}) } },
    status: {
      observedGeneration: o.observed ?? generation,
      ...(o.mode ? { deploymentMode: o.mode } : {}),
      conditions: [{ type: 'Ready', status: o.ready ?? 'True' }],
      components: {
        predictor: {
          latestCreatedRevision: o.latest ?? LATEST,
          latestReadyRevision: o.readyRev ?? LATEST,
          previousRolledoutRevision: PREV,
          traffic: (o.split ?? [[LATEST, 10], [PREV, 90]]).map(([revisionName, percent]) => ({ revisionName, percent })),
        },
      },
    },
  };
}

describe('judgeCanarySplit', () => {
  test('when the latest revision is ready with the step percent and the previous one has the rest, then the split serves', () => {
    assert.deepEqual(judgeCanarySplit(isvc({ percent: 10 }), { percent: 10, storageUri: URI }), { status: 'serving', revision: LATEST, previousRevision: PREV });
    assert.equal(judgeCanarySplit(isvc({ percent: 50, split: [[LATEST, 50], [PREV, 50]] }), { percent: 50, storageUri: URI, previousRevision: PREV }).status, 'serving');
  });

  test('when the step is 100 and the field is removed, then the latest revision must have all the traffic', () => {
    assert.deepEqual(judgeCanarySplit(isvc({ split: [[LATEST, 100]] }), { percent: 100, storageUri: URI }), { status: 'serving', revision: LATEST });
    assert.equal(judgeCanarySplit(isvc({ split: [[LATEST, 50], [PREV, 50]] }), { percent: 100, storageUri: URI }).status, 'waiting');
    // The field still set at 100 is a step not yet applied.
    assert.match(waitWhy(isvc({ percent: 50, split: [[LATEST, 100]] }), 100), /canaryTrafficPercent is 50, expecting unset/);
  });

  test('when the spec still has the old percent, then it waits for the step to be applied', () => {
    assert.match(waitWhy(isvc({ percent: 10 }), 50), /canaryTrafficPercent is 10, expecting 50/);
  });

  test('when observedGeneration lags, then the old split says nothing and it waits', () => {
    assert.match(waitWhy(isvc({ percent: 10, generation: 4, observed: 3 }), 10), /observedGeneration 3 has not caught up with metadata.generation 4/);
  });

  test('when the latest created revision is not ready yet, then it waits', () => {
    assert.match(waitWhy(isvc({ percent: 10, latest: 'iris-predictor-00003' }), 10), /latest created revision iris-predictor-00003 is not ready/);
  });

  test('when the traffic entries are not at the expected percent yet, then it waits naming the percent', () => {
    assert.match(waitWhy(isvc({ percent: 50, split: [[LATEST, 10], [PREV, 90]] }), 50), /has 10% of traffic, expecting 50%/);
  });

  test('when the rest of the traffic is on a revision other than the previous one, then it waits', () => {
    assert.match(
      waitWhy(isvc({ percent: 10, split: [[LATEST, 10], ['iris-predictor-00000', 90]] }), 10, PREV),
      /remaining 90% is on iris-predictor-00000, expecting the previous revision iris-predictor-00001/,
    );
  });

  test('when Ready is Unknown, then it waits; when the model failed to load, then it fails', () => {
    assert.match(waitWhy(isvc({ percent: 10, ready: 'Unknown' }), 10), /Ready is Unknown/);
    const failed = isvc({ percent: 10 });
    failed.status!.modelStatus = { transitionStatus: 'BlockedByFailedLoad', states: { activeModelState: 'Loaded', targetModelState: 'FailedToLoad' } };
    assert.equal(judgeCanarySplit(failed, { percent: 10, storageUri: URI }).status, 'failed');
  });

  test('when the storageUri is another version, then it waits (the promotion merge is not applied yet)', () => {
    assert.match(waitWhy(isvc({ percent: 10, uri: 's3://models/iris/1' }), 10), /storageUri is s3:\/\/models\/iris\/1/);
  });

  test('when the InferenceService is RawDeployment by status or annotation, then the canary is refused with a clear message', () => {
    for (const o of [{ mode: 'RawDeployment' }, { annotation: 'RawDeployment' }]) {
      const v = judgeCanarySplit(isvc({ percent: 10, ...o }), { percent: 10, storageUri: URI });
      assert.equal(v.status, 'refused');
      assert.match((v as { reason: string }).reason, /RawDeployment mode, which ignores spec\.predictor\.canaryTrafficPercent/);
    }
    assert.equal(deploymentModeOf(isvc({ mode: 'Serverless', annotation: 'RawDeployment' })), 'Serverless', 'the status wins over the annotation');
    assert.equal(canaryRefusal(undefined, 'RawDeployment')?.includes('RawDeployment'), true, 'the policy mode decides when the object is absent');
    assert.equal(canaryRefusal(isvc(), 'Serverless'), undefined);
  });

  test('when the percent is out of range, then it is refused, never waited on', () => {
    assert.equal(judgeCanarySplit(isvc(), { percent: 150, storageUri: URI }).status, 'refused');
    assert.equal(judgeCanarySplit(isvc(), { percent: 12.5, storageUri: URI }).status, 'refused');
  });

  test('when rolled back to 0, then only the previous revision serving 100% at the current generation counts', () => {
    assert.deepEqual(judgeCanaryRollback(isvc({ percent: 0, split: [[PREV, 100], [LATEST, 0]] }), PREV), { status: 'serving', revision: PREV });
    assert.equal(judgeCanaryRollback(isvc({ percent: 0, split: [[LATEST, 50], [PREV, 50]] }), PREV).status, 'waiting');
    assert.equal(judgeCanaryRollback(isvc({ percent: 50, split: [[PREV, 100]] }), PREV).status, 'waiting');
    assert.equal(judgeCanaryRollback(isvc({ percent: 0, split: [[PREV, 100]], generation: 5, observed: 4 }), PREV).status, 'waiting');
  });
});

function waitWhy(obj: InferenceService, percent: number, previousRevision?: string): string {
  const v = judgeCanarySplit(obj, { percent, storageUri: URI, previousRevision });
  assert.equal(v.status, 'waiting', JSON.stringify(v));
  return (v as { why: string }).why;
}

const target = { namespace: 'ml', name: 'iris' };
const manifest = `# serving manifest
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: iris   # the model
  namespace: ml
spec:
  predictor:
    minReplicas: 1
    model:
      modelFormat: {name: mlflow}
      protocolVersion: v2
      storageUri: 's3://models/iris/2'   # set by modelgate
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
`;

describe('canaryTrafficPercent in the manifest', () => {
  test('when a step sets the percent, then exactly one line is added and every other byte stays', () => {
    const out = applyCanaryPercent(manifest, target, 10);
    assert.equal(out, manifest.replace("   # set by modelgate\n", "   # set by modelgate\n    canaryTrafficPercent: 10\n"));
    assert.equal(readCanaryPercent(out, target), 10);
  });

  test('when the next step changes it, then only its value changes; at 100 the line is removed; 0 after a failure', () => {
    const at10 = applyCanaryPercent(manifest, target, 10);
    const at50 = applyCanaryPercent(at10, target, 50);
    assert.equal(at50, at10.replace('canaryTrafficPercent: 10', 'canaryTrafficPercent: 50'));
    assert.equal(applyCanaryPercent(at50, target, 100), manifest);
    assert.equal(readCanaryPercent(applyCanaryPercent(at50, target, 0), target), 0);
    assert.equal(applyCanaryPercent(manifest, target, 100), manifest, 'removing an absent field changes nothing');
    assert.equal(applyCanaryPercent(at50, target, 50), at50, 'the same step again changes nothing (idempotent)');
  });

  test('when the predictor is a flow map, then the fallback still sets the field without altering other data', () => {
    const flow = `apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: iris, namespace: ml}\nspec:\n  predictor: {model: {storageUri: 's3://x'}}\n`;
    assert.equal(readCanaryPercent(applyCanaryPercent(flow, target, 20), target), 20);
  });

  test('when the percent is invalid or the predictor is missing, then a one-line ManifestError names it', () => {
    assert.throws(() => applyCanaryPercent(manifest, target, 101), (e: Error) => e instanceof ManifestError && /canary percent 101/.test(e.message) && !e.message.includes('\n'));
    const noPredictor = `apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: iris}\nspec: {}\n`;
    assert.throws(() => applyCanaryPercent(noPredictor, target, 10), /spec.predictor is missing/);
    assert.throws(() => readCanaryPercent(manifest.replace('minReplicas: 1', 'canaryTrafficPercent: ten'), target), /is not an integer/);
  });

  test('when edited at every step, then the InferenceService conforms to the published CRD schema', { skip: crdSchemasMissing() }, () => {
    const kind = crdKinds().get('serving.kserve.io/inferenceservices')!;
    let text = manifest;
    for (const percent of [10, 50, 0, 100]) {
      text = applyCanaryPercent(text, target, percent);
      const doc = parseAllDocuments(text)[0] as unknown as { toJS(): unknown };
      assert.deepEqual(kind.check(doc.toJS()), [], `at ${percent}%`);
    }
  });
});

describe('the k8s double grows the KServe canary status', () => {
  let double: K8sDouble;
  before(async () => {
    double = await K8sDouble.start();
  });
  after(async () => {
    await double.close();
  });

  test('when a canary goes 10 → 50 → 100 and another is rolled back to 0, then every state is judged as KServe means it and conforms to the CRD', () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://v1', mode: 'Serverless' });
    const prev = revisionName('iris', 1);
    applyCanaryInCluster(double, ns, 'iris', { storageUri: 's3://v2', percent: 10 });
    markProgressing(double, ns, 'iris');
    const latest = revisionName('iris', 2);
    const read = () => double.read(INFERENCE_SERVICES, ns, 'iris') as InferenceService;
    assert.equal(judgeCanarySplit(read(), { percent: 10, storageUri: 's3://v2', previousRevision: prev }).status, 'waiting');
    markCanarySplit(double, ns, 'iris', { latest, previous: prev, percent: 10 });
    assert.deepEqual(judgeCanarySplit(read(), { percent: 10, storageUri: 's3://v2', previousRevision: prev }), { status: 'serving', revision: latest, previousRevision: prev });
    applyCanaryInCluster(double, ns, 'iris', { storageUri: 's3://v2', percent: 50 });
    assert.equal(judgeCanarySplit(read(), { percent: 50, storageUri: 's3://v2', previousRevision: prev }).status, 'waiting', 'stale status after the step commit');
    markCanarySplit(double, ns, 'iris', { latest, previous: prev, percent: 50 });
    assert.equal(judgeCanarySplit(read(), { percent: 50, storageUri: 's3://v2', previousRevision: prev }).status, 'serving');
    applyCanaryInCluster(double, ns, 'iris', { storageUri: 's3://v2', percent: 100 });
    markCanarySplit(double, ns, 'iris', { latest, previous: prev, percent: 100 });
    assert.equal(judgeCanarySplit(read(), { percent: 100, storageUri: 's3://v2' }).status, 'serving');

    applyCanaryInCluster(double, ns, 'iris', { storageUri: 's3://v3', percent: 50 });
    const v3 = revisionName('iris', 5);
    markCanarySplit(double, ns, 'iris', { latest: v3, previous: latest, percent: 50 });
    applyCanaryInCluster(double, ns, 'iris', { storageUri: 's3://v3', percent: 0 });
    assert.equal(judgeCanaryRollback(read(), latest).status, 'waiting');
    markCanarySplit(double, ns, 'iris', { latest: v3, previous: latest, percent: 0 });
    assert.deepEqual(judgeCanaryRollback(read(), latest), { status: 'serving', revision: latest });
    double.assertConforming();
  });
});
