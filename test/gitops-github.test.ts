/**
 * GitOps through GitHub: the production provider (Octokit with the retry and throttling plugins, unchanged)
 * against a local double of the GitHub REST API whose every request and response is validated against
 * GitHub's official OpenAPI description. Each test has its own double (own port, own rate-limit state), so
 * the tests run concurrently; each ends by asserting the double saw nothing undocumented or premature.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { createGitopsActivities } from '../src/activities/gitops.js';
import { createProviderFactory, loadGitopsConfig, type ProviderFactoryOptions } from '../src/config/gitops.js';
import { readServingFields } from '../src/gitops/manifest.js';
import { promotionBranch, retireBranch, retireRevertBranch, revertBranch } from '../src/gitops/provider.js';
import type { IdentityRef } from '../src/identity/types.js';
import type { GitopsPolicy } from '../src/policy/types.js';
import { PROJECT_ROOT } from '../src/stack/embedded.js';
import { GitHubDouble } from './support/github-double.js';
import { fakeMlflow, isvcManifest, MARKER_SECRET } from './support/github-fixtures.js';
import { unique } from './support/stack.js';
import { until } from './support/wait.js';

const TOKEN = 'ghp_modelgatetesttoken';
const doubles: GitHubDouble[] = [];

before(() => {
  // Parse GitHub's OpenAPI description and compile the validators once, before the tests start their clocks.
  GitHubDouble.warmUp();
});
after(async () => {
  await Promise.all(doubles.map((d) => d.close()));
});

interface Setup {
  double: GitHubDouble;
  policy: GitopsPolicy;
  model: string;
  activities: ReturnType<typeof createGitopsActivities>;
  input: { model: string; version: number; workflowId: string; policy: GitopsPolicy };
}

async function setup(
  opts: {
    env?: NodeJS.ProcessEnv;
    factory?: ProviderFactoryOptions;
    app?: { appId: string; installationId: number; publicKeyPem: string };
    mergeMethod?: GitopsPolicy['mergeMethod'];
    identities?: { byGithubLogin(login: string): IdentityRef | undefined };
  } = {},
): Promise<Setup> {
  const model = unique('fraud');
  const manifestPath = `clusters/prod/${model}.yaml`;
  const double = await GitHubDouble.start({ owner: 'acme', repo: 'gitops', token: TOKEN, app: opts.app, files: { [manifestPath]: isvcManifest(model), 'README.md': 'gitops\n' } });
  doubles.push(double);
  const policy: GitopsPolicy = {
    provider: 'github',
    repo: 'acme/gitops',
    baseBranch: 'main',
    manifestPath,
    namespace: 'models',
    inferenceService: model,
    mergeMethod: opts.mergeMethod ?? 'squash',
    storageUriPrefixMap: [{ from: 'mlflow-artifacts:/', to: 's3://mlflow/' }],
    reapproveOnChange: true,
  };
  const env = opts.env ?? { GITHUB_TOKEN: TOKEN };
  const factory = createProviderFactory(loadGitopsConfig({ ...env, GITHUB_API_URL: double.baseUrl }), opts.factory);
  const activities = createGitopsActivities({
    providerFor: factory.providerFor,
    mlflow: fakeMlflow(),
    links: { mlflowUiUrl: 'https://mlflow.example', temporalUiUrl: 'https://temporal.example', namespace: 'prod' },
    markerSecret: MARKER_SECRET,
    identities: opts.identities,
  });
  return { double, policy, model, activities, input: { model, version: 2, workflowId: `modelgate/${model}/v2`, policy } };
}

function writes(d: GitHubDouble): string[] {
  return d.requests.filter((r) => r.method !== 'GET').map((r) => r.operationId ?? r.path);
}

function count(d: GitHubDouble, operationId: string): number {
  return d.requests.filter((r) => r.operationId === operationId).length;
}

async function rejectsWith(p: Promise<unknown>, type: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `expected ApplicationFailure, got ${String(err)}`);
    assert.equal(err.type, type, err.message);
    assert.equal(err.nonRetryable, true);
    if (message) assert.match(err.message, message);
    return true;
  });
}


describe('GitHub provider against the OpenAPI-validated double', { concurrency: true }, () => {
  test('when modelgate explains on the PR why it was not promoted, then the comment is written once per key and masks credentials', async () => {
    const s = await setup();
    await s.activities.openPromotionPullRequest(s.input);
    const note = { ...s.input, key: 'recheck-r1-1', body: 'the re-check failed: accuracy 0.92 < 0.95 (see https://bot:hunter2@mlflow.example/x)' };
    assert.equal(await s.activities.commentOnPullRequest(note), true);
    assert.equal(await s.activities.commentOnPullRequest(note), true);
    assert.equal(count(s.double, 'issues/create-comment'), 1);
    const body = s.double.commentBodies(1).join('\n');
    assert.match(body, /accuracy 0\.92 < 0\.95/);
    assert.doesNotMatch(body, /hunter2/);
    await s.activities.commentOnPullRequest({ ...note, key: 'recheck-r2-2' });
    assert.equal(count(s.double, 'issues/create-comment'), 2);
  });

  test('when a version is promoted, then one branch, one commit and one PR are created and approval squash-merges it', async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest({ ...s.input, evaluation: { passed: true, checks: [], reasons: [], candidateMetrics: { auc: 0.91 }, baselineMetrics: { auc: 0.9 }, baselineVersion: 1 } });
    const branch = promotionBranch(s.model, 2);
    assert.deepEqual(writes(s.double), ['git/create-ref', 'repos/create-or-update-file-contents', 'pulls/create']);
    assert.equal(ref.provider, 'github');
    assert.equal(ref.id, '1');
    assert.equal(ref.url, 'https://github.example/acme/gitops/pull/1');
    assert.equal(ref.branch, branch);
    assert.equal(ref.headSha, s.double.branch(branch));
    assert.equal(ref.storageUri, 's3://mlflow/3/models/m-2/artifacts');
    assert.equal(ref.previousStorageUri, `s3://models/${s.model}/v0`);

    const [pr] = s.double.pullRequests();
    assert.equal(pr?.title, `Promote ${s.model} v2 to Production`);
    assert.ok(pr?.body?.includes('https://mlflow.example/#/experiments/3/runs/run2'));
    assert.ok(pr?.body?.includes(`https://temporal.example/namespaces/prod/workflows/${encodeURIComponent(s.input.workflowId)}`));
    assert.ok(pr?.body?.includes('| `auc` | 0.91 | 0.9 | +0.01 |'));
    // The branch changes only the serving lines.
    const before = s.double.file('main', s.policy.manifestPath)!.split('\n');
    const afterLines = s.double.file(branch, s.policy.manifestPath)!.split('\n');
    assert.deepEqual(before.filter((l) => !afterLines.includes(l)), ['      storageUri: s3://models/' + s.model + '/v0   # first version']);
    assert.equal(afterLines.length - before.length, 7);
    assert.deepEqual(readServingFields(s.double.file(branch, s.policy.manifestPath)!, { namespace: 'models', name: s.model }), {
      storageUri: 's3://mlflow/3/models/m-2/artifacts',
      model: s.model,
      version: '2',
      runId: 'run2',
    });

    // Checks of the head: none, then pending, failing, passing.
    const status = () => s.activities.getPullRequestStatus(s.input);
    assert.equal((await status())?.checks, 'none');
    s.double.setStatus(ref.headSha!, 'pending');
    assert.equal((await status())?.checks, 'pending');
    s.double.setCheckRun(ref.headSha!, 'lint', 'completed', 'failure');
    s.double.setStatus(ref.headSha!, 'success');
    assert.equal((await status())?.checks, 'failure');
    s.double.setCheckRun(ref.headSha!, 'lint', 'completed', 'success');
    assert.equal((await status())?.checks, 'success');

    const merged = await s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice', 'bob'] });
    assert.equal(merged.alreadyMerged, false);
    assert.equal(merged.mergeSha, s.double.branch('main'));
    assert.equal(s.double.commitInfo(merged.mergeSha)?.parents.length, 1);
    assert.match(s.double.commitInfo(merged.mergeSha)!.message, new RegExp(`^Promote ${s.model} v2 to Production \\(#1\\)\\n\\nApproved-by: alice\\nApproved-by: bob\\nModelgate-Branch: ${branch}$`));
    const again = await s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice', 'bob'] });
    assert.deepEqual(again, { mergeSha: merged.mergeSha, mergedBy: 'modelgate-bot', headSha: ref.headSha, alreadyMerged: true });
    assert.equal(count(s.double, 'pulls/merge'), 1);
    const st = await status();
    assert.equal(st?.state, 'merged');
    assert.equal(st?.mergedBy, 'modelgate-bot');
    const serving = await s.activities.readServingManifest({ policy: s.policy });
    assert.deepEqual(serving, { storageUri: 's3://mlflow/3/models/m-2/artifacts', model: s.model, version: '2', runId: 'run2', commit: merged.mergeSha });
    assert.deepEqual(s.double.problems, []);
  });

  test('when the PR already exists, then opening again (same or fresh worker) adopts it without writing', async () => {
    const s = await setup();
    const first = await s.activities.openPromotionPullRequest(s.input);
    const writesBefore = writes(s.double).length;
    const again = await s.activities.openPromotionPullRequest(s.input);
    const fresh = createGitopsActivities({
      providerFor: createProviderFactory(loadGitopsConfig({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: s.double.baseUrl })).providerFor,
      mlflow: fakeMlflow(),
      links: { namespace: 'prod' },
      markerSecret: MARKER_SECRET,
    });
    const third = await fresh.openPromotionPullRequest(s.input);
    assert.deepEqual(again, first);
    assert.deepEqual(third, first);
    assert.equal(writes(s.double).length, writesBefore);
    assert.equal(s.double.pullRequests().length, 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the PR list lags and creation answers 422 "already exists", then the existing PR is adopted', async () => {
    const s = await setup();
    const first = await s.activities.openPromotionPullRequest(s.input);
    // GitHub's search index lags: the next two lookups do not show the PR yet.
    s.double.fault({ operationId: 'pulls/list', times: 2, reply: { status: 200, body: [] } });
    const again = await s.activities.openPromotionPullRequest(s.input);
    assert.deepEqual(again, first);
    const creates = s.double.requests.filter((r) => r.operationId === 'pulls/create');
    assert.deepEqual(creates.map((r) => r.status), [201, 422]);
    // The branch already held the change: no second ref, no second commit.
    assert.equal(count(s.double, 'git/create-ref'), 1);
    assert.equal(count(s.double, 'repos/create-or-update-file-contents'), 1);
    assert.equal(s.double.pullRequests().length, 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the activity failed after committing to the branch, then the retry reuses the branch commit and opens the PR', async () => {
    const s = await setup();
    s.double.fault({ operationId: 'pulls/create', reply: { status: 403, body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' } } });
    await rejectsWith(s.activities.openPromotionPullRequest(s.input), 'GitopsForbidden', /Resource not accessible by integration/);
    const head = s.double.branch(promotionBranch(s.model, 2));
    const ref = await s.activities.openPromotionPullRequest(s.input);
    assert.equal(ref.headSha, head);
    assert.equal(count(s.double, 'git/create-ref'), 1);
    assert.equal(count(s.double, 'repos/create-or-update-file-contents'), 1);
    assert.equal(s.double.pullRequests().length, 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the worker is killed after GitHub created the PR but before the activity completed, then the retry finds exactly one PR', async () => {
    const s = await setup();
    s.double.fault({ operationId: 'pulls/create', hang: true });
    const child = spawn(
      process.execPath,
      [join(PROJECT_ROOT, 'dist', 'test', 'support', 'github-child.js'), JSON.stringify({ baseUrl: s.double.baseUrl, token: TOKEN, policy: s.policy, model: s.model, version: 2 })],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ? null : code)));
    await until('the PR creation request to be held', () => s.double.hungRequests > 0);
    assert.equal(s.double.pullRequests().length, 1, 'GitHub has created the PR');
    child.kill('SIGKILL');
    assert.equal(await exited, null, 'the worker died by SIGKILL');

    const ref = await s.activities.openPromotionPullRequest(s.input);
    assert.equal(ref.id, '1');
    assert.equal(ref.storageUri, 's3://mlflow/3/models/m-2/artifacts');
    assert.equal(ref.previousStorageUri, `s3://models/${s.model}/v0`);
    assert.equal(s.double.pullRequests().length, 1);
    assert.equal(count(s.double, 'pulls/create'), 1);
    assert.equal(count(s.double, 'git/create-ref'), 1);
    assert.equal(count(s.double, 'repos/create-or-update-file-contents'), 1);
    assert.deepEqual(s.double.problems, []);
  });

  for (const status of [403, 429] as const) {
    test(`when GitHub answers ${status} with x-ratelimit-remaining 0, then no request is sent before x-ratelimit-reset`, async () => {
      const s = await setup();
      // A read: writes are spaced ≥ 1-3 s by the throttling plugin anyway, which could hide an early retry.
      s.double.primaryRateLimit({ status, resetAfterSeconds: 2, operationId: 'pulls/list' });
      const ref = await s.activities.openPromotionPullRequest(s.input);
      assert.equal(ref.id, '1');
      const [limit] = s.double.limits;
      assert.ok(limit?.reset, 'a primary limit was answered');
      // One limited answer: a retry before the reset would have been refused (and counted) again.
      assert.equal(s.double.requests.filter((r) => r.status === status).length, 1);
      const limitedAt = s.double.requests.findIndex((r) => r.status === status);
      const next = s.double.requests[limitedAt + 1];
      assert.ok(next.at >= limit.reset * 1000, `next request at ${next.at}, reset at ${limit.reset * 1000}`);
      assert.equal(next.operationId, 'pulls/list');
      assert.equal(s.double.pullRequests().length, 1);
      // Bounded: the wait is the reset (2-3 s ahead) plus the plugin's 1 s margin (plus load), not minutes.
      assert.ok(next.at - s.double.requests[limitedAt].at < 20_000, `waited ${next.at - s.double.requests[limitedAt].at} ms`);
      assert.deepEqual(s.double.problems, []);
    });
  }

  test('when a secondary rate limit says retry-after, then the retry waits that long', async () => {
    const s = await setup();
    s.double.secondaryRateLimit({ retryAfter: 2, operationId: 'git/create-ref' });
    await s.activities.openPromotionPullRequest(s.input);
    const i = s.double.requests.findIndex((r) => r.status === 403);
    const limited = s.double.requests[i];
    const next = s.double.requests[i + 1];
    assert.equal(next.operationId, 'git/create-ref');
    assert.ok(next.at - limited.at >= 2000, `waited ${next.at - limited.at} ms`);
    assert.equal(count(s.double, 'git/create-ref'), 2);
    assert.deepEqual(s.double.problems, []);
  });

  test('when secondary rate limits come without retry-after, then the fallback wait is used and doubles on repeated hits', async () => {
    // The fallback (60 s in production) is shortened through the throttling plugin's own option.
    const s = await setup({ factory: { throttle: { fallbackSecondaryRateRetryAfter: 1 } } });
    s.double.secondaryRateLimit({ operationId: 'git/create-ref', minimumWaitSeconds: 1 });
    s.double.secondaryRateLimit({ operationId: 'git/create-ref', minimumWaitSeconds: 2 });
    await s.activities.openPromotionPullRequest(s.input);
    const calls = s.double.requests.filter((r) => r.operationId === 'git/create-ref');
    assert.deepEqual(calls.map((c) => c.status), [403, 403, 201]);
    assert.ok(calls[1].at - calls[0].at >= 1000, `first wait ${calls[1].at - calls[0].at} ms`);
    assert.ok(calls[2].at - calls[1].at >= 2000, `second wait ${calls[2].at - calls[1].at} ms`);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the rate limit resets too far ahead, then the attempt ends retryable with nextRetryDelay until the reset', async () => {
    const s = await setup();
    s.double.primaryRateLimit({ status: 403, resetAfterSeconds: 600, operationId: 'pulls/list' });
    await assert.rejects(s.activities.openPromotionPullRequest(s.input), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'GitHubRateLimited');
      assert.equal(err.nonRetryable, false);
      assert.ok(Number(err.nextRetryDelay) >= 590_000, String(err.nextRetryDelay));
      return true;
    });
    // A second attempt in the same process does not even reach GitHub before the reset.
    const sent = s.double.requests.length;
    await assert.rejects(s.activities.getPullRequestStatus(s.input), (err: unknown) => err instanceof ApplicationFailure && err.type === 'GitHubRateLimited');
    assert.equal(s.double.requests.length, sent);
    assert.deepEqual(s.double.problems, []);
  });

  test('when GitHub answers 405 to the merge, then the failure is non-retryable and says a human must act', async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest(s.input);
    s.double.setMergeable(1, false);
    await rejectsWith(
      s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice'] }),
      'PullRequestNotMergeable',
      /Pull Request is not mergeable.*A human must act/,
    );
    assert.equal(s.double.pullRequests()[0]?.state, 'open');
    assert.deepEqual(s.double.problems, []);
  });

  test('when the merge answers 409 once with the head unchanged, then it re-reads and merges', async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest(s.input);
    s.double.fault({ operationId: 'pulls/merge', reply: { status: 409, body: { message: 'Head branch was modified. Review and try the merge again.' } } });
    const merged = await s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice'] });
    assert.equal(merged.mergeSha, s.double.branch('main'));
    assert.deepEqual(s.double.requests.filter((r) => r.operationId === 'pulls/merge').map((r) => r.status), [409, 200]);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the head changes after approval, then the merge is refused before and during the merge call', async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest(s.input);
    const branch = promotionBranch(s.model, 2);
    s.double.push(branch, { 'extra.txt': 'sneaky\n' });
    await rejectsWith(s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice'] }), 'PullRequestHeadChanged', /approved again/);
    assert.equal(count(s.double, 'pulls/merge'), 0);

    // Race: the head moves between modelgate's read and its merge call; GitHub answers 409.
    const current = s.double.branch(branch)!;
    s.double.fault({ operationId: 'pulls/merge', before: () => s.double.push(branch, { 'extra.txt': 'sneakier\n' }) });
    await rejectsWith(s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: current, approvers: ['alice'] }), 'PullRequestHeadChanged');
    assert.deepEqual(s.double.requests.filter((r) => r.operationId === 'pulls/merge').map((r) => r.status), [409]);
    assert.equal(s.double.pullRequests()[0]?.merged, false);
    assert.deepEqual(s.double.problems, []);
  });

  test('when a human merges the PR on GitHub, then the status is merged by that human and merging adopts it', async () => {
    const s = await setup();
    await s.activities.openPromotionPullRequest(s.input);
    const sha = s.double.humanMerge(1, 'dana');
    const st = await s.activities.getPullRequestStatus(s.input);
    assert.equal(st?.state, 'merged');
    assert.equal(st?.mergedBy, 'dana');
    assert.equal(st?.mergeSha, sha);
    const merged = await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
    assert.deepEqual(merged, { mergeSha: sha, mergedBy: 'dana', headSha: st?.headSha, alreadyMerged: true });
    assert.equal(count(s.double, 'pulls/merge'), 0);
    assert.deepEqual(s.double.problems, []);
  });

  test('when a human closes the PR, then the status is closed by them and merging is refused', async () => {
    const s = await setup();
    await s.activities.openPromotionPullRequest(s.input);
    s.double.humanClose(1, 'erin');
    const st = await s.activities.getPullRequestStatus(s.input);
    assert.equal(st?.state, 'closed');
    assert.equal(st?.closedBy, 'erin');
    await rejectsWith(s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] }), 'PullRequestClosed', /closed by erin/);
    assert.deepEqual(s.double.problems, []);
  });

  test('when modelgate rejects the version, then the PR gets one comment and is closed, even when closing is retried', async () => {
    const s = await setup();
    await s.activities.openPromotionPullRequest(s.input);
    // The first attempt's comment is created but its answer does not arrive; the activity is retried.
    s.double.fault({ operationId: 'issues/create-comment', hang: true });
    const slow = s.activities.closePromotionPullRequest({ ...s.input, reason: 'AUC regression', by: 'frank' });
    await until('the comment request to be held', () => s.double.hungRequests > 0);
    const closed = await s.activities.closePromotionPullRequest({ ...s.input, reason: 'AUC regression', by: 'frank' });
    assert.equal(closed?.state, 'closed');
    assert.equal(closed?.closedBy, 'modelgate-bot');
    s.double.releaseHung();
    assert.equal((await slow)?.state, 'closed');
    assert.equal(s.double.pullRequests()[0]?.comments, 1);
    assert.match(s.double.pullRequests()[0].state, /closed/);
    assert.equal(count(s.double, 'issues/create-comment'), 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when a merged promotion is reverted, then a revert PR restores the previous manifest and merges', async () => {
    const s = await setup({ mergeMethod: 'merge' });
    const original = s.double.file('main', s.policy.manifestPath);
    await s.activities.openPromotionPullRequest(s.input);
    const { mergeSha } = await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
    assert.equal(s.double.commitInfo(mergeSha)?.parents.length, 2);
    const revert = await s.activities.openRevertPullRequest({ ...s.input, mergeSha, reason: 'error rate up' });
    assert.equal(revert.branch, revertBranch(s.model, 2));
    assert.equal(revert.id, '2');
    assert.deepEqual(await s.activities.openRevertPullRequest({ ...s.input, mergeSha, reason: 'error rate up' }), revert);
    const reverted = await s.activities.mergeRevertPullRequest(s.input);
    assert.equal(s.double.file('main', s.policy.manifestPath), original);
    assert.equal(reverted.mergeSha, s.double.branch('main'));
    assert.deepEqual(s.double.problems, []);
  });

  test('when a Production version is retired with onRetire previous, then the retire PR points the manifest back at the previous version and merges', async () => {
    const s = await setup({ mergeMethod: 'merge' });
    await s.activities.openPromotionPullRequest(s.input);
    await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
    const key = { ...s.input, attempt: 1 };
    const ref = await s.activities.openRetirePullRequest({ ...key, retiredBy: 'bob', reason: 'drift', onRetire: 'previous', previousVersion: 1 });
    assert.equal(ref.branch, retireBranch(s.model, 2, 1));
    assert.equal(ref.storageUri, 's3://mlflow/3/models/m-1/artifacts');
    assert.equal(ref.previousStorageUri, 's3://mlflow/3/models/m-2/artifacts');
    assert.deepEqual(await s.activities.openRetirePullRequest({ ...key, retiredBy: 'bob', reason: 'drift', onRetire: 'previous', previousVersion: 1 }), ref, 'a retry adopts it');
    const pr = s.double.pullRequests().find((p) => p.head === ref.branch);
    assert.equal(pr?.title, `Retire ${s.model} v2: back to v1`);
    assert.match(pr?.body ?? '', /\| Retired by \| bob \|[\s\S]*\| Reason \| drift \|/);
    const merged = await s.activities.mergeRetirePullRequest({ ...key, expectedHeadSha: ref.headSha, retiredBy: 'bob', previousVersion: 1 });
    assert.equal(merged.mergeSha, s.double.branch('main'));
    assert.deepEqual(readServingFields(s.double.file('main', s.policy.manifestPath)!, { namespace: 'models', name: s.model }), {
      storageUri: 's3://mlflow/3/models/m-1/artifacts',
      model: s.model,
      version: '1',
      runId: 'run1',
    });
    assert.deepEqual(s.double.problems, []);
  });

  test('when a version is retired with onRetire remove, then the retire PR deletes the manifest (no secret in its body) and its revert restores the file', async () => {
    const s = await setup({ mergeMethod: 'merge' });
    await s.activities.openPromotionPullRequest(s.input);
    await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
    const promoted = s.double.file('main', s.policy.manifestPath);
    const key = { ...s.input, attempt: 1 };
    const reason = 'sunset, see https://bob:hunter2secret@wiki.example/sunset';
    const ref = await s.activities.openRetirePullRequest({ ...key, retiredBy: 'bob', reason, onRetire: 'remove' });
    assert.equal(ref.deletesFile, true);
    assert.equal(ref.storageUri, undefined);
    assert.ok(writes(s.double).includes('repos/delete-file'));
    assert.equal(s.double.file(ref.branch, s.policy.manifestPath), undefined, 'the branch deletes the manifest');
    assert.deepEqual(await s.activities.openRetirePullRequest({ ...key, retiredBy: 'bob', reason, onRetire: 'remove' }), ref, 'a retry adopts it');
    const pr = s.double.pullRequests().find((p) => p.head === ref.branch);
    assert.equal(pr?.title, `Retire ${s.model} v2: remove its InferenceService`);
    assert.ok(!pr?.body?.includes('hunter2secret'), 'URL credentials in the reason are masked');
    assert.ok(!pr?.body?.includes(MARKER_SECRET));
    const { mergeSha } = await s.activities.mergeRetirePullRequest({ ...key, expectedHeadSha: ref.headSha, retiredBy: 'bob' });
    assert.equal(s.double.file('main', s.policy.manifestPath), undefined, 'main no longer has the manifest');

    const revert = await s.activities.openRetireRevertPullRequest({ ...key, mergeSha, reason: 'not pruned' });
    assert.equal(revert.branch, retireRevertBranch(s.model, 2, 1));
    await s.activities.mergeRevertPullRequest({ ...s.input, retireAttempt: 1 });
    assert.equal(s.double.file('main', s.policy.manifestPath), promoted, 'the revert restores the file byte for byte');
    assert.deepEqual(s.double.problems, []);
  });

  test('when the base no longer serves the version being retired, then opening the retire fails RetireNotApplicable and nothing is written', async () => {
    const s = await setup();
    const before = writes(s.double).length;
    await rejectsWith(
      s.activities.openRetirePullRequest({ ...s.input, attempt: 1, retiredBy: 'bob', onRetire: 'remove' }),
      'RetireNotApplicable',
      /serves s3:\/\/models\/.*\/v0, not .* v2/,
    );
    assert.equal(writes(s.double).length, before);
    assert.deepEqual(s.double.problems, []);
  });

  test('when authenticating as a GitHub App, then an installation token is obtained with a signed JWT and used', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const s = await setup({
      app: { appId: '4242', installationId: 77, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() },
      env: { GITHUB_APP_ID: '4242', GITHUB_APP_INSTALLATION_ID: '77', GITHUB_APP_PRIVATE_KEY: pem.replace(/\n/g, '\\n') },
    });
    const ref = await s.activities.openPromotionPullRequest(s.input);
    assert.equal(ref.id, '1');
    assert.equal(count(s.double, 'apps/create-installation-access-token'), 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the token is wrong, then the failure is non-retryable GitopsAuthFailed without the token in the message', async () => {
    const s = await setup({ env: { GITHUB_TOKEN: 'ghp_wrongtoken' } });
    await assert.rejects(s.activities.openPromotionPullRequest(s.input), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'GitopsAuthFailed');
      assert.ok(!err.message.includes('ghp_wrongtoken'));
      return true;
    });
    assert.deepEqual(s.double.problems, ['pulls/list: bad credentials (token)']);
  });

  test('when the double is asked for something GitHub does not document, then it reports the drift', async () => {
    const s = await setup();
    const res = await fetch(`${s.double.baseUrl}/repos/acme/gitops/pulls?state=everything`, { headers: { authorization: `token ${TOKEN}` } });
    await res.arrayBuffer();
    const res2 = await fetch(`${s.double.baseUrl}/repos/acme/gitops/promotions`, { headers: { authorization: `token ${TOKEN}` } });
    await res2.arrayBuffer();
    assert.equal(s.double.problems.length, 2);
    assert.match(s.double.problems[0], /query parameter state=everything/);
    assert.match(s.double.problems[1], /unknown route/);
  });
});

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('GitHub provider: only what modelgate opened is adopted, mergers through the directory', { concurrency: true }, () => {
  const evil = (model: string) => isvcManifest(model).replace(/storageUri: .*/, 'storageUri: s3://evil/model');

  test("when someone created the next version's branch in advance, then opening fails with ForeignPullRequest and nothing is written", async () => {
    const s = await setup();
    const branch = promotionBranch(s.model, 2);
    const head = s.double.humanBranch(branch, { [s.policy.manifestPath]: evil(s.model), 'jobs/cron.yaml': 'kind: CronJob\n' });
    await assert.rejects(s.activities.openPromotionPullRequest(s.input), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'ForeignPullRequest');
      assert.equal(err.nonRetryable, true);
      assert.equal(err.message, `branch ${branch} exists but was not opened by modelgate (no valid marker); delete it or close the PR`);
      return true;
    });
    assert.deepEqual(writes(s.double), []);
    assert.equal(s.double.branch(branch), head);
    assert.equal(s.double.pullRequests().length, 0);
    assert.deepEqual(s.double.problems, []);
  });

  test("when someone opened a PR from the next version's branch with a forged marker, then it is not adopted", async () => {
    const s = await setup();
    const branch = promotionBranch(s.model, 2);
    s.double.humanBranch(branch, { [s.policy.manifestPath]: evil(s.model) });
    const forged = `<!-- modelgate: {"v":2,"branch":"${branch}","kind":"promotion","model":"${s.model}","version":2,"mac":"${'0'.repeat(64)}"} -->`;
    s.double.humanPullRequest(branch, { title: `Promote ${s.model} v2 to Production`, body: forged });
    await rejectsWith(
      s.activities.openPromotionPullRequest(s.input),
      'ForeignPullRequest',
      new RegExp(`^branch ${escapeRe(branch)} exists but its manifest at [0-9a-f]{12} points at s3://evil/model, not s3://mlflow/3/models/m-2/artifacts from MLflow; delete it or close the PR$`),
    );
    assert.deepEqual(writes(s.double), []);
    assert.equal(s.double.pullRequests().length, 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when an earlier attempt created the branch at an older base and crashed before committing, then the retry builds on it', async () => {
    const s = await setup();
    const branch = promotionBranch(s.model, 2);
    s.double.humanBranch(branch, {});
    s.double.push('main', { 'README.md': 'gitops, later\n' });
    const ref = await s.activities.openPromotionPullRequest(s.input);
    assert.equal(ref.storageUri, 's3://mlflow/3/models/m-2/artifacts');
    assert.deepEqual(writes(s.double), ['repos/create-or-update-file-contents', 'pulls/create']);
    assert.equal(count(s.double, 'repos/compare-commits-with-basehead'), 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the open is retried, then its own PR is adopted (valid marker), and refused by workers with another secret', async () => {
    const s = await setup();
    const first = await s.activities.openPromotionPullRequest(s.input);
    const other = createGitopsActivities({
      providerFor: createProviderFactory(loadGitopsConfig({ GITHUB_TOKEN: TOKEN, GITHUB_API_URL: s.double.baseUrl })).providerFor,
      mlflow: fakeMlflow(),
      links: { namespace: 'prod' },
      markerSecret: 'another-workers-secret-0123',
    });
    await rejectsWith(other.openPromotionPullRequest(s.input), 'ForeignPullRequest', /was not opened by modelgate \(no valid marker for the manifest at [0-9a-f]{12}\)/);
    assert.deepEqual(await s.activities.openPromotionPullRequest(s.input), first);
    const [pr] = s.double.pullRequests();
    const commit = s.double.commitInfo(first.headSha!)!;
    for (const text of [pr.body!, commit.message]) {
      assert.match(text, /<!-- modelgate: \{"v":2,"branch":"[^"]+","kind":"promotion",.*"mac":"[0-9a-f]{64}"\} -->/);
      assert.ok(!text.includes(MARKER_SECRET), 'the marker never holds the secret');
    }
    assert.equal(count(s.double, 'pulls/create'), 1);
    assert.deepEqual(s.double.problems, []);
  });

  test('when the PR body is edited to another storage URI, then adoption takes the URI from MLflow; a removed marker or an edited manifest is refused', async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest(s.input);
    const body = s.double.pullRequests()[0].body!;
    s.double.editBody(1, body.replaceAll(ref.storageUri!, 's3://evil/model'));
    assert.ok(s.double.pullRequests()[0].body!.includes('s3://evil/model'));
    assert.deepEqual(await s.activities.openPromotionPullRequest(s.input), ref);

    s.double.editBody(1, body.replace(/<!-- modelgate: .* -->/, ''));
    await rejectsWith(s.activities.openPromotionPullRequest(s.input), 'ForeignPullRequest', /was not opened by modelgate \(no valid marker\)/);
    s.double.editBody(1, body);
    const branch = promotionBranch(s.model, 2);
    const proposed = s.double.file(branch, s.policy.manifestPath)!;
    s.double.push(branch, { [s.policy.manifestPath]: proposed.replace('protocolVersion: v2', 'protocolVersion: v1') });
    await rejectsWith(s.activities.openPromotionPullRequest(s.input), 'ForeignPullRequest', /was not opened by modelgate \(no valid marker for the manifest at [0-9a-f]{12}\)/);
    s.double.push(branch, { [s.policy.manifestPath]: proposed.replace(/storageUri: .*/, 'storageUri: s3://evil/model') });
    await rejectsWith(s.activities.openPromotionPullRequest(s.input), 'ForeignPullRequest', /points at s3:\/\/evil\/model, not s3:\/\/mlflow\/3\/models\/m-2\/artifacts from MLflow/);
    assert.deepEqual(writes(s.double), ['git/create-ref', 'repos/create-or-update-file-contents', 'pulls/create']);
    assert.deepEqual(s.double.problems, []);
  });

  test("when someone opens a PR from modelgate's branch into another base, then status and merge keep to modelgate's PR", async () => {
    const s = await setup();
    const ref = await s.activities.openPromotionPullRequest(s.input);
    s.double.humanBranch('release', {});
    const other = s.double.humanPullRequest(promotionBranch(s.model, 2), { base: 'release', body: s.double.pullRequests()[0].body ?? '' });
    assert.equal(other, 2);
    const st = await s.activities.getPullRequestStatus(s.input);
    assert.equal(st?.number, 1);
    assert.equal(st?.baseBranch, 'main');
    assert.deepEqual(await s.activities.openPromotionPullRequest(s.input), ref);
    const merged = await s.activities.mergePromotionPullRequest({ ...s.input, expectedHeadSha: ref.headSha, approvers: ['alice'] });
    assert.equal(merged.mergeSha, s.double.branch('main'));
    assert.deepEqual(s.double.pullRequests().map((p) => [p.number, p.merged]), [[1, true], [2, false]]);
    assert.deepEqual(s.double.problems, []);
  });

  test('when a person merges on GitHub, then the status carries their directory identity for a mapped login and none for an unmapped one', async () => {
    const directory: Record<string, IdentityRef> = { dana: { identity: 'dana@acme.example', groups: ['ml-approvers'] } };
    const identities = { byGithubLogin: (login: string) => directory[login] };
    for (const [login, identity] of [['dana', directory.dana], ['eve', undefined]] as const) {
      const s = await setup({ identities });
      const ref = await s.activities.openPromotionPullRequest(s.input);
      const mergeSha = s.double.humanMerge(1, login);
      const st = await s.activities.getPullRequestStatus(s.input);
      assert.equal(st?.state, 'merged');
      assert.equal(st?.mergedBy, login);
      assert.deepEqual(st?.mergedByIdentity, identity);
      assert.equal(st?.headSha, ref.headSha);
      const outcome = await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
      assert.deepEqual(outcome, { mergeSha, mergedBy: login, headSha: ref.headSha, alreadyMerged: true, ...(identity ? { mergedByIdentity: identity } : {}) });
      assert.deepEqual(s.double.problems, []);
    }
  });

  test('when a promotion PR is merged by someone without approval, then a revert PR restores the previous storage URI on the base branch', async () => {
    const s = await setup({ mergeMethod: 'merge' });
    const original = s.double.file('main', s.policy.manifestPath);
    const ref = await s.activities.openPromotionPullRequest(s.input);
    const mergeSha = s.double.humanMerge(1, 'mallory');
    // Pushes to the branch after the merge do not change what was merged.
    s.double.push(promotionBranch(s.model, 2), { 'later.txt': 'after the merge\n' });
    const st = await s.activities.getPullRequestStatus(s.input);
    assert.equal(st?.state, 'merged');
    assert.equal(st?.mergeSha, mergeSha);
    assert.equal(st?.headSha, ref.headSha);
    assert.equal((await s.activities.readServingManifest({ policy: s.policy })).storageUri, ref.storageUri);

    const revert = await s.activities.openRevertPullRequest({ ...s.input, mergeSha: st.mergeSha, reason: 'merged without approval' });
    assert.equal(revert.storageUri, `s3://models/${s.model}/v0`);
    assert.equal(revert.previousStorageUri, ref.storageUri);
    assert.deepEqual(await s.activities.openRevertPullRequest({ ...s.input, mergeSha: st.mergeSha, reason: 'merged without approval' }), revert);
    const reverted = await s.activities.mergeRevertPullRequest(s.input);
    assert.equal(reverted.mergeSha, s.double.branch('main'));
    assert.equal(s.double.file('main', s.policy.manifestPath), original);
    assert.equal((await s.activities.readServingManifest({ policy: s.policy })).storageUri, `s3://models/${s.model}/v0`);
    assert.deepEqual(s.double.problems, []);
  });

  test("when someone pushed the revert branch in advance, then opening the revert fails with ForeignPullRequest", async () => {
    const s = await setup({ mergeMethod: 'merge' });
    await s.activities.openPromotionPullRequest(s.input);
    const { mergeSha } = await s.activities.mergePromotionPullRequest({ ...s.input, approvers: ['alice'] });
    s.double.humanBranch(revertBranch(s.model, 2), { [s.policy.manifestPath]: evil(s.model) });
    await rejectsWith(s.activities.openRevertPullRequest({ ...s.input, mergeSha, reason: 'x' }), 'ForeignPullRequest', new RegExp(`^branch ${escapeRe(revertBranch(s.model, 2))} exists but was not opened by modelgate`));
    assert.equal(s.double.pullRequests().length, 1);
    assert.deepEqual(s.double.problems, []);
  });
});

test('when GitHub App settings are incomplete, then the config error names the missing key', () => {
  assert.throws(() => loadGitopsConfig({ GITHUB_APP_ID: '1' }), /GITHUB_APP_PRIVATE_KEY: required/);
  assert.throws(() => loadGitopsConfig({ GITHUB_TOKEN: 'x', GITHUB_APP_ID: '1' }), /either GITHUB_TOKEN or the GITHUB_APP_\* keys/);
  assert.throws(() => loadGitopsConfig({ GITHUB_APP_ID: '1', GITHUB_APP_INSTALLATION_ID: '2', GITHUB_APP_PRIVATE_KEY: 'secret-not-pem' }), (err: Error) => {
    assert.match(err.message, /^GITHUB_APP_PRIVATE_KEY: expected a PEM/);
    assert.ok(!err.message.includes('secret-not-pem'));
    return true;
  });
  assert.equal(loadGitopsConfig({}).github.apiUrl, 'https://api.github.com');
  assert.equal(loadGitopsConfig({}).github.auth, undefined);
});
