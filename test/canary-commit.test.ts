/**
 * A canary step's commit (src/activities/canary-gitops.ts) against both providers: by default one commit of
 * modelgate's own straight on the base branch, found again (not repeated) when the step is retried, never
 * confused with a commit that only imitates its marker; a base that refuses direct commits gets the step as a
 * branch merged once. GitHub through the OpenAPI-validated double, plain git on a real bare repository.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCanaryGitopsActivities, type CanaryStepInput } from '../src/activities/canary-gitops.js';
import { createProviderFactory, loadGitopsConfig } from '../src/config/gitops.js';
import { readCanaryPercent } from '../src/gitops/canary-manifest.js';
import { initLocalGitopsRepo } from '../src/gitops/git-provider.js';
import { readServingFields } from '../src/gitops/manifest.js';
import { markerPrefix } from '../src/gitops/marker.js';
import { canaryBranch } from '../src/gitops/provider.js';
import type { GitopsPolicy } from '../src/policy/types.js';
import { GitHubDouble } from './support/github-double.js';
import { fakeMlflow, isvcManifest, MARKER_SECRET } from './support/github-fixtures.js';
import { testStack, unique } from './support/stack.js';

const TOKEN = 'ghp_modelgatecanarytoken';
const LINKS = { mlflowUiUrl: 'https://mlflow.example', temporalUiUrl: 'https://temporal.example', namespace: 'prod' };
const target = (p: GitopsPolicy) => ({ namespace: p.namespace, name: p.inferenceService });
const doubles: GitHubDouble[] = [];

before(() => GitHubDouble.warmUp());
after(async () => {
  await Promise.all(doubles.map((d) => d.close()));
});

function policyOf(provider: 'github' | 'git', repo: string, model: string, manifestPath: string): GitopsPolicy {
  return {
    provider, repo, baseBranch: 'main', manifestPath, namespace: 'models', inferenceService: model, mergeMethod: 'merge',
    storageUriPrefixMap: [{ from: 'mlflow-artifacts:/', to: 's3://mlflow/' }], reapproveOnChange: true,
  };
}

function stepInput(policy: GitopsPolicy, model: string, storageUri: string, over: Partial<CanaryStepInput> = {}): CanaryStepInput {
  return { model, version: 2, policy, step: 1, percent: 50, storageUri, workflowId: `modelgate/${model}/v2`, ...over };
}

async function github() {
  const model = unique('canary-gh');
  const manifestPath = `clusters/prod/${model}.yaml`;
  const double = await GitHubDouble.start({ owner: 'acme', repo: 'gitops', token: TOKEN, files: { [manifestPath]: isvcManifest(model) } });
  doubles.push(double);
  const policy = policyOf('github', 'acme/gitops', model, manifestPath);
  const factory = createProviderFactory(loadGitopsConfig({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: double.baseUrl }));
  const acts = createCanaryGitopsActivities({ providerFor: factory.providerFor, mlflow: fakeMlflow(), links: LINKS, markerSecret: MARKER_SECRET });
  const storageUri = readServingFields(double.file('main', manifestPath)!, target(policy)).storageUri!;
  const writes = () => double.requests.filter((r) => r.method !== 'GET').map((r) => r.operationId ?? r.path);
  return { model, double, policy, acts, storageUri, writes };
}

async function plainGit() {
  const model = unique('canary-git');
  const dir = mkdtempSync(join(testStack().dataDir, 'canary-commit-'));
  const repo = await initLocalGitopsRepo(join(dir, 'gitops.git'), { model, namespace: 'models', name: model });
  const policy = policyOf('git', repo.repo, model, repo.manifestPath);
  const factory = createProviderFactory(loadGitopsConfig({ MODELGATE_GIT_WORKDIR: join(dir, 'work') }));
  const acts = createCanaryGitopsActivities({ providerFor: factory.providerFor, mlflow: fakeMlflow(), links: LINKS, markerSecret: MARKER_SECRET });
  const git = (...args: string[]) => execFileSync('git', ['--git-dir', repo.repo, ...args], { encoding: 'utf8' });
  const manifest = () => git('show', `main:${repo.manifestPath}`);
  const storageUri = readServingFields(manifest(), target(policy)).storageUri!;
  return { model, repo, policy, acts, storageUri, git, manifest };
}

describe('canary step commits on GitHub', { concurrency: true }, () => {
  test('when a step is committed and then retried, then main gets one commit of its own and the retry adopts it', async () => {
    const s = await github();
    const first = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(first.alreadyApplied, false);
    assert.deepEqual(s.writes(), ['repos/create-or-update-file-contents']);
    assert.equal(s.double.branch('main'), first.mergeSha);
    assert.equal(readCanaryPercent(s.double.file('main', s.policy.manifestPath)!, target(s.policy)), 50);
    const again = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.deepEqual(again, { ...first, alreadyApplied: true });
    assert.equal(s.writes().length, 1, 'the retry wrote nothing');
    assert.deepEqual(s.double.problems, []);
  });

  test('when main refuses a direct commit (protected: through a pull request), then the step is a branch merged once', async () => {
    const s = await github();
    s.double.fault({ operationId: 'repos/create-or-update-file-contents', reply: { status: 409, body: { message: 'Changes must be made through a pull request.', documentation_url: 'https://docs.github.com/articles/about-protected-branches', status: '409' } } });
    const done = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(done.branch, canaryBranch(s.model, 2, 1));
    assert.deepEqual(s.writes(), ['repos/create-or-update-file-contents', 'git/create-ref', 'repos/create-or-update-file-contents', 'pulls/create', 'pulls/merge']);
    assert.equal(readCanaryPercent(s.double.file('main', s.policy.manifestPath)!, target(s.policy)), 50);
    assert.deepEqual(s.double.problems, []);
  });
});

describe('canary step commits on a plain git remote', () => {
  test('when a step is committed and then retried, then main gets one commit of its own and the retry adopts it', async () => {
    const s = await plainGit();
    const before = s.git('rev-parse', 'main').trim();
    const first = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(first.alreadyApplied, false);
    assert.equal(s.git('rev-parse', 'main').trim(), first.mergeSha);
    assert.equal(s.git('rev-parse', `${first.mergeSha}^`).trim(), before, 'one commit straight on main');
    assert.equal(readCanaryPercent(s.manifest(), target(s.policy)), 50);
    const again = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.deepEqual(again, { ...first, alreadyApplied: true });
    assert.equal(s.git('rev-parse', 'main').trim(), first.mergeSha, 'the retry committed nothing');
  });

  test('when a commit on main only imitates the step marker, then it is not adopted and the step is committed itself', async () => {
    const s = await plainGit();
    // Someone with push rights copies the step's marker prefix onto a commit of theirs (no valid MAC).
    const seed = mkdtempSync(join(testStack().dataDir, 'canary-forge-'));
    execFileSync('git', ['clone', '-q', s.repo.repo, seed]);
    const sh = (...args: string[]) => execFileSync('git', ['-C', seed, '-c', 'user.name=mallory', '-c', 'user.email=m@example.com', ...args], { encoding: 'utf8' });
    writeFileSync(join(seed, s.repo.manifestPath), `${s.manifest()}# touched\n`);
    sh('commit', '-qam', `forged step\n\n${markerPrefix(canaryBranch(s.model, 2, 1))}"kind":"canary","mac":"${'0'.repeat(64)}"} -->`);
    sh('push', '-q', 'origin', 'HEAD:main');
    const forged = s.git('rev-parse', 'main').trim();
    const done = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(done.alreadyApplied, false);
    assert.notEqual(done.mergeSha, forged);
    assert.equal(s.git('rev-parse', `${done.mergeSha}^`).trim(), forged);
    assert.equal(readCanaryPercent(s.manifest(), target(s.policy)), 50);
  });

  test('when the remote refuses direct commits to main (merges only), then the step falls back to a branch merged once', async () => {
    const s = await plainGit();
    const hook = join(s.repo.repo, 'hooks', 'pre-receive');
    writeFileSync(hook, '#!/bin/sh\nwhile read old new ref; do\n  if [ "$ref" = refs/heads/main ] && [ "$(git rev-list --parents -n 1 "$new" | wc -w)" -lt 3 ]; then echo "main: merges only" >&2; exit 1; fi\ndone\n');
    chmodSync(hook, 0o755);
    const done = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(done.branch, canaryBranch(s.model, 2, 1));
    assert.equal(s.git('rev-list', '--parents', '-n', '1', 'main').trim().split(' ').length, 3, 'main moved by a merge');
    assert.equal(readCanaryPercent(s.manifest(), target(s.policy)), 50);
    const again = await s.acts.commitCanaryStep(stepInput(s.policy, s.model, s.storageUri));
    assert.equal(again.alreadyApplied, true);
    assert.equal(again.mergeSha, done.mergeSha);
  });
});
