/**
 * The dry run (#13), against the real Temporal and MLflow and the contract-checked GitHub double, through the
 * API route and the CLI: registry and GitOps mode, newer vs older than serving (rollback), four-eyes against
 * the registrant (known, and unknown: fail closed), quorum progress of a running lifecycle, defaults for an
 * unlisted model, a supplied policy that is not deployed — and no side effect anywhere: every MLflow request
 * goes through a recording proxy, every GitHub request is recorded by the double, and every Temporal RPC of the
 * dry run's client is recorded by a gRPC interceptor; the test asserts none of them wrote.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { request } from 'undici';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { getState } from '../src/client.js';
import { loadApiConfig } from '../src/config/api.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { createDryRun } from '../src/dryrun/compute.js';
import { lifecycleView } from '../src/dryrun/lifecycle-view.js';
import type { DryRunReport } from '../src/dryrun/types.js';
import type { MlflowClient } from '../src/mlflow/client.js';
import { ALIAS, TAG } from '../src/mlflow/tags.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { GitHubDouble } from './support/github-double.js';
import { isvcManifest } from './support/github-fixtures.js';
import { approve, startLifecycle, testApiEnv, testDirectory } from './support/identity.js';
import { startRecordingProxy, type RecordingProxy } from './support/recording-proxy.js';
import { connectTestEnv, testStack, unique } from './support/stack.js';
import { registerTrainedVersion, testMlflow } from './support/fixtures.js';
import { eventually, startTestWorker, type RunningWorker } from './support/worker.js';

const TOKENS = {
  alice: 'tok-dry-alice-0123456789',
  bob: 'tok-dry-bob-0123456789',
  carol: 'tok-dry-carol-0123456789',
  dana: 'tok-dry-dana-0123456789',
  noRead: 'tok-dry-mallory-0123456789',
};
const GH_TOKEN = 'ghp_modelgatedryruntoken';
const CLI = join(PROJECT_ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * MLflow endpoints that only read. MLflow also accepts POST on its search endpoints (a body instead of a query
 * string): those are reads too and listed explicitly; any other POST/PATCH/DELETE is a write.
 */
const MLFLOW_POST_READS = new Set(['registered-models/search', 'model-versions/search', 'runs/search', 'experiments/search', 'logged-models/search']);
function isMlflowWrite(method: string, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  const endpoint = /\/api\/2\.0\/mlflow\/([^?]+)/.exec(path)?.[1] ?? path;
  return !(method === 'POST' && MLFLOW_POST_READS.has(endpoint));
}
/** Temporal RPCs that change nothing; anything else the dry run's client sends is a failure. */
const TEMPORAL_READS = new Set(['getSystemInfo', 'describeNamespace', 'describeWorkflowExecution', 'queryWorkflow']);

/** The connection as the client sees it, with every call of a WorkflowService method recorded (any RPC, not only the SDK's). */
function recordingConnection(connection: Connection, calls: string[]): Connection {
  const service = new Proxy(connection.workflowService, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]): unknown => {
        calls.push(prop);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return new Proxy(connection, {
    get(target, prop) {
      if (prop === 'workflowService') return service;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe('dry run: what would happen if this version were promoted now', () => {
  const regModel = unique('dry-reg');
  const backModel = unique('dry-back');
  const quorumModel = unique('dry-q2');
  const gitModel = unique('dry-git');
  const unlisted = unique('dry-unlisted');
  const manifestPath = `clusters/prod/${gitModel}.yaml`;
  const gitopsYaml = (repo: string) => `
    deployment:
      mode: gitops
      gitops:
        provider: github
        repo: ${repo}
        baseBranch: main
        manifestPath: ${manifestPath}
        namespace: models
        inferenceService: ${gitModel}
        storageUriPrefixMap: [{ from: "mlflow-artifacts:/", to: "s3://mlflow/" }]
      kserve: { deploymentMode: Serverless, rolloutDeadline: 15m, rollback: auto, argocdApplication: { namespace: argocd, name: ml-prod } }`;
  const deployedPolicy = `
defaults:
  evaluation:
    thresholds: ["accuracy >= 0.9"]
    noRegression: [{ metric: accuracy, direction: higher_is_better, tolerance: 0.01 }]
  approval: { approvers: [alice, bob], fourEyes: true, quorum: 1, expiresAfter: 1h }
  deployment: { mode: registry }
  rollback: { quorum: 1, fourEyes: false }
models:
  ${regModel}: {}
  ${backModel}: {}
  ${quorumModel}: { approval: { approvers: [alice, bob, carol], quorum: 2 } }
  ${gitModel}:${gitopsYaml('acme/gitops')}
`;

  let env: TestWorkflowEnvironment;
  let mlflow: MlflowClient;
  let proxy: RecordingProxy;
  let proxied: MlflowClient;
  let double: GitHubDouble;
  let worker: RunningWorker;
  let readConnection: Connection;
  let api: ApiServer;
  let base: string;
  const rpcs: string[] = [];
  /** MLflow without auth has no user_id: the proxy answers as MLflow with auth would for these versions. */
  const registeredBy = new Map<string, string>();
  const tokenFiles: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), 'modelgate-dry-run-'));

  before(async () => {
    env = await connectTestEnv();
    mlflow = testMlflow(testStack().mlflowUri);
    proxy = await startRecordingProxy(testStack().mlflowUri);
    proxy.rewriteAnswer = (r, answer) => {
      const mv = answer.model_version as { name?: string; version?: string } | undefined;
      const user = mv && r.path.includes('model-versions/get?') ? registeredBy.get(`${mv.name}/${mv.version}`) : undefined;
      return user ? { ...answer, model_version: { ...mv, user_id: user } } : undefined;
    };
    proxied = testMlflow(proxy.url);
    double = await GitHubDouble.start({ owner: 'acme', repo: 'gitops', token: GH_TOKEN, files: { [manifestPath]: isvcManifest(gitModel), 'README.md': 'gitops\n' } });
    const set = parsePolicy(deployedPolicy, 'deployed-policy.yaml');
    worker = await startTestWorker(env, { mlflow, policies: set });

    // The dry run's own Temporal client: every WorkflowService RPC it sends is recorded by name.
    readConnection = await Connection.connect({ address: testStack().temporalAddress });
    const readClient = new Client({ connection: recordingConnection(readConnection, rpcs), namespace: 'default' });

    const dryRun = createDryRun({
      mlflow: proxied,
      policies: () => set,
      identities: testDirectory(),
      lifecycle: lifecycleView(readClient),
      gitops: createProviderFactory(loadGitopsConfig({ GITHUB_TOKEN: GH_TOKEN, GITHUB_API_URL: double.baseUrl })),
    });
    const tokens = `${TOKENS.alice}=alice,${TOKENS.bob}=bob,${TOKENS.carol}=carol,${TOKENS.dana}=dana,${TOKENS.noRead}=mallory:promote`;
    // The API's own Temporal client is the test's: the dry run must not need it at all.
    api = buildServer({ client: env.client, config: loadApiConfig(testApiEnv({ MODELGATE_API_TOKENS: tokens })), logger: createLogger('silent'), dryRun, taskQueue: worker.taskQueue });
    await api.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
    for (const [who, t] of Object.entries(TOKENS)) {
      tokenFiles[who] = join(dir, who);
      writeFileSync(tokenFiles[who], `${t}\n`, { mode: 0o600 });
    }

    // regModel: v1 serves (0.93); v2 is better (registered by bob, an approver); v3 is worse; v4 has no known registrant.
    await registerTrainedVersion(mlflow, regModel, { metrics: { accuracy: 0.93 } });
    await mlflow.setAlias(regModel, ALIAS.production, 1);
    await mlflow.setVersionTag(regModel, 1, TAG.promotedAt, '2026-11-01T00:00:00.000Z');
    await registerTrainedVersion(mlflow, regModel, { metrics: { accuracy: 0.95 } });
    await registerTrainedVersion(mlflow, regModel, { metrics: { accuracy: 0.8 } });
    await registerTrainedVersion(mlflow, regModel, { metrics: { accuracy: 0.95 } });
    for (const v of [1, 2, 3]) registeredBy.set(`${regModel}/${v}`, 'bob');
    // backModel: v1 served before, v2 never did, v3 serves now.
    for (let v = 1; v <= 3; v++) await registerTrainedVersion(mlflow, backModel, { metrics: { accuracy: 0.93 } });
    await mlflow.setVersionTag(backModel, 1, TAG.promotedAt, '2026-10-01T00:00:00.000Z');
    await mlflow.setVersionTag(backModel, 3, TAG.promotedAt, '2026-11-01T00:00:00.000Z');
    await mlflow.setAlias(backModel, ALIAS.production, 3);
    for (const v of [1, 2, 3]) registeredBy.set(`${backModel}/${v}`, 'bob');
    // gitModel and the unlisted model: one version each, nothing serving.
    await registerTrainedVersion(mlflow, gitModel, { metrics: { accuracy: 0.95 } });
    registeredBy.set(`${gitModel}/1`, 'carol');
    await registerTrainedVersion(mlflow, unlisted, { metrics: { accuracy: 0.95 } });
    registeredBy.set(`${unlisted}/1`, 'dana');
    // quorumModel: a running lifecycle awaiting approval (quorum 2), requested by carol, approved by alice.
    await registerTrainedVersion(mlflow, quorumModel, { metrics: { accuracy: 0.95 } });
    await startLifecycle(env.client, quorumModel, 1, { source: 'test', by: 'carol' }, worker.taskQueue);
    await eventually(`${quorumModel} awaiting approval`, async () => ((await getState(env.client, quorumModel, 1)).phase === 'awaiting_approval' ? true : undefined), 120_000);
    await approve(env.client, quorumModel, 1, { by: 'alice' });
    // regModel v3's lifecycle ran and ended: the gate rejected it.
    await startLifecycle(env.client, regModel, 3, { source: 'test', by: 'carol' }, worker.taskQueue);
    await eventually(`${regModel} v3 rejected`, async () => ((await getState(env.client, regModel, 3)).phase === 'done' ? true : undefined), 120_000);
    // Only what the dry runs do from here on is judged.
    proxy.requests.length = 0;
    double.requests.length = 0;
    rpcs.length = 0;
  });

  after(async () => {
    await api?.close();
    await worker?.stop();
    await readConnection?.close();
    await double?.close();
    await proxied?.close();
    await proxy?.close();
    await mlflow?.close();
    await env?.teardown();
  });

  async function dry(model: string, version: number | string, who: keyof typeof TOKENS, body: unknown = {}): Promise<{ status: number; json: DryRunReport & { code?: string; message?: string } }> {
    const res = await request(`${base}/v1/models/${encodeURIComponent(model)}/versions/${version}/dry-run`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKENS[who]}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.statusCode, json: (await res.body.json()) as DryRunReport & { code?: string; message?: string } };
  }

  test('when a version newer than the serving one passes the gate, then it would await approval, judged against the serving version, and an approver may approve', async () => {
    const r = await dry(regModel, 2, 'alice');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.outcome, 'would_await_approval');
    assert.equal(r.json.move.kind, 'promote');
    assert.deepEqual(r.json.serving, { version: 1, source: 'registry' });
    assert.equal(r.json.evaluation.result?.passed, true);
    assert.equal(r.json.evaluation.result?.baselineVersion, 1);
    assert.deepEqual(r.json.approval.registrants, ['bob']);
    assert.equal(r.json.approval.reapproval.needed, false);
    assert.deepEqual(r.json.approval.caller, { identity: 'alice', may: true });
    assert.equal(r.json.policy.source, 'model');
    assert.equal(r.json.policy.file, 'deployed');
    assert.equal(r.json.rollout.mode, 'registry');
    assert.equal(r.json.lifecycle, undefined);
    assert.deepEqual(r.json.blockers, []);
  });

  test('when the caller registered the version, then four-eyes blocks them; a person not in the list is told so', async () => {
    const bob = await dry(regModel, 2, 'bob');
    assert.equal(bob.status, 200);
    assert.deepEqual(bob.json.approval.caller, { identity: 'bob', may: false, code: 'self_approval', reason: 'you registered this version (four-eyes)' });
    const carol = await dry(regModel, 2, 'carol');
    assert.equal(carol.json.approval.caller?.may, false);
    assert.equal(carol.json.approval.caller?.code, 'not_an_approver');
    assert.match(carol.json.approval.caller?.reason ?? '', /not in the approver list \(alice, bob\)/);
  });

  test('when the version is worse than the serving one and its lifecycle ended, then the gate would reject it again, with the reasons, and a new run would need new approvals', async () => {
    const r = await dry(regModel, 3, 'alice');
    assert.equal(r.json.outcome, 'rejected_by_evaluation');
    assert.deepEqual(r.json.lifecycle, { workflowId: `modelgate/${regModel}/v3`, status: 'ended', phase: 'done', outcome: 'rejected_by_evaluation' });
    assert.equal(r.json.approval.reapproval.needed, true);
    assert.match(r.json.approval.reapproval.reason, /its lifecycle ended \(rejected_by_evaluation\): promoting it again/);
    assert.equal(r.json.evaluation.result?.passed, false);
    assert.ok(r.json.blockers.some((b) => /accuracy = 0.8, needs >= 0.9/.test(b)), r.json.blockers.join('\n'));
    assert.ok(r.json.blockers.some((b) => /below Production v1's 0.93/.test(b)), r.json.blockers.join('\n'));
  });

  test('when nobody knows who registered the version, then four-eyes cannot be satisfied and nobody may approve (fail closed, not an error)', async () => {
    const r = await dry(regModel, 4, 'alice');
    assert.equal(r.status, 200);
    assert.equal(r.json.outcome, 'no_approver_possible');
    assert.equal(r.json.approval.fourEyesSatisfiable, false);
    assert.deepEqual(r.json.approval.registrants, []);
    assert.equal(r.json.approval.caller?.code, 'unknown_registrant');
  });

  test('when the version is older than the serving one and served before, then it would be a rollback under the rollback rules, evaluation skipped, approvals anew', async () => {
    const r = await dry(backModel, 1, 'bob');
    assert.equal(r.json.move.kind, 'rollback');
    assert.match(r.json.move.detail, /modelgate rollback/);
    assert.equal(r.json.evaluation.skipped, true);
    assert.equal(r.json.evaluation.result, undefined);
    assert.equal(r.json.approval.reapproval.needed, true);
    // rollback: { fourEyes: false }: the registrant may approve a rollback.
    assert.equal(r.json.approval.fourEyes, false);
    assert.deepEqual(r.json.approval.caller, { identity: 'bob', may: true });
    assert.equal(r.json.outcome, 'would_await_approval');
  });

  test('when the version is older than the serving one and never served, then it cannot be promoted; the serving version itself would change nothing', async () => {
    const older = await dry(backModel, 2, 'alice');
    assert.equal(older.json.outcome, 'not_promotable');
    assert.equal(older.json.move.kind, 'refused');
    assert.match(older.json.blockers[0], /version 3 serves and is newer than 2/);
    const same = await dry(backModel, 3, 'alice');
    assert.equal(same.json.outcome, 'already_serving');
    assert.equal(same.json.move.kind, 'none');
  });

  test('when a lifecycle is awaiting approval with quorum 2 and alice approved, then the report shows the round; alice already approved, bob may, carol requested it', async () => {
    const alice = await dry(quorumModel, 1, 'alice');
    assert.equal(alice.status, 200, JSON.stringify(alice.json));
    assert.deepEqual(alice.json.lifecycle && { status: alice.json.lifecycle.status, phase: alice.json.lifecycle.phase }, { status: 'running', phase: 'awaiting_approval' });
    assert.equal(alice.json.approval.round, 1);
    assert.deepEqual(alice.json.approval.approvedBy, ['alice']);
    assert.equal(alice.json.approval.quorum, 2);
    assert.deepEqual(alice.json.approval.caller, { identity: 'alice', may: false, code: 'already_approved', reason: 'quorum 2: alice already approved; you already approved' });
    const bob = await dry(quorumModel, 1, 'bob');
    assert.deepEqual(bob.json.approval.caller, { identity: 'bob', may: true });
    assert.match(bob.json.approval.reapproval.reason, /round 1 is open: alice already approved/);
    const carol = await dry(quorumModel, 1, 'carol');
    assert.equal(carol.json.approval.caller?.code, 'self_approval');
    assert.deepEqual(carol.json.approval.registrants, ['carol']);
    const dana = await dry(quorumModel, 1, 'dana');
    assert.equal(dana.json.approval.caller?.code, 'not_an_approver');
  });

  test('when the model is not in the policy, then the report says so and shows the defaults it would get', async () => {
    const r = await dry(unlisted, 1, 'alice');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.policy.source, 'defaults');
    assert.equal(r.json.policy.effective.model, unlisted);
    assert.deepEqual(r.json.policy.effective.approval.approvers, ['alice', 'bob']);
    assert.ok(r.json.notes.some((n) => /not under models:/.test(n)));
  });

  test('when a policy file that is not deployed is supplied, then it changes the answer for this report only', async () => {
    const supplied = deployedPolicy.replace('approvers: [alice, bob]', 'approvers: [carol]');
    const r = await dry(regModel, 2, 'carol', { policyYaml: supplied });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.policy.file, 'supplied');
    assert.deepEqual(r.json.approval.caller, { identity: 'carol', may: true });
    const again = await dry(regModel, 2, 'carol');
    assert.equal(again.json.approval.caller?.may, false, 'the deployed policy is unchanged');
  });

  test('when the supplied policy is invalid, then 400 invalid_policy names the line and column; too large or unknown keys are refused too', async () => {
    const bad = await dry(regModel, 2, 'alice', { policyYaml: 'defaults:\n  approval: { approvers: [alice], quorum: zero, expiresAfter: 1h }\n  deployment: { mode: registry }\n' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'invalid_policy');
    assert.match(bad.json.message ?? '', /^supplied policy:2:\d+: /);
    const empty = await dry(regModel, 2, 'alice', { policyYaml: '  \n' });
    assert.equal(empty.json.code, 'invalid_policy');
    const huge = await dry(regModel, 2, 'alice', { policyYaml: `# ${'x'.repeat(70_000)}\n` });
    assert.equal(huge.status, 400);
    assert.equal(huge.json.code, 'invalid_body');
    const tooLarge = await dry(regModel, 2, 'alice', { policyYaml: `# ${'x'.repeat(200_000)}\n` });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.json.code, 'payload_too_large');
    const extra = await dry(regModel, 2, 'alice', { policyYaml: deployedPolicy, run: true });
    assert.equal(extra.json.code, 'invalid_body');
  });

  test('when the model or version does not exist, or the credential lacks read, then 404 not_found / 403 insufficient_scope with one line', async () => {
    const noModel = await dry(unique('dry-none'), 1, 'alice');
    assert.equal(noModel.status, 404);
    assert.equal(noModel.json.code, 'not_found');
    assert.match(noModel.json.message ?? '', /no registered model named/);
    const noVersion = await dry(regModel, 99, 'alice');
    assert.equal(noVersion.status, 404);
    assert.match(noVersion.json.message ?? '', /no version 99/);
    const badVersion = await dry(regModel, 'x', 'alice');
    assert.equal(badVersion.status, 400);
    assert.equal(badVersion.json.code, 'invalid_params');
    const scope = await dry(regModel, 2, 'noRead');
    assert.equal(scope.status, 403);
    assert.equal(scope.json.code, 'insufficient_scope');
  });

  test('when the model deploys through GitOps, then the report carries the PR title, the manifest diff of the base branch and the rollout it would wait for', async () => {
    const r = await dry(gitModel, 1, 'alice');
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const g = r.json.gitops!;
    assert.equal(g.error, undefined, g.error);
    assert.equal(g.currentStorageUri, `s3://models/${gitModel}/v0`);
    assert.match(g.proposedStorageUri, /^s3:\/\/mlflow\//);
    assert.match(g.diff, new RegExp(`^--- a/${manifestPath}\\n\\+\\+\\+ b/${manifestPath}\\n@@ `));
    assert.match(g.diff, /\n- {6}storageUri: s3:\/\/models\/.*\/v0 {3}# first version\n/);
    assert.match(g.diff, /\n\+ {6}storageUri: s3:\/\/mlflow\//);
    assert.match(g.diff, /\n\+ {4}modelgate\.io\/version: "?1"?\n/);
    assert.equal(r.json.rollout.mode, 'gitops');
    assert.match(r.json.rollout.waitsFor, /ArgoCD Application argocd\/ml-prod .*InferenceService models\/.* Ready .* within 15m/);
    assert.equal(r.json.approval.caller?.may, true, 'carol registered it, alice may approve');
    assert.deepEqual(double.problems, []);
  });

  test('when a supplied policy points GitOps at a repository the deployed policy does not use, then that repository is not read', async () => {
    const supplied = deployedPolicy.replace('repo: acme/gitops', 'repo: acme/secrets');
    const before = double.requests.length;
    const r = await dry(gitModel, 1, 'alice', { policyYaml: supplied });
    assert.equal(r.status, 200);
    assert.match(r.json.gitops?.error ?? '', /acme\/secrets is not one the deployed policy deploys through/);
    assert.equal(double.requests.length, before, 'no request reached the Git host');
  });

  test('when the CLI runs dry-run, then it prints the report (or --json), and bad input exits non-zero with one line', async () => {
    const json = await cli(['dry-run', regModel, '2', '--json'], 'bob');
    assert.equal(json.code, 0, json.stderr);
    const report = JSON.parse(json.stdout) as DryRunReport;
    assert.equal(report.approval.caller?.code, 'self_approval');
    const human = await cli(['dry-run', gitModel, '1'], 'alice');
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^dry run: .* would pass the gate and wait for approval \(nothing was changed\)/);
    assert.match(human.stdout, /you \(alice\) may approve/);
    assert.match(human.stdout, /\n {2}\+ {6}storageUri: s3:\/\/mlflow\//);
    const file = join(dir, 'carol-policy.yaml');
    writeFileSync(file, deployedPolicy.replace('approvers: [alice, bob]', 'approvers: [carol]'));
    const tried = await cli(['dry-run', regModel, '2', '--policy', file], 'carol');
    assert.equal(tried.code, 0, tried.stderr);
    assert.match(tried.stdout, /supplied, not deployed/);
    assert.match(tried.stdout, /you \(carol\) may approve/);
    const badFile = join(dir, 'bad-policy.yaml');
    writeFileSync(badFile, 'defaults: [\n');
    oneLineError(await cli(['dry-run', regModel, '2', '--policy', badFile], 'alice'), /^modelgate: supplied policy:\d+:\d+: /);
    oneLineError(await cli(['dry-run', regModel, '2', '--policy', join(dir, 'missing.yaml')], 'alice'), /^modelgate: --policy .*missing\.yaml: cannot read it \(no such file\)$/);
    oneLineError(await cli(['dry-run', regModel, 'two'], 'alice'), /^modelgate: version must be a positive integer \(got "two"\)$/);
    oneLineError(await cli(['dry-run', regModel, '99'], 'alice'), /^modelgate: MLflow has no version 99 of model /);
  });

  test('when every dry run above is done, then MLflow saw no write, the Git host no write, and Temporal no start, signal or update from the dry run', () => {
    assert.ok(proxy.requests.length > 0, 'the dry runs went through the proxy');
    assert.deepEqual(proxy.requests.filter((r) => isMlflowWrite(r.method, r.path)).map((r) => `${r.method} ${r.path}`), []);
    assert.ok(double.requests.length > 0, 'the GitOps dry runs read the base branch');
    assert.deepEqual(double.requests.filter((r) => r.method !== 'GET').map((r) => `${r.method} ${r.path}`), []);
    assert.ok(rpcs.includes('describeWorkflowExecution'), `the interceptor saw the reads: ${rpcs.join(', ')}`);
    assert.deepEqual(rpcs.filter((m) => !TEMPORAL_READS.has(m)), []);
  });

  test('when the MLflow write classifier is asked, then GET and the POST search endpoints read and every other POST/PATCH/DELETE writes', () => {
    assert.equal(isMlflowWrite('GET', '/api/2.0/mlflow/model-versions/get?name=a&version=1'), false);
    assert.equal(isMlflowWrite('POST', '/api/2.0/mlflow/registered-models/search'), false);
    assert.equal(isMlflowWrite('POST', '/api/2.0/mlflow/model-versions/search'), false);
    assert.equal(isMlflowWrite('POST', '/api/2.0/mlflow/model-versions/set-tag'), true);
    assert.equal(isMlflowWrite('POST', '/api/2.0/mlflow/registered-models/alias'), true);
    assert.equal(isMlflowWrite('DELETE', '/api/2.0/mlflow/registered-models/alias'), true);
    assert.equal(isMlflowWrite('PATCH', '/api/2.0/mlflow/registered-models/update'), true);
  });

  interface Ran {
    code: number;
    stdout: string;
    stderr: string;
  }

  function cli(args: string[], who: keyof typeof TOKENS): Promise<Ran> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, ...args],
        {
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: testStack().temporalAddress,
            MLFLOW_TRACKING_URI: testStack().mlflowUri,
            MODELGATE_API_URL: base,
            MODELGATE_TOKEN_FILE: tokenFiles[who],
          },
          timeout: 120_000,
        },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });
  }

  function oneLineError(r: Ran, pattern: RegExp): void {
    assert.notEqual(r.code, 0, r.stdout);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
    assert.match(lines[0], pattern);
  }
});
