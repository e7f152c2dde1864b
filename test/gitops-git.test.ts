/**
 * GitOps through a plain git remote: real bare repositories on disk, modelgate's provider on one side and
 * "humans" with ordinary clones on the other. Also the manifest editor and the PR text, which both providers
 * share.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { createGitopsActivities } from '../src/activities/gitops.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { createGitRunner, type GitRunner } from '../src/gitops/git-cli.js';
import { initLocalGitopsRepo, sampleInferenceService } from '../src/gitops/local-repo.js';
import { applyServingFields, mapStorageUri, readServingFields, removeInferenceService } from '../src/gitops/manifest.js';
import { promotionBody } from '../src/gitops/pr-text.js';
import { promotionBranch, revertBranch } from '../src/gitops/provider.js';
import type { MlflowRegistry, ModelVersion, Run } from '../src/mlflow/types.js';
import type { IdentityRef } from '../src/identity/types.js';
import type { GitopsPolicy } from '../src/policy/types.js';
import { crdPath, crdSchemasMissing } from './support/k8s-crds.js';
import { unique } from './support/stack.js';

const root = mkdtempSync(join(tmpdir(), 'modelgate-gitops-git-'));
after(() => rmSync(root, { recursive: true, force: true }));

const HUMAN = { GIT_AUTHOR_NAME: 'Hannah Human', GIT_AUTHOR_EMAIL: 'hannah@example.com', GIT_COMMITTER_NAME: 'Hannah Human', GIT_COMMITTER_EMAIL: 'hannah@example.com' };

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: { ...process.env, ...HUMAN, GIT_TERMINAL_PROMPT: '0' }, encoding: 'utf8' }).trim();
}

function clone(remote: string): string {
  const dir = mkdtempSync(join(root, 'clone-'));
  git(root, 'clone', '--quiet', remote, dir);
  return dir;
}

function fakeMlflow(): Pick<MlflowRegistry, 'getDownloadUri' | 'getModelVersion' | 'getRun'> {
  return {
    getModelVersion(name, version): Promise<ModelVersion> {
      return Promise.resolve({ name, version, creation_timestamp: 0, current_stage: 'Staging', source: `models:/m-${version}`, run_id: `run${version}abc`, status: 'READY', tags: {}, aliases: [] });
    },
    getDownloadUri(_name, version) {
      return Promise.resolve(`mlflow-artifacts:/7/models/m-${version}/artifacts`);
    },
    getRun(runId): Promise<Run> {
      return Promise.resolve({ run_id: runId, experiment_id: '7', status: 'FINISHED', metrics: {}, params: {}, tags: {} });
    },
  };
}

interface Fixture {
  remote: string;
  policy: GitopsPolicy;
  model: string;
  activities: ReturnType<typeof createGitopsActivities>;
}

const MARKER_SECRET = 'gitops-git-test-marker-secret';

async function fixture(
  opts: {
    runGit?: GitRunner;
    workdir?: string;
    remote?: string;
    model?: string;
    mergeMethod?: GitopsPolicy['mergeMethod'];
    markerSecret?: string;
    identities?: { byGithubLogin(login: string): IdentityRef | undefined };
  } = {},
): Promise<Fixture> {
  const model = opts.model ?? unique('fraud');
  let remote = opts.remote;
  let manifestPath = `inferenceservices/${model}.yaml`;
  if (!remote) {
    const local = await initLocalGitopsRepo(join(root, `${unique('remote')}.git`), { model, namespace: 'models', name: model });
    remote = local.repo;
    manifestPath = local.manifestPath;
  }
  const policy: GitopsPolicy = {
    provider: 'git',
    repo: remote,
    baseBranch: 'main',
    manifestPath,
    namespace: 'models',
    inferenceService: model,
    mergeMethod: opts.mergeMethod ?? 'merge',
    storageUriPrefixMap: [{ from: 'mlflow-artifacts:/', to: 's3://mlflow/' }],
    reapproveOnChange: true,
  };
  const cfg = loadGitopsConfig({ MODELGATE_GIT_WORKDIR: opts.workdir ?? mkdtempSync(join(root, 'work-')) });
  const factory = createProviderFactory(cfg, { runGit: opts.runGit });
  const activities = createGitopsActivities({
    providerFor: factory.providerFor,
    mlflow: fakeMlflow(),
    links: { mlflowUiUrl: 'http://mlflow.example', temporalUiUrl: 'http://temporal.example', namespace: 'default' },
    markerSecret: opts.markerSecret ?? MARKER_SECRET,
    identities: opts.identities,
  });
  return { remote, policy, model, activities };
}

async function rejectsWith(p: Promise<unknown>, type: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, type);
    assert.equal(err.nonRetryable, true);
    if (message) assert.match(err.message, message);
    return true;
  });
}

const evaluation = {
  passed: true,
  checks: [{ rule: 'accuracy >= 0.9', passed: true, actual: 0.93, detail: '0.93 >= 0.9' }],
  reasons: [],
  baselineVersion: 1,
  candidateMetrics: { accuracy: 0.93, latency_ms: 12 },
  baselineMetrics: { accuracy: 0.91, latency_ms: 15 },
};

describe('plain git provider', () => {
  test('when a version enters Staging, then a branch changing only the serving lines is pushed and reported open', async () => {
    const f = await fixture();
    const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 2, workflowId: `modelgate/${f.model}/v2`, policy: f.policy, evaluation });
    const branch = promotionBranch(f.model, 2);
    assert.equal(ref.provider, 'git');
    assert.equal(ref.branch, branch);
    assert.equal(ref.id, branch);
    assert.match(ref.url, new RegExp(`#${branch}$`));
    assert.equal(ref.storageUri, 's3://mlflow/7/models/m-2/artifacts');
    assert.equal(ref.previousStorageUri, `s3://models/${f.model}/unset`);

    const c = clone(f.remote);
    assert.equal(git(c, 'rev-parse', `origin/${branch}`), ref.headSha);
    // The diff is the storageUri line plus the added labels/annotations, nothing else.
    const diff = git(c, 'diff', '--unified=0', `origin/main..origin/${branch}`);
    const changed = diff.split('\n').filter((l) => /^[+-][^+-]/.test(l));
    assert.deepEqual(changed.filter((l) => l.startsWith('-')), [`-      storageUri: s3://models/${f.model}/unset`]);
    assert.deepEqual(changed.filter((l) => l.startsWith('+')).sort(), [
      `+      storageUri: s3://mlflow/7/models/m-2/artifacts`,
      `+    modelgate.io/model: ${f.model}`,
      `+    modelgate.io/model: ${f.model}`,
      `+    modelgate.io/run-id: run2abc`,
      `+    modelgate.io/run-id: run2abc`,
      `+    modelgate.io/version: "2"`,
      `+    modelgate.io/version: "2"`,
      `+  labels:`,
    ].sort());
    // The commit message is the PR: title and markdown body with the links.
    const message = git(c, 'log', '-1', '--format=%B', `origin/${branch}`);
    assert.match(message, new RegExp(`^Promote ${f.model} v2 to Production`));
    assert.ok(message.includes(`http://mlflow.example/#/models/${f.model}/versions/2`));
    assert.ok(message.includes('http://mlflow.example/#/experiments/7/runs/run2abc'));
    assert.ok(message.includes(`http://temporal.example/namespaces/default/workflows/${encodeURIComponent(`modelgate/${f.model}/v2`)}`));
    assert.ok(message.includes('| `accuracy` | 0.93 | 0.91 | +0.02 |'), message);

    const status = await f.activities.getPullRequestStatus({ model: f.model, version: 2, policy: f.policy });
    assert.equal(status?.state, 'open');
    assert.equal(status?.checks, 'none');
    assert.equal(status?.headSha, ref.headSha);
    assert.equal(await f.activities.getPullRequestStatus({ model: f.model, version: 3, policy: f.policy }), null);
  });

  test('when the open activity runs again on a worker with an empty cache, then the branch is adopted and nothing is pushed', async () => {
    const f = await fixture();
    const first = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const c = clone(f.remote);
    const refsBefore = git(c, 'ls-remote', f.remote);
    const again = await (await fixture({ remote: f.remote, model: f.model })).activities.openPromotionPullRequest({
      model: f.model,
      version: 1,
      workflowId: 'wf',
      policy: f.policy,
    });
    const sameCache = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    // The adopted ref carries the same storage URIs (read back from the PR text), not just the branch.
    assert.equal(first.previousStorageUri, `s3://models/${f.model}/unset`);
    assert.deepEqual(again, first);
    assert.deepEqual(sameCache, first);
    assert.equal(git(c, 'ls-remote', f.remote), refsBefore);
  });

  test('when two workers open the same promotion at once, then exactly one branch commit exists and both report it', async () => {
    const f = await fixture();
    const other = await fixture({ remote: f.remote, model: f.model });
    const input = { model: f.model, version: 5, workflowId: 'wf', policy: f.policy };
    const [a, b] = await Promise.all([f.activities.openPromotionPullRequest(input), other.activities.openPromotionPullRequest(input)]);
    assert.equal(a.headSha, b.headSha);
    const c = clone(f.remote);
    assert.equal(git(c, 'rev-list', '--count', `origin/main..origin/${promotionBranch(f.model, 5)}`), '1');
  });

  test('when approved, then the branch is merged into main with Approved-by trailers, and merging again returns the same SHA', async () => {
    const f = await fixture();
    const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 3, workflowId: 'wf', policy: f.policy });
    const merged = await f.activities.mergePromotionPullRequest({ model: f.model, version: 3, policy: f.policy, expectedHeadSha: ref.headSha, approvers: ['alice', 'bob'] });
    assert.equal(merged.alreadyMerged, false);
    const c = clone(f.remote);
    assert.equal(git(c, 'rev-parse', 'origin/main'), merged.mergeSha);
    assert.equal(git(c, 'log', '-1', '--format=%P', 'origin/main').split(' ')[1], ref.headSha);
    assert.equal(git(c, 'log', '-1', '--format=%(trailers:key=Approved-by,valueonly,separator=%x2C)', 'origin/main'), 'alice,bob');
    assert.equal(git(c, 'log', '-1', '--format=%(trailers:key=Modelgate-Branch,valueonly)', 'origin/main'), promotionBranch(f.model, 3));

    const again = await f.activities.mergePromotionPullRequest({ model: f.model, version: 3, policy: f.policy, expectedHeadSha: ref.headSha, approvers: ['alice', 'bob'] });
    assert.deepEqual(again, { mergeSha: merged.mergeSha, mergedBy: 'modelgate', headSha: ref.headSha, mergedByModelgate: true, alreadyMerged: true });
    const status = await f.activities.getPullRequestStatus({ model: f.model, version: 3, policy: f.policy });
    assert.equal(status?.state, 'merged');
    assert.equal(status?.mergeSha, merged.mergeSha);
    assert.equal(status?.mergedBy, 'modelgate');
    // Opening again after the merge adopts the merged one.
    const reopened = await f.activities.openPromotionPullRequest({ model: f.model, version: 3, workflowId: 'wf', policy: f.policy });
    assert.equal(reopened.mergeSha, merged.mergeSha);

    const serving = await f.activities.readServingManifest({ policy: f.policy });
    assert.deepEqual(serving, { storageUri: 's3://mlflow/7/models/m-3/artifacts', model: f.model, version: '3', runId: 'run3abc', commit: merged.mergeSha });
  });

  test('when the merge method is squash, then main gets one single-parent commit that status still finds', async () => {
    const f = await fixture({ mergeMethod: 'squash' });
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const merged = await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    const c = clone(f.remote);
    assert.equal(git(c, 'log', '-1', '--format=%P', 'origin/main').split(' ').length, 1);
    assert.equal((await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy }))?.mergeSha, merged.mergeSha);
  });

  test('when someone pushes to main while the merge runs, then modelgate fetches, merges on top and keeps both changes', async () => {
    const clones: { human?: string } = {};
    let mainPushes = 0;
    const real = createGitRunner({ identity: { name: 'modelgate', email: 'modelgate@localhost' } });
    // Between modelgate's fetch and its push to main, a human lands an unrelated commit on main.
    const racing: GitRunner = async (call) => {
      if (call.args[0] === 'push' && call.args.some((a) => a.endsWith(':refs/heads/main'))) {
        mainPushes++;
        const human = clones.human;
        if (mainPushes === 1 && human) {
          writeFileSync(join(human, 'NOTES.md'), 'unrelated change\n');
          git(human, 'add', 'NOTES.md');
          git(human, 'commit', '--quiet', '-m', 'Unrelated change');
          git(human, 'push', '--quiet', 'origin', 'HEAD:main');
        }
      }
      return real(call);
    };
    const f = await fixture({ runGit: racing });
    const human = (clones.human = clone(f.remote));
    const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 4, workflowId: 'wf', policy: f.policy });
    const merged = await f.activities.mergePromotionPullRequest({ model: f.model, version: 4, policy: f.policy, expectedHeadSha: ref.headSha, approvers: ['alice'] });
    assert.equal(mainPushes, 2, 'the first push must have been rejected and retried');
    git(human, 'fetch', '--quiet');
    assert.equal(git(human, 'rev-parse', 'origin/main'), merged.mergeSha);
    assert.equal(git(human, 'log', '-1', '--format=%s', 'origin/main^1'), 'Unrelated change');
    assert.equal(git(human, 'show', 'origin/main:NOTES.md'), 'unrelated change');
  });

  test('when four workers merge four promotions into one main at once, then every merge lands exactly once', async () => {
    const models = [unique('m'), unique('m'), unique('m'), unique('m')];
    const base = await fixture({ model: models[0] });
    const seed = clone(base.remote);
    for (const m of models.slice(1)) writeFileSync(join(seed, 'inferenceservices', `${m}.yaml`), sampleInferenceService({ model: m, namespace: 'models', name: m }));
    git(seed, 'add', '.');
    git(seed, 'commit', '--quiet', '-m', 'More services');
    git(seed, 'push', '--quiet', 'origin', 'HEAD:main');
    const workers = await Promise.all(models.map((m) => fixture({ remote: base.remote, model: m })));
    for (const w of workers) w.policy.manifestPath = `inferenceservices/${w.model}.yaml`;
    await Promise.all(workers.map((w) => w.activities.openPromotionPullRequest({ model: w.model, version: 1, workflowId: 'wf', policy: w.policy })));
    const results = await Promise.all(workers.map((w) => w.activities.mergePromotionPullRequest({ model: w.model, version: 1, policy: w.policy, approvers: ['alice'] })));
    git(seed, 'fetch', '--quiet');
    const branches = git(seed, 'log', '--format=%(trailers:key=Modelgate-Branch,valueonly)', 'origin/main').split('\n').filter(Boolean);
    assert.deepEqual(branches.sort(), models.map((m) => promotionBranch(m, 1)).sort());
    for (const [i, r] of results.entries()) {
      assert.equal(git(seed, 'log', '-1', '--format=%(trailers:key=Modelgate-Branch,valueonly)', r.mergeSha), promotionBranch(models[i], 1));
    }
    for (const m of models) assert.match(git(seed, 'show', `origin/main:inferenceservices/${m}.yaml`), /modelgate\.io\/version: "1"/);
  });

  test('when the branch head changes after approval, then the merge is refused with PullRequestHeadChanged', async () => {
    const f = await fixture();
    const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const c = clone(f.remote);
    git(c, 'checkout', '--quiet', promotionBranch(f.model, 1));
    writeFileSync(join(c, 'extra.txt'), 'sneaky\n');
    git(c, 'add', 'extra.txt');
    git(c, 'commit', '--quiet', '-m', 'Change after approval');
    git(c, 'push', '--quiet', 'origin', 'HEAD');
    await rejectsWith(
      f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, expectedHeadSha: ref.headSha, approvers: ['alice'] }),
      'PullRequestHeadChanged',
      /approved again/,
    );
    const status = await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy });
    assert.equal(status?.state, 'open');
    assert.notEqual(status?.headSha, ref.headSha);
  });

  test('when main changed the same lines, then the merge is refused with PullRequestNotMergeable naming the file', async () => {
    const f = await fixture();
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const c = clone(f.remote);
    const file = join(c, f.policy.manifestPath);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/storageUri: .*/, 'storageUri: s3://hand/edited'));
    git(c, 'commit', '--quiet', '-am', 'Hand edit');
    git(c, 'push', '--quiet', 'origin', 'HEAD:main');
    await rejectsWith(
      f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] }),
      'PullRequestNotMergeable',
      new RegExp(f.policy.manifestPath.replace(/[.]/g, '\\.')),
    );
  });

  test('when a promotion is rejected, then the branch is marked closed by the rejecter and can no longer merge', async () => {
    const f = await fixture();
    const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const closed = await f.activities.closePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, reason: 'latency too high', by: 'carol' });
    assert.equal(closed?.state, 'closed');
    assert.equal(closed?.closedBy, 'carol');
    const c = clone(f.remote);
    const marker = git(c, 'ls-remote', f.remote, `refs/modelgate/closed/${promotionBranch(f.model, 1)}`);
    assert.ok(marker, 'closed marker ref exists');
    git(c, 'fetch', '--quiet', 'origin', `refs/modelgate/closed/${promotionBranch(f.model, 1)}`);
    assert.match(git(c, 'log', '-1', '--format=%B', 'FETCH_HEAD'), /latency too high[\s\S]*Closed-by: carol/);
    // Closing again changes nothing; a fresh worker sees the same state; merging is refused.
    const again = await (await fixture({ remote: f.remote, model: f.model })).activities.closePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, reason: 'again' });
    assert.deepEqual(again, closed);
    await rejectsWith(f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] }), 'PullRequestClosed', /carol/);
    const reopened = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    assert.equal(reopened.headSha, ref.headSha);
  });

  test('when a human merges the branch with plain git, then the status is merged by that human at their merge commit', async () => {
    const f = await fixture();
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const c = clone(f.remote);
    git(c, 'merge', '--quiet', '--no-ff', '-m', 'Merge by hand', `origin/${promotionBranch(f.model, 1)}`);
    git(c, 'push', '--quiet', 'origin', 'HEAD:main');
    const status = await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy });
    assert.equal(status?.state, 'merged');
    assert.equal(status?.mergedBy, 'Hannah Human');
    assert.equal(status?.mergeSha, git(c, 'rev-parse', 'HEAD'));
    const merged = await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    assert.deepEqual(merged, { mergeSha: git(c, 'rev-parse', 'HEAD'), mergedBy: 'Hannah Human', headSha: status?.headSha, mergedByModelgate: false, alreadyMerged: true });
  });

  test('when a promotion is reverted, then the revert branch restores the old manifest byte for byte and merges back', async () => {
    const f = await fixture();
    const c = clone(f.remote);
    const original = git(c, 'show', `origin/main:${f.policy.manifestPath}`);
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const { mergeSha } = await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    const revert = await f.activities.openRevertPullRequest({ model: f.model, version: 1, policy: f.policy, mergeSha, reason: 'error rate 5%' });
    assert.equal(revert.branch, revertBranch(f.model, 1));
    assert.equal(revert.storageUri, `s3://models/${f.model}/unset`);
    assert.equal(revert.previousStorageUri, 's3://mlflow/7/models/m-1/artifacts');
    const again = await f.activities.openRevertPullRequest({ model: f.model, version: 1, policy: f.policy, mergeSha, reason: 'error rate 5%' });
    assert.deepEqual(again, revert);
    assert.equal((await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy, revert: true }))?.state, 'open');
    const reverted = await f.activities.mergeRevertPullRequest({ model: f.model, version: 1, policy: f.policy });
    git(c, 'fetch', '--quiet');
    assert.equal(git(c, 'rev-parse', 'origin/main'), reverted.mergeSha);
    assert.equal(git(c, 'show', `origin/main:${f.policy.manifestPath}`), original);
    const revertStatus = await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy, revert: true });
    assert.equal(revertStatus?.state, 'merged');
    assert.equal(revertStatus?.mergeSha, reverted.mergeSha);
    // The promotion itself still reads as merged (history does not change).
    assert.equal((await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy }))?.state, 'merged');
  });

  test('when main was edited after the promotion, then the revert restores only the serving fields and keeps the edit', async () => {
    const f = await fixture();
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    await f.activities.openPromotionPullRequest({ model: f.model, version: 2, workflowId: 'wf', policy: f.policy });
    const second = await f.activities.mergePromotionPullRequest({ model: f.model, version: 2, policy: f.policy, approvers: ['alice'] });
    const c = clone(f.remote);
    const file = join(c, f.policy.manifestPath);
    writeFileSync(file, readFileSync(file, 'utf8').replace('minReplicas: 1', 'minReplicas: 3'));
    git(c, 'commit', '--quiet', '-am', 'Scale up');
    git(c, 'push', '--quiet', 'origin', 'HEAD:main');
    await f.activities.openRevertPullRequest({ model: f.model, version: 2, policy: f.policy, mergeSha: second.mergeSha, reason: 'regression' });
    await f.activities.mergeRevertPullRequest({ model: f.model, version: 2, policy: f.policy });
    const serving = await f.activities.readServingManifest({ policy: f.policy });
    assert.equal(serving.version, '1');
    assert.equal(serving.storageUri, 's3://mlflow/7/models/m-1/artifacts');
    git(c, 'pull', '--quiet', 'origin', 'main');
    assert.match(readFileSync(file, 'utf8'), /minReplicas: 3/);
    // Reverting v1 now would undo something main no longer serves.
    const firstMerge = git(c, 'log', '--format=%H', '--grep', `Modelgate-Branch: ${promotionBranch(f.model, 1)}`, 'origin/main');
    await rejectsWith(
      f.activities.openRevertPullRequest({ model: f.model, version: 3, policy: f.policy, mergeSha: firstMerge, reason: 'x' }),
      'RevertNotApplicable',
    );
  });

  test('when the manifest names another InferenceService, then opening fails with ManifestInvalid saying what was found', async () => {
    const f = await fixture();
    await rejectsWith(
      f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: { ...f.policy, inferenceService: 'other' } }),
      'ManifestInvalid',
      new RegExp(`expected serving.kserve.io/v1beta1 InferenceService models/other, found serving.kserve.io/v1beta1 InferenceService ${f.model}`),
    );
    await rejectsWith(f.activities.readServingManifest({ policy: { ...f.policy, manifestPath: 'missing.yaml' } }), 'ManifestNotFound');
    await rejectsWith(
      f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: { ...f.policy, baseBranch: 'nope' } }),
      'BaseBranchNotFound',
    );
  });

  test('when the local demo repo is initialised twice, then the second call keeps what the first made', async () => {
    const dir = join(root, `${unique('demo')}.git`);
    const a = await initLocalGitopsRepo(dir, { model: 'iris', namespace: 'models', name: 'iris' });
    const b = await initLocalGitopsRepo(dir, { model: 'iris', namespace: 'models', name: 'iris' });
    assert.equal(a.created, true);
    assert.equal(b.created, false);
    assert.equal(git(dir, 'rev-list', '--count', 'main'), '1');
    assert.match(git(dir, 'show', `main:${a.manifestPath}`), /^# KServe InferenceService/);
  });
});

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('plain git provider: only what modelgate opened is adopted', () => {
  test("when someone pushed the next version's branch in advance, then opening fails with ForeignPullRequest naming it and nothing is adopted or pushed", async () => {
    const f = await fixture();
    const branch = promotionBranch(f.model, 2);
    const input = { model: f.model, version: 2, workflowId: 'wf', policy: f.policy };
    const c = clone(f.remote);
    // A branch that is just main (nothing of its own), then one with a commit pointing KServe elsewhere and a
    // forged marker.
    git(c, 'push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`);
    const refsBefore = git(c, 'ls-remote', f.remote);
    await assert.rejects(f.activities.openPromotionPullRequest(input), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'ForeignPullRequest');
      assert.equal(err.nonRetryable, true);
      assert.equal(err.message, `branch ${branch} exists but was not opened by modelgate (no valid marker); delete it or close the PR`);
      return true;
    });
    assert.equal((await f.activities.getPullRequestStatus(input))?.state, 'open', 'a branch that is only main is not "merged"');
    assert.equal(git(c, 'ls-remote', f.remote), refsBefore);

    git(c, 'checkout', '--quiet', '-b', 'prepared');
    const file = join(c, f.policy.manifestPath);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/storageUri: .*/, 'storageUri: s3://evil/model'));
    const forged = `<!-- modelgate: {"v":2,"branch":"${branch}","kind":"promotion","model":"${f.model}","version":2,"mac":"${'0'.repeat(64)}"} -->`;
    git(c, 'commit', '--quiet', '-am', `Promote ${f.model} v2 to Production\n\n${forged}`);
    git(c, 'push', '--quiet', '--force', 'origin', `HEAD:refs/heads/${branch}`);
    const forgedRefs = git(c, 'ls-remote', f.remote);
    await rejectsWith(
      f.activities.openPromotionPullRequest(input),
      'ForeignPullRequest',
      new RegExp(`^branch ${escapeRe(branch)} exists but .*points at s3://evil/model, not s3://mlflow/7/models/m-2/artifacts from MLflow.*; delete it or close the PR$`),
    );
    assert.equal(git(c, 'ls-remote', f.remote), forgedRefs);

    // Once the branch is deleted, modelgate opens its own.
    git(c, 'push', '--quiet', 'origin', `:refs/heads/${branch}`);
    const ref = await f.activities.openPromotionPullRequest(input);
    assert.equal(ref.storageUri, 's3://mlflow/7/models/m-2/artifacts');
  });

  test('when the open activity is retried after a crash, then its own branch is adopted by a worker with the same secret and refused under another', async () => {
    const f = await fixture();
    const input = { model: f.model, version: 1, workflowId: 'wf', policy: f.policy };
    const first = await f.activities.openPromotionPullRequest(input);
    const retried = await (await fixture({ remote: f.remote, model: f.model })).activities.openPromotionPullRequest(input);
    assert.deepEqual(retried, first);
    // The marker is an HMAC: identical content under another key is not modelgate's.
    const other = await fixture({ remote: f.remote, model: f.model, markerSecret: 'another-workers-secret-0123' });
    await rejectsWith(other.activities.openPromotionPullRequest(input), 'ForeignPullRequest', /was not opened by modelgate \(no valid marker for the manifest at [0-9a-f]{12}\)/);
    const c = clone(f.remote);
    const message = git(c, 'log', '-1', '--format=%B', `origin/${promotionBranch(f.model, 1)}`);
    assert.match(message, /<!-- modelgate: \{"v":2,"branch":"[^"]+","kind":"promotion",.*"mac":"[0-9a-f]{64}"\} -->/);
    assert.ok(!message.includes(MARKER_SECRET), 'the marker never holds the secret');
    // Without a secret, nothing is opened (rather than an unsigned marker).
    const unset = await fixture({ remote: f.remote, model: f.model, markerSecret: '' });
    await rejectsWith(unset.activities.openPromotionPullRequest({ ...input, version: 9 }), 'GitopsNotConfigured', /MODELGATE_GITOPS_MARKER_SECRET/);
  });

  test('when the PR text is edited to another storage URI, then adoption still takes the URI from MLflow; an edited manifest is refused', async () => {
    const f = await fixture();
    const input = { model: f.model, version: 1, workflowId: 'wf', policy: f.policy };
    const ref = await f.activities.openPromotionPullRequest(input);
    const branch = promotionBranch(f.model, 1);
    const c = clone(f.remote);
    git(c, 'checkout', '--quiet', branch);
    // The "PR body" of plain git is the branch commit's message: rewrite every mention of the URI.
    const edited = git(c, 'log', '-1', '--format=%B').replaceAll(ref.storageUri!, 's3://evil/model');
    assert.ok(edited.includes('s3://evil/model'));
    git(c, 'commit', '--quiet', '--amend', '-m', edited);
    git(c, 'push', '--quiet', '--force', 'origin', `HEAD:${branch}`);
    const adopted = await f.activities.openPromotionPullRequest(input);
    assert.equal(adopted.storageUri, 's3://mlflow/7/models/m-1/artifacts');
    assert.equal(adopted.headSha, git(c, 'rev-parse', 'HEAD'));
    assert.equal(adopted.previousStorageUri, ref.previousStorageUri);

    // A commit on top that changes other lines of the manifest (same storage URI) is not adopted…
    const file = join(c, f.policy.manifestPath);
    const proposed = readFileSync(file, 'utf8');
    writeFileSync(file, proposed.replace('minReplicas: 1', 'minReplicas: 0'));
    git(c, 'commit', '--quiet', '-am', 'Scale to zero');
    git(c, 'push', '--quiet', 'origin', `HEAD:${branch}`);
    await rejectsWith(f.activities.openPromotionPullRequest(input), 'ForeignPullRequest', /was not opened by modelgate \(no valid marker for the manifest at [0-9a-f]{12}\)/);
    // …nor one that points it elsewhere.
    writeFileSync(file, proposed.replace(/storageUri: .*/, 'storageUri: s3://evil/model'));
    git(c, 'commit', '--quiet', '-am', 'Point elsewhere');
    git(c, 'push', '--quiet', 'origin', `HEAD:${branch}`);
    await rejectsWith(
      f.activities.openPromotionPullRequest(input),
      'ForeignPullRequest',
      new RegExp(`^branch ${escapeRe(branch)} exists but .*points at s3://evil/model, not s3://mlflow/7/models/m-1/artifacts from MLflow`),
    );
  });

  test('when someone pushed the revert branch in advance, then opening the revert fails with ForeignPullRequest', async () => {
    const f = await fixture();
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const { mergeSha } = await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    const c = clone(f.remote);
    const file = join(c, f.policy.manifestPath);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/storageUri: .*/, 'storageUri: s3://evil/model'));
    git(c, 'commit', '--quiet', '-am', 'Revert (not really)');
    git(c, 'push', '--quiet', 'origin', `HEAD:refs/heads/${revertBranch(f.model, 1)}`);
    await rejectsWith(
      f.activities.openRevertPullRequest({ model: f.model, version: 1, policy: f.policy, mergeSha, reason: 'x' }),
      'ForeignPullRequest',
      new RegExp(`^branch ${escapeRe(revertBranch(f.model, 1))} exists but was not opened by modelgate`),
    );
  });

  test('when the directory maps every login, then plain git still never reports a merger identity (a committer name is not one)', async () => {
    let lookups = 0;
    const identities = {
      byGithubLogin(login: string): IdentityRef {
        lookups++;
        return { identity: login, groups: ['approvers'] };
      },
    };
    const f = await fixture({ identities });
    await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
    const c = clone(f.remote);
    git(c, 'merge', '--quiet', '--no-ff', '-m', 'Merge by hand', `origin/${promotionBranch(f.model, 1)}`);
    git(c, 'push', '--quiet', 'origin', 'HEAD:main');
    const status = await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy });
    assert.equal(status?.state, 'merged');
    assert.equal(status?.mergedBy, 'Hannah Human');
    assert.ok(status && !('mergedByIdentity' in status));
    const outcome = await f.activities.mergePromotionPullRequest({ model: f.model, version: 1, policy: f.policy, approvers: ['alice'] });
    assert.equal(outcome.alreadyMerged, true);
    assert.equal(outcome.mergedByIdentity, undefined);
    assert.equal(status?.mergedByModelgate, false);
    assert.equal(outcome.mergedByModelgate, false);
    // modelgate's own merge is recognised by its seal, not by a name; a fresh worker sees the same.
    await f.activities.openPromotionPullRequest({ model: f.model, version: 2, workflowId: 'wf', policy: f.policy });
    const own = await f.activities.mergePromotionPullRequest({ model: f.model, version: 2, policy: f.policy, approvers: ['alice'] });
    assert.equal(own.mergedByIdentity, undefined);
    assert.equal(own.mergedByModelgate, true);
    const ownStatus = await (await fixture({ remote: f.remote, model: f.model })).activities.getPullRequestStatus({ model: f.model, version: 2, policy: f.policy });
    assert.equal(ownStatus?.mergedByIdentity, undefined);
    assert.equal(ownStatus?.mergedByModelgate, true);
    assert.ok(ownStatus && !('mergeSeal' in ownStatus));

    // A person who writes modelgate's trailers (and a made-up seal) into their own merge is still a person.
    await f.activities.openPromotionPullRequest({ model: f.model, version: 3, workflowId: 'wf', policy: f.policy });
    const branch = promotionBranch(f.model, 3);
    git(c, 'fetch', '--quiet');
    git(c, 'reset', '--quiet', '--hard', 'origin/main');
    const head = git(c, 'rev-parse', `origin/${branch}`);
    const trailers = [`Modelgate-Branch: ${branch}`, `Modelgate-Head: ${head}`, 'Approved-by: alice', 'Merged-by: modelgate', `Modelgate-Seal: ${'ab'.repeat(32)}`];
    git(c, 'merge', '--quiet', '--no-ff', '-m', `Promote ${f.model} v3 to Production\n\n${trailers.join('\n')}`, `origin/${branch}`);
    git(c, 'push', '--quiet', 'origin', 'HEAD:main');
    const forged = await f.activities.getPullRequestStatus({ model: f.model, version: 3, policy: f.policy });
    assert.equal(forged?.state, 'merged');
    assert.equal(forged?.mergedBy, 'modelgate', 'the trailer text is reported for the timeline…');
    assert.equal(forged?.mergedByModelgate, false, '…but it is not modelgate’s merge');
    assert.equal(forged?.mergedByIdentity, undefined);
    assert.equal(lookups, 0);
  });

  for (const how of ['merge commit', 'fast-forward'] as const) {
    test(`when a promotion branch is merged by a person without approval (${how}), then a revert PR restores the previous storage URI on the base branch`, async () => {
      const f = await fixture();
      const c = clone(f.remote);
      const original = git(c, 'show', `origin/main:${f.policy.manifestPath}`);
      const ref = await f.activities.openPromotionPullRequest({ model: f.model, version: 1, workflowId: 'wf', policy: f.policy });
      const branch = promotionBranch(f.model, 1);
      git(c, 'fetch', '--quiet');
      if (how === 'merge commit') git(c, 'merge', '--quiet', '--no-ff', '-m', 'Merge without approval', `origin/${branch}`);
      else git(c, 'merge', '--quiet', '--ff-only', `origin/${branch}`);
      git(c, 'push', '--quiet', 'origin', 'HEAD:main');
      const merged = git(c, 'rev-parse', 'HEAD');
      // A commit pushed to the branch after the merge is not part of it: still merged, at the merged head.
      git(c, 'checkout', '--quiet', '-b', 'later', `origin/${branch}`);
      writeFileSync(join(c, 'later.txt'), 'after the merge\n');
      git(c, 'add', 'later.txt');
      git(c, 'commit', '--quiet', '-m', 'Later');
      git(c, 'push', '--quiet', 'origin', `HEAD:${branch}`);
      const status = await f.activities.getPullRequestStatus({ model: f.model, version: 1, policy: f.policy });
      assert.equal(status?.state, 'merged');
      assert.equal(status?.headSha, ref.headSha);
      assert.equal(status?.mergeSha, merged);
      // A fast-forward leaves no trace of who pushed: the "merger" is the branch commit's committer.
      assert.equal(status?.mergedBy, how === 'merge commit' ? 'Hannah Human' : 'modelgate');
      assert.equal(status?.mergedByModelgate, false);
      assert.equal((await f.activities.readServingManifest({ policy: f.policy })).storageUri, ref.storageUri);

      const revert = await f.activities.openRevertPullRequest({ model: f.model, version: 1, policy: f.policy, mergeSha: status.mergeSha, reason: 'merged without approval' });
      assert.equal(revert.storageUri, `s3://models/${f.model}/unset`);
      assert.equal(revert.previousStorageUri, ref.storageUri);
      assert.deepEqual(await f.activities.openRevertPullRequest({ model: f.model, version: 1, policy: f.policy, mergeSha: status.mergeSha, reason: 'merged without approval' }), revert);
      const reverted = await f.activities.mergeRevertPullRequest({ model: f.model, version: 1, policy: f.policy });
      const serving = await f.activities.readServingManifest({ policy: f.policy });
      assert.equal(serving.storageUri, `s3://models/${f.model}/unset`);
      assert.equal(serving.commit, reverted.mergeSha);
      git(c, 'fetch', '--quiet');
      assert.equal(git(c, 'show', `origin/main:${f.policy.manifestPath}`), original);
    });
  }
});

interface JsonSchema {
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  additionalProperties?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
}

/** The parts of the InferenceService CRD's v1beta1 schema the CRD test reads (the whole is much larger). */
interface PredictorSchema extends JsonSchema {
  properties: Record<string, JsonSchema>;
}
interface InferenceServiceSchema extends JsonSchema {
  properties: { spec: JsonSchema & { properties: { predictor: PredictorSchema } } } & Record<string, JsonSchema>;
}
interface InferenceServiceCrd {
  spec: { versions: Array<{ name: string; schema: { openAPIV3Schema: InferenceServiceSchema } }> };
}
/** An InferenceService manifest, as far as these tests read it. */
interface InferenceServiceDoc {
  metadata: { labels: Record<string, string | undefined>; annotations: Record<string, string | undefined> };
  spec: { predictor: Record<string, unknown> };
}

function undeclared(value: unknown, schema: JsonSchema | undefined, path: string): string[] {
  if (!schema || schema['x-kubernetes-preserve-unknown-fields'] || schema.additionalProperties) return [];
  if (Array.isArray(value)) return value.flatMap((v, i) => undeclared(v, schema.items, `${path}[${i}]`));
  if (value === null || typeof value !== 'object' || !schema.properties) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    schema.properties![k] ? undeclared(v, schema.properties![k], `${path}.${k}`) : [`${path}.${k}`],
  );
}

describe('manifest editing', () => {
  const target = { namespace: 'models', name: 'fraud' };
  const manifest = `# GitOps manifest for the fraud model
---
apiVersion: "serving.kserve.io/v1beta1"
kind: InferenceService
metadata:
  name: fraud   # the service name
  namespace: models
  labels:
    team: risk

  annotations:
    serving.kserve.io/deploymentMode: Serverless   # keep
    modelgate.io/version: "1"
# the spec
spec:
  predictor:
    tolerations:
    - key: gpu
      operator: Exists
    model:
      modelFormat: {name: mlflow}
      protocolVersion: v2
      storageUri: 's3://bucket/v1'   # set by modelgate
---
apiVersion: v1
kind: ConfigMap
metadata: {name: unrelated}
`;

  test('when a retire removes the InferenceService, then only its document goes (the whole file when it is alone)', () => {
    const out = removeInferenceService(manifest, target);
    assert.equal(out, `# GitOps manifest for the fraud model\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\n`);
    assert.throws(() => readServingFields(out, target), /expected serving.kserve.io\/v1beta1 InferenceService models\/fraud/);
    const alone = manifest.slice(0, manifest.lastIndexOf('---\napiVersion: v1'));
    assert.equal(removeInferenceService(alone, target), null);
    assert.throws(() => removeInferenceService(manifest, { namespace: 'models', name: 'other' }), /expected serving.kserve.io\/v1beta1 InferenceService models\/other/);
  });

  test('when the manifest is edited, then only the changed lines differ and comments, quotes and other documents stay', () => {
    const out = applyServingFields(manifest, target, { storageUri: 's3://bucket/v2', model: 'fraud', version: '2', runId: 'abc' });
    const before = manifest.split('\n');
    const afterLines = out.split('\n');
    const removed = before.filter((l) => !afterLines.includes(l));
    const added = afterLines.filter((l) => !before.includes(l));
    assert.deepEqual(removed, ['    modelgate.io/version: "1"', `      storageUri: 's3://bucket/v1'   # set by modelgate`]);
    assert.deepEqual(added.sort(), [
      '    modelgate.io/model: fraud',
      '    modelgate.io/model: fraud',
      '    modelgate.io/run-id: abc',
      '    modelgate.io/run-id: abc',
      '    modelgate.io/version: "2"',
      '    modelgate.io/version: "2"',
      `      storageUri: 's3://bucket/v2'   # set by modelgate`,
    ].sort());
    // Every other line survives, in order.
    assert.deepEqual(
      afterLines.filter((l) => !added.includes(l)),
      before.filter((l) => !removed.includes(l)),
    );
    assert.equal(afterLines.length, before.length + 5);
    assert.deepEqual(readServingFields(out, target), { storageUri: 's3://bucket/v2', model: 'fraud', version: '2', runId: 'abc' });
  });

  test('when values look like YAML 1.1 booleans or numbers, then they are quoted so Kubernetes reads strings', () => {
    const out = applyServingFields(manifest, target, { storageUri: 's3://b/x', model: 'yes', version: '10' });
    assert.match(out, /modelgate\.io\/model: "yes"/);
    assert.match(out, /modelgate\.io\/version: "10"/);
    // Model names that are not label values go to annotations only.
    const spaced = applyServingFields(manifest, target, { storageUri: 's3://b/x', model: 'Fraud Model', version: '3' });
    assert.equal((parseYaml(spaced.split('---')[1]) as InferenceServiceDoc).metadata.labels['modelgate.io/model'], undefined);
    assert.equal((parseYaml(spaced.split('---')[1]) as InferenceServiceDoc).metadata.annotations['modelgate.io/model'], 'Fraud Model');
  });

  test('when the file is not the policy InferenceService, then the error names what is wrong', () => {
    assert.throws(() => applyServingFields(manifest, { namespace: 'prod', name: 'fraud' }, { storageUri: 's3://x' }), /namespace models, the policy says prod/);
    assert.throws(
      () => applyServingFields('apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceService\nmetadata: {name: fraud}\n', target, { storageUri: 's3://x' }),
      /apiVersion serving.kserve.io\/v1alpha1, expected serving.kserve.io\/v1beta1/,
    );
    assert.throws(() => applyServingFields('a: [', target, { storageUri: 's3://x' }), /invalid YAML/);
    assert.throws(
      () => applyServingFields('apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: fraud}\nspec: {predictor: {}}\n', target, { storageUri: 's3://x' }),
      /spec.predictor.model is missing/,
    );
  });

  test('when a storage URI prefix map is given, then the first matching prefix is replaced', () => {
    const map = [
      { from: 'mlflow-artifacts:/1/', to: 's3://one/' },
      { from: 'mlflow-artifacts:/', to: 's3://all/' },
    ];
    assert.equal(mapStorageUri('mlflow-artifacts:/1/models/m-1/artifacts', map), 's3://one/models/m-1/artifacts');
    assert.equal(mapStorageUri('mlflow-artifacts:/2/models/m-1/artifacts', map), 's3://all/2/models/m-1/artifacts');
    assert.equal(mapStorageUri('gs://x/y', map), 'gs://x/y');
  });

  test('when the sample manifest is promoted, then it still validates against the published InferenceService CRD', { skip: crdSchemasMissing() }, () => {
    const require = createRequire(import.meta.url);
    const Ajv = (require('ajv') as { default: new (o: object) => { compile(s: object): ((d: unknown) => boolean) & { errors?: unknown } } }).default;
    const crd = parseYaml(readFileSync(crdPath('kserve-inferenceservices.yaml'), 'utf8')) as InferenceServiceCrd;
    const full = crd.spec.versions.find((v) => v.name === 'v1beta1')!.schema.openAPIV3Schema;
    const sample = sampleInferenceService({ model: 'iris', namespace: 'models', name: 'iris' });
    const edited = applyServingFields(sample, { namespace: 'models', name: 'iris' }, { storageUri: 's3://mlflow/1/models/m-1/artifacts', model: 'iris', version: '1', runId: 'r1' });
    // The whole CRD schema takes ajv ~20 s to compile; keep the predictor fields the sample uses (all of
    // spec.predictor.model), which is what this change can break.
    const predictor = full.properties.spec.properties.predictor;
    const used = Object.keys((parseYaml(edited) as InferenceServiceDoc).spec.predictor);
    const schema = {
      ...full,
      properties: {
        ...full.properties,
        status: {},
        spec: { ...full.properties.spec, properties: { predictor: { ...predictor, properties: Object.fromEntries(used.map((k) => [k, predictor.properties[k]])) } } },
      },
    };
    const validate = new Ajv({ strict: false, allErrors: true, logger: false }).compile(schema);
    for (const text of [sample, edited]) {
      const obj = parseYaml(text) as InferenceServiceDoc;
      assert.ok(validate(obj), JSON.stringify(validate.errors));
      // Kubernetes silently prunes fields the schema does not declare: every field we write must be declared.
      assert.deepEqual(undeclared(obj.spec, full.properties.spec, 'spec'), []);
    }
    // …and the validator does reject a broken spec, so the checks above mean something.
    assert.equal(validate({ ...parseYaml(edited), spec: { predictor: { minReplicas: 'many' } } }), false);
    assert.deepEqual(undeclared({ predictor: { model: { storageURI: 'x' } } }, full.properties.spec, 'spec'), ['spec.predictor.model.storageURI']);
  });

  test('when the PR body is rendered, then links, the verdict and the metrics table are there and cells are escaped', () => {
    const body = promotionBody({
      model: 'a|b',
      version: 2,
      runId: 'r1',
      experimentId: '3',
      storageUri: 's3://x',
      previous: { storageUri: 's3://old', version: '1' },
      evaluation: { ...evaluation, checks: [{ rule: 'f1 >= 0.8', passed: false, detail: 'got 0.7' }], passed: false },
      workflowId: 'modelgate/a|b/v2',
      manifestPath: 'isvc.yaml',
      inferenceService: { namespace: 'models', name: 'ab' },
      links: { mlflowUiUrl: 'http://m/', temporalUiUrl: 'http://t', namespace: 'prod' },
      marker: '<!-- modelgate: {} -->',
    });
    assert.ok(body.includes('[a\\|b v2](http://m/#/models/a%7Cb/versions/2)'), body);
    assert.ok(body.includes('http://m/#/experiments/3/runs/r1'));
    assert.ok(body.includes('http://t/namespaces/prod/workflows/modelgate%2Fa%7Cb%2Fv2'));
    assert.ok(body.includes('### Evaluation: failed ❌'));
    assert.ok(body.includes('- ❌ f1 >= 0.8 — got 0.7'));
    assert.ok(body.includes('| Metric | Candidate v2 | Production v1 | Δ |'));
    assert.ok(body.includes('| `latency_ms` | 12 | 15 | -3 |'));
    assert.ok(body.includes('`s3://old` (v1)'));
  });
});
