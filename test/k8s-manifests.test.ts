/**
 * deploy/kubernetes, checked without a cluster: the kustomization is rendered (with `kubectl kustomize` or
 * `kustomize build` when one is installed, else with the small loader below, which handles exactly the
 * kustomize features the directory uses), every object is validated offline against the Kubernetes JSON
 * schemas by the PyPI package kubernetes-validate (python/requirements-k8s.txt, in .venv), the containers pass
 * only configuration keys modelgate reads (and values it accepts), the security posture holds, and
 * docs/operations.md names exactly the Secrets and keys the Deployments reference.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig } from '../src/config.js';
import { loadActiveConfig } from '../src/config/active.js';
import { loadApiConfig } from '../src/config/api.js';
import { loadGitopsConfig } from '../src/config/gitops.js';
import { loadK8sConfig } from '../src/config/k8s.js';
import { loadObservabilityConfig } from '../src/config/observability.js';
import { loadPolicyFile } from '../src/policy/load.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { SEARCH_ATTRIBUTES } from '../src/workflows/definitions.js';
import { knownConfigKeys, stalePendingConfigKeys, unknownConfigKeys } from './support/config-keys.js';

const run = promisify(execFile);
const DIR = join(PROJECT_ROOT, 'deploy', 'kubernetes');
const NAMESPACE = 'modelgate';
/** Schema versions validated against: an older supported minor and the newest the pinned package bundles. */
const K8S_VERSIONS = ['1.29.0', '1.37.0'];
/** Env names that look secret but are not (the signing key's id). */
const NOT_SECRET = new Set(['MODELGATE_ATTESTATION_KEY_ID']);
const SECRET_NAME = /TOKEN|SECRET|PASSWORD|KEY/;

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } };
}
interface Probe {
  httpGet?: { path: string; port: number | string };
  tcpSocket?: { port: number | string };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  allowPrivilegeEscalation?: boolean;
  readOnlyRootFilesystem?: boolean;
  privileged?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvVar[];
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: SecurityContext & { fsGroup?: number };
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  volumes?: Array<{ name: string; configMap?: { name: string }; emptyDir?: object; secret?: object; hostPath?: object }>;
}
interface Deployment extends Obj {
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } };
}
interface Pdb extends Obj {
  spec: { selector: { matchLabels: Record<string, string> }; minAvailable?: number | string; maxUnavailable?: number | string };
}
interface Kustomization {
  resources?: string[];
  transformers?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string; digest?: string }>;
  configMapGenerator?: Array<{ name: string; files?: string[]; literals?: string[] }>;
}

const KUSTOMIZATION = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as Kustomization;
const GENERATED = (KUSTOMIZATION.configMapGenerator ?? []).map((g) => g.name);

function readDocs(file: string): Obj[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => {
      assert.deepEqual(d.errors, [], `${file}: YAML errors`);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => !!o);
}

const podSpec = (o: Obj): PodSpec | undefined => (o as Deployment).spec?.template?.spec;
const containersOf = (o: Obj): Container[] => {
  const spec = podSpec(o);
  return spec ? [...(spec.initContainers ?? []), ...spec.containers] : [];
};

/** kustomize's `images:` rule for one image reference (name[:tag][@digest]). */
function retag(image: string, rule: NonNullable<Kustomization['images']>[number]): string {
  const m = /^([^@]+?)(?::([^:/@]+))?(?:@(.+))?$/.exec(image);
  if (!m || m[1] !== rule.name) return image;
  const name = rule.newName ?? m[1];
  if (rule.digest) return `${name}@${rule.digest}`;
  const tag = rule.newTag ?? m[2];
  return `${name}${tag ? `:${tag}` : ''}${!rule.newTag && m[3] ? `@${m[3]}` : ''}`;
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PriorityClass', 'StorageClass']);

/**
 * The kustomize features deploy/kubernetes uses, and no others (an unknown key fails, so a new feature in the
 * kustomization extends this too): file resources, configMapGenerator (files, literals; without kustomize's
 * name hash), images, and a NamespaceTransformer with unsetOnly.
 */
function renderWithLoader(dir: string): Obj[] {
  const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Record<string, unknown> & Kustomization;
  const supported = ['apiVersion', 'kind', 'resources', 'transformers', 'images', 'configMapGenerator'];
  assert.deepEqual(Object.keys(k).filter((key) => !supported.includes(key)), [], 'kustomization keys the test loader does not implement');
  const objects = (k.resources ?? []).flatMap((file) => readDocs(join(dir, file)));
  for (const g of k.configMapGenerator ?? []) {
    assert.deepEqual(Object.keys(g).filter((key) => !['name', 'files', 'literals'].includes(key)), [], `configMapGenerator ${g.name}: keys the loader does not implement`);
    const data: Record<string, string> = {};
    for (const f of g.files ?? []) {
      const [key, path] = f.includes('=') ? f.split('=', 2) : [basename(f), f];
      data[key] = readFileSync(join(dir, path), 'utf8');
    }
    for (const l of g.literals ?? []) data[l.slice(0, l.indexOf('='))] = l.slice(l.indexOf('=') + 1);
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: g.name }, data });
  }
  for (const rule of k.images ?? []) for (const c of objects.flatMap(containersOf)) c.image = retag(c.image, rule);
  for (const file of k.transformers ?? []) {
    const t = parse(readFileSync(join(dir, file), 'utf8')) as { apiVersion: string; kind: string; metadata: { namespace: string }; unsetOnly?: boolean };
    assert.deepEqual([t.apiVersion, t.kind, t.unsetOnly], ['builtin', 'NamespaceTransformer', true], `${file}: the loader implements only an unsetOnly NamespaceTransformer`);
    for (const o of objects) if (!CLUSTER_SCOPED.has(o.kind) && !o.metadata.namespace) o.metadata.namespace = t.metadata.namespace;
  }
  return objects;
}

/** `kubectl kustomize` or `kustomize build`, when installed; undefined otherwise. */
async function renderWithTool(dir: string): Promise<{ tool: string; objects: Obj[] } | undefined> {
  const candidates: Array<[string[], string[]]> = [
    [['kubectl', 'version', '--client'], ['kubectl', 'kustomize', dir]],
    [['kustomize', 'version'], ['kustomize', 'build', dir]],
  ];
  for (const [probe, [bin, ...args]] of candidates) {
    try {
      await run(probe[0], probe.slice(1), { timeout: 30_000 });
    } catch {
      continue;
    }
    const { stdout } = await run(bin, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return { tool: `${bin} ${args.slice(0, -1).join(' ')}`, objects: parseAllDocuments(stdout).map((d) => d.toJS() as Obj).filter(Boolean) };
  }
  return undefined;
}

/** Without kustomize's content hash on generated ConfigMap names, so both renderings compare. */
function withoutHashes(objects: Obj[]): Obj[] {
  const names = GENERATED.map((n) => n.replace(/[-.]/g, '\\$&')).join('|');
  const text = JSON.stringify(objects).replace(new RegExp(`"(${names})-[a-z0-9]{10}"`, 'g'), '"$1"');
  return sortObjects(JSON.parse(text) as Obj[]);
}

const key = (o: Obj) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
const sortObjects = (objects: Obj[]) => [...objects].sort((a, b) => key(a).localeCompare(key(b)));

/** The kubernetes-validate command: MODELGATE_K8S_VALIDATE, else the project venv's; or why there is none. */
function validator(): { bin: string } | { missing: string } {
  if (process.env.MODELGATE_K8S_VALIDATE) return { bin: process.env.MODELGATE_K8S_VALIDATE };
  const bin = join(PROJECT_ROOT, '.venv', 'bin', 'kubernetes-validate');
  if (existsSync(bin)) return { bin };
  return { missing: `${bin} not found: bash scripts/ensure-python.sh installs it (python/requirements-k8s.txt)` };
}

/** Port number of a probe's or Service's (possibly named) port in a container. */
function portNumber(c: Container, port: number | string): number | undefined {
  return typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes', () => {
  let rendered: Obj[] = [];
  let renderedBy = 'the test loader';
  let tool: Awaited<ReturnType<typeof renderWithTool>>;
  const deployment = (name: string) => {
    const d = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === name) as Deployment | undefined;
    assert.ok(d, `Deployment ${name} rendered`);
    return d;
  };
  const deployments = () => rendered.filter((o): o is Deployment => o.kind === 'Deployment');
  const configMap = (name: string) => rendered.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name) as (Obj & { data: Record<string, string> }) | undefined;

  before(async () => {
    tool = await renderWithTool(DIR);
    if (tool) renderedBy = tool.tool;
    rendered = tool?.objects ?? renderWithLoader(DIR);
    process.stderr.write(`k8s-manifests: rendered ${rendered.length} objects with ${renderedBy}\n`);
  });

  test('when the kustomization is rendered, then it holds every object, in the modelgate namespace except the RBAC of the watched namespaces', () => {
    const names = rendered.map((o) => `${o.kind}/${GENERATED.includes(o.metadata.name.replace(/-[a-z0-9]{10}$/, '')) ? o.metadata.name.replace(/-[a-z0-9]{10}$/, '') : o.metadata.name}`);
    for (const want of [
      'Namespace/modelgate',
      'ServiceAccount/modelgate-worker',
      'ServiceAccount/modelgate-api',
      'Deployment/modelgate-worker',
      'Deployment/modelgate-api',
      'Service/modelgate-api',
      'Service/modelgate-api-pods',
      'PodDisruptionBudget/modelgate-worker',
      'PodDisruptionBudget/modelgate-api',
      'ConfigMap/modelgate-settings',
      'ConfigMap/modelgate-policy',
      'Role/modelgate-inferenceservice-reader',
      'RoleBinding/modelgate-inferenceservice-reader',
      'Role/modelgate-argocd-application-reader',
      'RoleBinding/modelgate-argocd-application-reader',
    ]) {
      assert.ok(names.includes(want), `${want} is rendered`);
    }
    for (const o of rendered) {
      if (CLUSTER_SCOPED.has(o.kind)) continue;
      const expected = ['Role', 'RoleBinding'].includes(o.kind) ? ['ml-prod', 'argocd'] : [NAMESPACE];
      assert.ok(expected.includes(o.metadata.namespace ?? ''), `${key(o)}: namespace ${o.metadata.namespace} (expected one of ${expected.join(', ')})`);
    }
    // Nothing in the directory is forgotten by the kustomization.
    const listed = new Set([...(KUSTOMIZATION.resources ?? []), ...(KUSTOMIZATION.transformers ?? []), 'kustomization.yaml']);
    const files = readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f));
    assert.deepEqual(files.filter((f) => !listed.has(f)), [], 'YAML files in deploy/kubernetes that kustomization.yaml does not list');
  });

  test('when kubectl or kustomize is installed, then the test loader renders the same objects', (t) => {
    if (!tool) return t.skip('neither kubectl nor kustomize on PATH: only the loader renders');
    assert.deepEqual(withoutHashes(renderWithLoader(DIR)), withoutHashes(tool.objects));
  });

  test('when validated offline against the Kubernetes schemas (strict: unknown fields rejected), then every object passes', async (t) => {
    const v = validator();
    if ('missing' in v) {
      // CI installs every python/requirements*.txt, so there a missing validator is a failure, not a skip.
      if (process.env.CI === 'true') assert.fail(`kubernetes-validate must run in CI: ${v.missing}`);
      process.stderr.write(`k8s-manifests: skipping schema validation: ${v.missing}\n`);
      return t.skip(v.missing);
    }
    const file = join(mkdtempSync(join(tmpdir(), 'modelgate-k8s-')), 'rendered.yaml');
    writeFileSync(file, rendered.map((o) => stringify(o)).join('---\n'));
    const args = ['--strict', ...K8S_VERSIONS.flatMap((ver) => ['-k', ver]), file];
    let out: string;
    try {
      const r = await run(v.bin, args, { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
      out = r.stdout + r.stderr;
    } catch (err) {
      const e = err as Error & { stdout?: string; stderr?: string };
      out = (e.stdout ?? '') + (e.stderr ?? '') || e.message;
    }
    // An unknown kind or apiVersion is only a WARN (exit 0) for the tool: here it fails like an invalid field.
    const problems = out.split('\n').filter((l) => /^(ERROR|WARN|FATAL)\b/.test(l) || /Traceback|Error:/.test(l));
    assert.deepEqual(problems, [], `kubernetes-validate ${args.join(' ')}`);
    const passed = new Set([...out.matchAll(/^INFO .* passed for resource (\S+) against version (\S+)$/gm)].map((m) => `${m[1]}@${m[2]}`));
    const expected = rendered.flatMap((o) => K8S_VERSIONS.map((ver) => `${o.kind.toLowerCase()}/${o.metadata.name}@${ver.split('.').slice(0, 2).join('.')}`));
    assert.deepEqual([...passed].sort(), [...new Set(expected)].sort(), 'each object validated against each version');
  });

  test('when env is set in a container, then modelgate knows every key (env names and envFrom ConfigMap keys)', () => {
    const known = knownConfigKeys();
    assert.ok(known.has('TEMPORAL_ADDRESS') && known.has('MODELGATE_METRICS_ADDRESS') && known.has('MODELGATE_GIT_WORKDIR'), 'config keys found');
    assert.deepEqual(stalePendingConfigKeys(known), [], 'now read by a config module: remove from PENDING_CONFIG_KEYS (test/support/config-keys.ts)');
    assert.deepEqual(deployments().map((d) => d.metadata.name).sort(), ['modelgate-api', 'modelgate-worker']);
    for (const d of deployments()) {
      for (const c of containersOf(d)) {
        const keys = (c.env ?? []).map((e) => e.name);
        for (const from of c.envFrom ?? []) {
          assert.ok(!from.secretRef, `${d.metadata.name}/${c.name}: envFrom secretRef hides which keys are set; reference each key with secretKeyRef`);
          const cm = from.configMapRef && configMap(from.configMapRef.name);
          assert.ok(cm, `${d.metadata.name}/${c.name}: envFrom ConfigMap ${from.configMapRef?.name} is rendered`);
          keys.push(...Object.keys(cm.data ?? {}));
        }
        assert.deepEqual(unknownConfigKeys(keys, known), [], `${d.metadata.name}/${c.name} sets keys no config module reads`);
        const dup = keys.filter((k, i) => keys.indexOf(k) !== i);
        assert.deepEqual(dup, [], `${d.metadata.name}/${c.name}: keys set twice`);
      }
    }
  });

  test('when the non-secret settings are loaded as each process would, then modelgate accepts them, the policy and the identity directory', () => {
    const files = mkdtempSync(join(tmpdir(), 'modelgate-k8s-config-'));
    for (const d of deployments()) {
      const spec = d.spec.template.spec;
      const [c] = spec.containers;
      const env: Record<string, string> = {};
      for (const from of c.envFrom ?? []) Object.assign(env, configMap(from.configMapRef!.name)?.data);
      for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
      // Paths inside a ConfigMap mount point at the ConfigMap's keys: read them from a local copy.
      for (const m of c.volumeMounts ?? []) {
        const cmName = spec.volumes?.find((v) => v.name === m.name)?.configMap?.name;
        if (!cmName) continue;
        const data = configMap(cmName)?.data ?? {};
        for (const [k, v] of Object.entries(env)) {
          if (!v.startsWith(`${m.mountPath}/`)) continue;
          const file = v.slice(m.mountPath.length + 1);
          assert.ok(file in data, `${d.metadata.name}: ${k}=${v}, but ConfigMap ${cmName} has no key ${file}`);
          writeFileSync(join(files, `${d.metadata.name}-${file}`), data[file]);
          env[k] = join(files, `${d.metadata.name}-${file}`);
        }
      }
      assert.ok(env.MODELGATE_POLICY_FILE && env.MODELGATE_IDENTITIES_FILE, `${d.metadata.name}: policy and identity directory come from the ConfigMap`);
      // Each throws ConfigError("KEY: reason") on a bad value.
      const config = loadConfig(env);
      assert.ok(config.temporal.address, `${d.metadata.name}: TEMPORAL_ADDRESS set`);
      assert.ok(config.mlflow.trackingUri, `${d.metadata.name}: MLFLOW_TRACKING_URI set`);
      loadActiveConfig(env);
      loadObservabilityConfig(env);
      loadGitopsConfig(env);
      loadK8sConfig(env);
      assert.ok(loadApiConfig(env).identity.directory, 'identity directory loads');
      assert.ok(loadPolicyFile(config.policyFile).models().length > 0, `${d.metadata.name}: the example policy loads`);
    }
  });

  test('when a container runs, then it is non-root (the image user), unprivileged, drops ALL capabilities, has a read-only root and resources', () => {
    const user = /^USER\s+(\S+)/m.exec(readFileSync(join(PROJECT_ROOT, 'Dockerfile'), 'utf8'))?.[1];
    // The `node` user of the node:*-slim images is uid 1000.
    const uid = { node: 1000 }[user ?? ''] ?? Number(user);
    assert.ok(Number.isInteger(uid) && uid > 0, `the Dockerfile's USER ${user} is a known non-root uid`);
    for (const d of deployments()) {
      const spec = d.spec.template.spec;
      for (const flag of ['hostNetwork', 'hostPID', 'hostIPC'] as const) assert.notEqual(spec[flag], true, `${d.metadata.name}: ${flag}`);
      assert.ok(!spec.volumes?.some((v) => v.hostPath), `${d.metadata.name}: no hostPath volumes`);
      for (const c of containersOf(d)) {
        const where = `${d.metadata.name}/${c.name}`;
        const sc = { ...spec.securityContext, ...c.securityContext };
        assert.equal(sc.runAsNonRoot, true, `${where}: runAsNonRoot`);
        assert.equal(sc.runAsUser, uid, `${where}: runAsUser is the image's user`);
        assert.equal(sc.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation false`);
        assert.notEqual(sc.privileged, true, `${where}: not privileged`);
        assert.ok(sc.capabilities?.drop?.includes('ALL'), `${where}: drops ALL capabilities`);
        assert.deepEqual(sc.capabilities?.add ?? [], [], `${where}: adds no capabilities`);
        assert.equal(sc.readOnlyRootFilesystem, true, `${where}: read-only root filesystem`);
        assert.equal(sc.seccompProfile?.type, 'RuntimeDefault', `${where}: seccomp RuntimeDefault`);
        for (const kind of ['requests', 'limits'] as const) {
          for (const r of ['cpu', 'memory']) assert.ok(c.resources?.[kind]?.[r], `${where}: resources.${kind}.${r}`);
        }
        // Writable paths are emptyDirs; ConfigMaps are mounted read-only.
        for (const m of c.volumeMounts ?? []) {
          const vol = spec.volumes?.find((v) => v.name === m.name);
          assert.ok(vol, `${where}: volume ${m.name} exists`);
          if (!m.readOnly) assert.ok(vol.emptyDir, `${where}: writable mount ${m.mountPath} is an emptyDir`);
          if (vol.configMap) assert.equal(m.readOnly, true, `${where}: ConfigMap ${vol.configMap.name} mounted read-only`);
        }
        const writable = (c.volumeMounts ?? []).filter((m) => !m.readOnly).map((m) => m.mountPath);
        for (const e of c.env ?? []) {
          if (['MODELGATE_DATA_DIR', 'MODELGATE_GIT_WORKDIR'].includes(e.name)) {
            assert.ok(writable.some((p) => e.value === p || e.value?.startsWith(`${p}/`)), `${where}: ${e.name}=${e.value} is on a writable mount`);
          }
        }
      }
    }
    const worker = deployment('modelgate-worker').spec.template.spec.containers[0];
    assert.ok(worker.env?.some((e) => e.name === 'MODELGATE_DATA_DIR'), 'the worker has a writable data directory (git caches)');
  });

  test('when a value is secret, then it is a secretKeyRef, never a literal in env, a ConfigMap or a Secret in the manifests', () => {
    assert.deepEqual(rendered.filter((o) => o.kind === 'Secret').map(key), [], 'no Secret objects: they are created apart (docs/operations.md)');
    for (const d of deployments()) {
      for (const c of containersOf(d)) {
        for (const e of c.env ?? []) {
          if (!SECRET_NAME.test(e.name) || NOT_SECRET.has(e.name)) continue;
          assert.equal(e.value, undefined, `${d.metadata.name}/${c.name}: ${e.name} has a literal value`);
          assert.ok(e.valueFrom?.secretKeyRef, `${d.metadata.name}/${c.name}: ${e.name} comes from a Secret`);
        }
      }
    }
    for (const o of rendered.filter((x) => x.kind === 'ConfigMap')) {
      const data = (o as { data?: Record<string, string> }).data ?? {};
      const secretLooking = Object.keys(data).filter((k) => SECRET_NAME.test(k) && !NOT_SECRET.has(k));
      assert.deepEqual(secretLooking, [], `ConfigMap ${o.metadata.name} holds secret-looking keys`);
    }
  });

  test('when the API and the worker are probed, then the API has /readyz and /healthz on 8080 and the worker the /metrics it serves', () => {
    const api = deployment('modelgate-api').spec.template.spec.containers[0];
    assert.deepEqual(api.command, ['node', 'dist/src/api/main.js']);
    const apiEnv = Object.fromEntries((api.env ?? []).map((e) => [e.name, e.value]));
    assert.equal(apiEnv.MODELGATE_API_HOST, '0.0.0.0', 'the API listens beyond the pod loopback');
    assert.equal(apiEnv.MODELGATE_API_PORT, '8080');
    for (const [probe, path] of [['readinessProbe', '/readyz'], ['livenessProbe', '/healthz']] as const) {
      const get = api[probe]?.httpGet;
      assert.ok(get, `API ${probe} is an httpGet`);
      assert.equal(get.path, path, `API ${probe} path`);
      assert.equal(portNumber(api, get.port), 8080, `API ${probe} port`);
    }

    const worker = deployment('modelgate-worker');
    const wc = worker.spec.template.spec.containers[0];
    assert.deepEqual(wc.command, ['node', 'dist/src/worker-main.js']);
    // What worker-main serves: GET /metrics on MODELGATE_METRICS_ADDRESS and MODELGATE_TEMPORAL_METRICS_ADDRESS.
    const env = Object.fromEntries((wc.env ?? []).map((e) => [e.name, e.value]));
    const served = ['MODELGATE_METRICS_ADDRESS', 'MODELGATE_TEMPORAL_METRICS_ADDRESS'].map((k) => {
      assert.match(env[k] ?? '', /^0\.0\.0\.0:\d+$/, `${k} listens on every pod address`);
      return Number(env[k]!.split(':')[1]);
    });
    assert.ok(wc.livenessProbe && wc.readinessProbe, 'the worker has liveness and readiness probes');
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const p = wc[probe];
      if (!p) continue;
      const port = portNumber(wc, p.httpGet?.port ?? p.tcpSocket?.port ?? -1);
      assert.ok(port !== undefined && served.includes(port), `worker ${probe} targets a port the worker serves (${served.join(', ')})`);
      if (p.httpGet) assert.equal(p.httpGet.path, '/metrics', `worker ${probe}: the only path it serves`);
    }
    assert.ok((worker.spec.template.spec.terminationGracePeriodSeconds ?? 30) >= 60, 'the worker gets time to drain on SIGTERM');
  });

  test('when the objects are wired together, then Services, disruption budgets, replicas, service accounts and image line up', () => {
    const pods = deployments().map((d) => ({ name: d.metadata.name, labels: d.spec.template.metadata.labels, spec: d.spec.template.spec }));
    for (const d of deployments()) {
      assert.equal(d.spec.replicas, 2, `${d.metadata.name}: 2 replicas`);
      assert.ok(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), `${d.metadata.name}: selector matches its pods`);
      const pdbs = rendered.filter((o): o is Pdb => o.kind === 'PodDisruptionBudget').filter((o) => matches(o.spec.selector.matchLabels, d.spec.template.metadata.labels));
      assert.equal(pdbs.length, 1, `${d.metadata.name}: exactly one PodDisruptionBudget selects its pods`);
      const pdb = pdbs[0].spec;
      assert.ok(pdb.maxUnavailable === 1 || pdb.minAvailable === 1, `${d.metadata.name}: PDB lets one pod go at a time`);
      for (const c of containersOf(d)) assert.equal(c.image, 'modelgate:local', `${d.metadata.name}/${c.name}: the image from kustomization images:`);
      const sa = d.spec.template.spec.serviceAccountName;
      assert.ok(rendered.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === sa), `${d.metadata.name}: ServiceAccount ${sa} is rendered`);
    }

    const api = pods.find((p) => p.name === 'modelgate-api')!;
    for (const [name, headless] of [['modelgate-api', false], ['modelgate-api-pods', true]] as const) {
      const svc = rendered.find((o) => o.kind === 'Service' && o.metadata.name === name) as
        | (Obj & { spec: { type?: string; clusterIP?: string; selector: Record<string, string>; ports: Array<{ port: number; targetPort?: number | string }> } })
        | undefined;
      assert.ok(svc, `Service ${name}`);
      assert.equal(svc.spec.type ?? 'ClusterIP', 'ClusterIP');
      assert.equal(svc.spec.clusterIP === 'None', headless, `${name}: headless ${headless}`);
      assert.deepEqual(pods.filter((p) => matches(svc.spec.selector, p.labels)).map((p) => p.name), ['modelgate-api'], `${name} selects the API pods only`);
      assert.deepEqual(svc.spec.ports.map((p) => [p.port, portNumber(api.spec.containers[0], p.targetPort ?? p.port)]), [[8080, 8080]], `${name}: 8080 → the API's 8080`);
    }

    // The worker runs as the ServiceAccount rbac.yaml binds, and tells the API Service about Production changes.
    const worker = pods.find((p) => p.name === 'modelgate-worker')!;
    for (const rb of rendered.filter((o) => o.kind === 'RoleBinding')) {
      assert.deepEqual(rb.subjects, [{ kind: 'ServiceAccount', name: worker.spec.serviceAccountName, namespace: NAMESPACE }], `${rb.metadata.name} binds the worker's ServiceAccount`);
    }
    // Every API replica hears of a Production change: the headless Service's name, resolved to each pod's address.
    const env = (k: string) => worker.spec.containers[0].env!.find((e) => e.name === k)?.value;
    const invalidate = new URL(env('MODELGATE_INVALIDATE_URL')!);
    assert.equal(`${invalidate.hostname}:${invalidate.port}`, 'modelgate-api-pods:8080', 'MODELGATE_INVALIDATE_URL is the headless API Service');
    assert.equal(env('MODELGATE_INVALIDATE_DNS'), 'true', 'the worker resolves it to every API pod');
  });

  test('when docs/operations.md says which Secrets to create, then it names exactly the Secrets and keys the Deployments reference', () => {
    const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'operations.md'), 'utf8');
    const section = /^## Install on Kubernetes\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(doc)?.[1];
    assert.ok(section, 'docs/operations.md has a section "## Install on Kubernetes"');
    assert.match(section, /kubectl apply -k deploy\/kubernetes/);
    const attrs = /for sa in ([^;]+);/.exec(section);
    assert.ok(attrs, 'the section registers the search attributes');
    assert.deepEqual(Object.fromEntries(attrs[1].trim().split(/\s+/).map((p) => p.split('=') as [string, string])), SEARCH_ATTRIBUTES, "the code's search attributes");
    // Every `kubectl create secret generic NAME …` command (with its continuation lines) and its keys.
    const documented = new Map<string, Set<string>>();
    for (const m of section.matchAll(/kubectl\b[^\n]*?create secret generic ([a-z0-9-]+)((?:[^\n]*\\\n)*[^\n]*)/g)) {
      const keys = documented.get(m[1]) ?? new Set<string>();
      for (const k of m[0].matchAll(/--from-(?:literal|file)=([A-Z][A-Z0-9_]*)=/g)) keys.add(k[1]);
      documented.set(m[1], keys);
    }
    const referenced = new Map<string, Map<string, boolean>>();
    for (const d of deployments()) {
      for (const c of containersOf(d)) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (!ref) continue;
          assert.equal(ref.key, e.name, `${d.metadata.name}: the Secret key is the env name (${e.name})`);
          const keys = referenced.get(ref.name) ?? new Map<string, boolean>();
          keys.set(ref.key, (keys.get(ref.key) ?? true) && ref.optional === true);
          referenced.set(ref.name, keys);
        }
      }
    }
    assert.deepEqual([...documented.keys()].sort(), [...referenced.keys()].sort(), 'the Secrets the docs create are the ones referenced');
    for (const [secret, keys] of referenced) {
      for (const [k, optional] of keys) {
        if (!optional) assert.ok(documented.get(secret)?.has(k), `docs create ${secret} with its required key ${k}`);
        else assert.match(section, new RegExp(`\\b${k}\\b`), `docs mention the optional key ${k} of ${secret}`);
      }
      for (const k of documented.get(secret) ?? []) assert.ok(keys.has(k), `docs put ${k} in ${secret}, which no Deployment reads from there`);
    }
  });
});
