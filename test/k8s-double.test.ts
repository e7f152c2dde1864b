/**
 * The Kubernetes API double itself, through the real @kubernetes/client-node: the objects its fixtures
 * produce conform to the published CRDs (read from MODELGATE_CRD_DIR, default ../shared/crds/), a
 * non-conforming one is refused both when it is written and when it would be served, and the REST semantics
 * the activities rely on (list resourceVersion, watch replay, bookmarks, 410 both ways, 409, 403, 401) behave
 * as a real apiserver's do. Also: the RBAC manifest grants what the client uses.
 * The contract tests (against the schemas) skip, saying why, when the schemas are absent; the rest always run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KubernetesClient, loadKubeConfig, type K8sClient } from '../src/k8s/client.js';
import { K8sApiError } from '../src/k8s/errors.js';
import { ARGO_APPLICATIONS, INFERENCE_SERVICES, type ArgoApplication, type InferenceService, type WatchEvent } from '../src/k8s/types.js';
import { updateWithRetry } from '../src/k8s/update.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { crdKinds, crdSchemasMissing, structuralKinds } from './support/k8s-crds.js';
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
} from './support/k8s-fixtures.js';
import { unique } from './support/stack.js';

const SHA = 'c'.repeat(40);
/** Set when the published CRD schemas are absent: the reason the contract tests skip. */
const noSchemas = crdSchemasMissing();

async function rejection(p: Promise<unknown>): Promise<K8sApiError> {
  const err = await p.then(
    () => assert.fail('expected a Kubernetes API error'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof K8sApiError, `not a K8sApiError: ${String(err)}`);
  return err;
}

describe('the Kubernetes API double', () => {
  let double: K8sDouble;
  let client: K8sClient;
  let dir: string;

  before(async () => {
    double = await K8sDouble.start({ bookmarkIntervalMs: 200 });
    dir = mkdtempSync(join(tmpdir(), 'modelgate-k8s-double-'));
    client = new KubernetesClient(loadKubeConfig({ kind: 'file', path: double.writeKubeconfig(dir) }));
  });

  after(async () => {
    await double?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('when every fixture progression runs, then each object it produces conforms to the published CRD schemas', { skip: noSchemas }, () => {
    const ns = unique('ml');
    const argoNs = unique('argocd');
    const kinds = crdKinds();
    const isvcKind = kinds.get('serving.kserve.io/inferenceservices')!;
    const appKind = kinds.get('argoproj.io/applications')!;
    const seen = [
      createServingInferenceService(double, { namespace: ns, name: 'a', storageUri: 's3://m/1', mode: 'Serverless' }),
      createServingInferenceService(double, { namespace: ns, name: 'b', storageUri: 's3://m/1', mode: 'RawDeployment' }),
      applyStorageUri(double, ns, 'a', 's3://m/2'),
      markProgressing(double, ns, 'a'),
      markReadyUnknown(double, ns, 'a'),
      markFailedToLoad(double, ns, 'a'),
      markReady(double, ns, 'a'),
      markReady(double, ns, 'b'),
    ];
    for (const o of seen) assert.deepEqual(isvcKind.check(o), [], `${o.metadata?.name} gen ${o.metadata?.generation}`);
    const apps = [
      createSyncedApplication(double, { namespace: argoNs, name: 'a', revision: SHA, destinationNamespace: ns }),
      argoOutOfSync(double, argoNs, 'a', 'd'.repeat(40)),
      argoSync(double, argoNs, 'a', 'd'.repeat(40), 'Running', 'Progressing'),
      argoSync(double, argoNs, 'a', 'd'.repeat(40), 'Failed', 'Degraded'),
      argoSync(double, argoNs, 'a', 'd'.repeat(40), 'Succeeded', 'Healthy'),
    ];
    for (const o of apps) assert.deepEqual(appKind.check(o), []);
    assert.equal(isvcKind.checkedAgainst, 'crd');
    double.assertConforming();
  });

  test('when the schemas are there, then the structural fallback used without them agrees with the CRDs on every fact it keeps', { skip: noSchemas }, () => {
    const facts = (kinds: ReturnType<typeof crdKinds>) =>
      [...kinds].map(([key, { group, version, plural, kind, statusSubresource, topLevel }]) => ({ key, group, version, plural, kind, statusSubresource, topLevel }));
    assert.deepEqual(facts(structuralKinds()), facts(crdKinds()));
  });

  test('when fixtures move an InferenceService and an Application along, then the real client reads what they wrote', async () => {
    const ns = unique('ml');
    const argoNs = unique('argocd');
    createServingInferenceService(double, { namespace: ns, name: 'a', storageUri: 's3://m/1', mode: 'Serverless' });
    applyStorageUri(double, ns, 'a', 's3://m/2');
    markProgressing(double, ns, 'a');
    markReady(double, ns, 'a');
    createSyncedApplication(double, { namespace: argoNs, name: 'a', revision: SHA, destinationNamespace: ns });
    argoSync(double, argoNs, 'a', 'd'.repeat(40), 'Succeeded', 'Healthy');
    const got = (await client.get(INFERENCE_SERVICES, ns, 'a')) as InferenceService;
    assert.equal(got.spec?.predictor?.model?.storageUri, 's3://m/2');
    assert.equal(got.status?.components?.predictor?.latestReadyRevision, 'a-predictor-00002');
    const apps = (await client.list(ARGO_APPLICATIONS, argoNs)).items as ArgoApplication[];
    assert.deepEqual(apps.map((a) => a.status?.sync?.revision), ['d'.repeat(40)]);
    double.assertConforming();
  });

  test('when an object does not have the shape of its kind, then writing it is refused and serving it fails with 500, both recorded', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
    const before = double.violations.length;
    assert.throws(
      () =>
        double.modify(INFERENCE_SERVICES, ns, 'iris', (o) => {
          o.stauts = { url: 'http://x' };
        }),
      /does not conform to its CRD: \/ must NOT have additional properties \(stauts\)/,
    );
    assert.throws(
      () => double.create(ARGO_APPLICATIONS, { apiVersion: 'argoproj.io/v1alpha1', kind: 'Application', metadata: { name: 'x', namespace: ns } }),
      /\/ must have required property 'spec'/,
    );
    assert.equal(double.read(INFERENCE_SERVICES, ns, 'iris')?.metadata?.generation, 1, 'the refused write stored nothing');
    double.create(
      INFERENCE_SERVICES,
      { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'bad', namespace: ns }, spec: {}, status: 'Ready' },
      { unchecked: true },
    );
    const err = await rejection(client.get(INFERENCE_SERVICES, ns, 'bad'));
    assert.equal(err.status, 500);
    assert.match(err.message, /\/status must be object/);
    assert.equal((await rejection(client.list(INFERENCE_SERVICES, ns))).status, 500);
    assert.equal(double.violations.length, before + 4);
    assert.throws(() => double.assertConforming(), /non-conforming objects/);
    double.remove(INFERENCE_SERVICES, ns, 'bad');
    double.violations.length = before;
  });

  test('when a mutation misspells a status field or breaks an enum, then the double refuses the write and records it', { skip: noSchemas }, () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
    const before = double.violations.length;
    assert.throws(
      () =>
        double.modify(INFERENCE_SERVICES, ns, 'iris', (o) => {
          const p = (o as InferenceService).status!.components!.predictor as Record<string, unknown>;
          p['latestReadyRevison'] = 'typo';
        }),
      /does not conform to its CRD: \/status\/components\/predictor must NOT have additional properties \(latestReadyRevison\)/,
    );
    assert.throws(
      () =>
        double.modify(INFERENCE_SERVICES, ns, 'iris', (o) => {
          (o as InferenceService).status!.modelStatus!.transitionStatus = 'Broken';
        }),
      /\/status\/modelStatus\/transitionStatus must be equal to one of the allowed values/,
    );
    assert.throws(
      () => double.modify(ARGO_APPLICATIONS, ns, 'missing', () => undefined),
      /not found/,
    );
    assert.equal(double.violations.length, before + 2);
    // Nothing was stored: the object still conforms.
    assert.equal(double.read(INFERENCE_SERVICES, ns, 'iris')?.metadata?.generation, 1);
    double.violations.length = before;
  });

  test('when an object breaking its CRD schema is in the store anyway, then serving it fails with 500 and is recorded', { skip: noSchemas }, async () => {
    const ns = unique('ml');
    double.create(
      INFERENCE_SERVICES,
      { apiVersion: 'serving.kserve.io/v1beta1', kind: 'InferenceService', metadata: { name: 'bad', namespace: ns }, spec: { predictor: { model: { storageUri: 7 } } } },
      { unchecked: true },
    );
    const before = double.violations.length;
    const err = await rejection(client.get(INFERENCE_SERVICES, ns, 'bad'));
    assert.equal(err.status, 500);
    assert.match(err.message, /\/spec\/predictor\/model\/storageUri must be string/);
    assert.equal((await rejection(client.list(INFERENCE_SERVICES, ns))).status, 500);
    assert.throws(() => double.assertConforming(), /non-conforming objects/);
    double.violations.length = before;
  });

  test('when an object lacks a field its CRD requires, then it is refused (Application without spec.project)', { skip: noSchemas }, () => {
    const ns = unique('argocd');
    assert.throws(
      () =>
        double.create(ARGO_APPLICATIONS, {
          apiVersion: 'argoproj.io/v1alpha1',
          kind: 'Application',
          metadata: { name: 'x', namespace: ns },
          spec: { destination: { namespace: 'ml' } },
        }),
      /\/spec must have required property 'project'/,
    );
    double.violations.length = 0;
  });

  test('when a client lists then watches from the list resourceVersion, then it gets exactly the later changes, and bookmarks while idle', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
    createServingInferenceService(double, { namespace: ns, name: 'other', storageUri: 's3://m/1', mode: 'Serverless' });
    const listed = await client.list(INFERENCE_SERVICES, ns, { name: 'iris' });
    assert.deepEqual(listed.items.map((i) => i.metadata?.name), ['iris']);
    applyStorageUri(double, ns, 'other', 's3://m/2');
    const changed = applyStorageUri(double, ns, 'iris', 's3://m/2');
    const events: WatchEvent[] = [];
    await client.watch(INFERENCE_SERVICES, ns, { name: 'iris', resourceVersion: listed.resourceVersion, timeoutSeconds: 10 }, (e) => {
      events.push(e);
      return e.type === 'BOOKMARK' ? 'stop' : undefined;
    });
    assert.deepEqual(events.map((e) => e.type), ['MODIFIED', 'BOOKMARK']);
    assert.equal(events[0].object.metadata?.resourceVersion, changed.metadata?.resourceVersion);
    assert.ok(Number(events[1].object.metadata?.resourceVersion) >= Number(changed.metadata?.resourceVersion));
  });

  test('when a watch asks for a compacted resourceVersion, then it gets 410 Expired (as an ERROR event, or as HTTP 410)', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
    const { resourceVersion } = await client.list(INFERENCE_SERVICES, ns);
    applyStorageUri(double, ns, 'iris', 's3://m/2');
    double.compact();
    const viaEvent = await rejection(client.watch(INFERENCE_SERVICES, ns, { name: 'iris', resourceVersion }, () => undefined));
    assert.equal(viaEvent.status, 410);
    assert.equal(viaEvent.reason, 'Expired');

    const httpDouble = await K8sDouble.start({ expiredAs: 'http' });
    try {
      const c = new KubernetesClient(loadKubeConfig({ kind: 'file', path: httpDouble.writeKubeconfig(dir) }));
      createServingInferenceService(httpDouble, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
      httpDouble.compact();
      const viaHttp = await rejection(c.watch(INFERENCE_SERVICES, ns, { name: 'iris', resourceVersion: '1' }, () => undefined));
      assert.equal(viaHttp.status, 410);
    } finally {
      await httpDouble.close();
    }
  });

  test('when a write carries a stale resourceVersion, then it gets 409 and updateWithRetry re-reads and keeps the other change', async () => {
    const ns = unique('argocd');
    createSyncedApplication(double, { namespace: ns, name: 'app', revision: SHA, destinationNamespace: 'ml' });
    const stale = (await client.get(ARGO_APPLICATIONS, ns, 'app'))!;
    argoOutOfSync(double, ns, 'app', 'e'.repeat(40));
    const conflict = await rejection(client.replace(ARGO_APPLICATIONS, ns, 'app', stale));
    assert.equal(conflict.status, 409);
    assert.match(conflict.message, /update applications\.argoproj\.io "app" in namespace ".*": 409 Conflict: Operation cannot be fulfilled/);

    double.raceNextWrites(2);
    const r = await updateWithRetry(client, ARGO_APPLICATIONS, ns, 'app', (o) => ({
      ...o,
      metadata: { ...o.metadata, annotations: { note: 'x' } },
    }));
    assert.equal(r.written, true);
    assert.equal(r.conflicts, 2);
    const stored = double.read(ARGO_APPLICATIONS, ns, 'app')!;
    assert.equal(stored.metadata?.annotations?.note, 'x');
    assert.equal((stored.status as { sync?: { revision?: string } }).sync?.revision, 'e'.repeat(40), 'the concurrent status change survived');
  });

  test('when RBAC denies a verb, then the client gets 403 naming the verb, resource and namespace; other verbs still work', async () => {
    const ns = unique('ml');
    createServingInferenceService(double, { namespace: ns, name: 'iris', storageUri: 's3://m/1', mode: 'Serverless' });
    double.deny('list', INFERENCE_SERVICES);
    try {
      const err = await rejection(client.list(INFERENCE_SERVICES, ns));
      assert.equal(err.status, 403);
      assert.deepEqual(err.site, { verb: 'list', resource: 'inferenceservices.serving.kserve.io', namespace: ns, name: undefined });
      assert.match(err.message, /cannot list resource "inferenceservices" in API group "serving\.kserve\.io" in the namespace/);
      assert.ok(await client.get(INFERENCE_SERVICES, ns, 'iris'));
    } finally {
      double.allow();
    }
  });

  test('when the bearer token is wrong, then the double answers 401', async () => {
    const c = new KubernetesClient(loadKubeConfig({ kind: 'file', path: double.writeKubeconfig(dir, { token: 'wrong' }) }));
    assert.equal((await rejection(c.get(INFERENCE_SERVICES, 'ml', 'iris'))).status, 401);
  });
});

describe('deploy/kubernetes/rbac.yaml', () => {
  test('when applied, then the worker service account may get, list and watch exactly the two resources modelgate reads', () => {
    const docs = parseAllDocuments(readFileSync(join(PROJECT_ROOT, 'deploy', 'kubernetes', 'rbac.yaml'), 'utf8')).map((d) => {
      assert.deepEqual(d.errors, []);
      return d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }>; roleRef?: { kind: string; name: string }; subjects?: Array<{ kind: string; name: string; namespace: string }> };
    });
    const sa = docs.find((d) => d.kind === 'ServiceAccount')!;
    const grants = new Set<string>();
    for (const role of docs.filter((d) => d.kind === 'Role')) {
      const binding = docs.find((d) => d.kind === 'RoleBinding' && d.roleRef?.name === role.metadata.name && d.metadata.namespace === role.metadata.namespace);
      assert.ok(binding, `no RoleBinding for ${role.metadata.name}`);
      assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
      for (const r of role.rules ?? []) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) grants.add(`${v} ${res}.${g}`);
    }
    const needed = [INFERENCE_SERVICES, ARGO_APPLICATIONS].flatMap((k) => ['get', 'list', 'watch'].map((v) => `${v} ${k.plural}.${k.group}`));
    assert.deepEqual([...grants].sort(), needed.sort());
  });
});
