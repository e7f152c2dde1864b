/**
 * Credentials in policy values: refused at load with file:line:col and where they belong instead, never
 * quoted back; a policy without them loads and reaches the workflow payload verbatim. Pure; no servers needed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { loadPolicyFile, parsePolicy, PolicyError } from '../src/policy/load.js';
import type { ModelPolicy } from '../src/policy/types.js';
import { hasUrlCredentials } from '../src/util/url-credentials.js';

const yaml = (...lines: string[]) => lines.join('\n') + '\n';

const GIT_HINT =
  'contains credentials in the URL; use a git credential helper or SSH key (provider git), or GITHUB_TOKEN / the GITHUB_APP_* keys (provider github), see docs/gitops.md; never the policy file';
const GENERIC_HINT = 'contains credentials in the URL; keep credentials in the environment or a mounted secret (see docs/policy.md); never in the policy file';

/** A gitops defaults block whose repo (line 7, value at column 13) and extra lines are the test's. */
function gitopsPolicy(provider: string, repo: string, ...extra: string[]): string {
  return yaml(
    'defaults:',
    '  approval: { approvers: [a] }',
    '  deployment:',
    '    mode: gitops',
    '    gitops:',
    `      provider: ${provider}`,
    `      repo: ${repo}`,
    '      manifestPath: isvc.yaml',
    '      namespace: ml',
    '      inferenceService: m',
    ...extra,
  );
}

describe('credentials in policy URLs are refused at load', () => {
  const cases: Array<{ when: string; text: string; secret: string; message: string }> = [
    {
      when: 'a git repo URL has user:token',
      text: gitopsPolicy('git', 'https://alice:ghp_s3cret@github.com/acme/serving.git'),
      secret: 'ghp_s3cret',
      message: `policy.yaml:7:13: defaults.deployment.gitops.repo: ${GIT_HINT}`,
    },
    {
      when: 'an ssh repo URL has user:password',
      text: gitopsPolicy('git', 'ssh://deploy:hunter2@git.example.com/serving.git'),
      secret: 'hunter2',
      message: `policy.yaml:7:13: defaults.deployment.gitops.repo: ${GIT_HINT}`,
    },
    {
      when: 'an https repo URL has a bare token as user (and the github provider would also want owner/name)',
      text: gitopsPolicy('github', '"https://ghp_s3cret@github.com/acme/serving"'),
      secret: 'ghp_s3cret',
      message: `policy.yaml:7:13: defaults.deployment.gitops.repo: ${GIT_HINT}`,
    },
    {
      when: 'an scp-like remote has user:password',
      text: gitopsPolicy('git', 'deploy:hunter2@git.example.com:serving.git'),
      secret: 'hunter2',
      message: `policy.yaml:7:13: defaults.deployment.gitops.repo: ${GIT_HINT}`,
    },
    {
      when: 'a kserve smokeUrl has user:password',
      text: yaml('defaults:', '  approval: { approvers: [a] }', '  deployment:', '    kserve: { smokeUrl: "http://admin:pw0rd@churn.ml-prod.svc" }'),
      secret: 'pw0rd',
      message:
        'policy.yaml:4:25: defaults.deployment.kserve.smokeUrl: contains credentials in the URL; the smoke probe sends no credentials, so give it an unauthenticated in-cluster readiness URL (see docs/policy.md); never credentials in the policy file',
    },
    {
      when: 'a storage URI mapping has credentials',
      text: gitopsPolicy('git', '/srv/git/serving', '      storageUriPrefixMap:', '        - { from: "s3://mlflow/", to: "https://minio:minio123@minio.local/models/" }'),
      secret: 'minio123',
      message:
        "policy.yaml:12:39: defaults.deployment.gitops.storageUriPrefixMap[0].to: contains credentials in the URL; storage credentials belong in KServe's storage secret on the InferenceService's service account; never in the policy file",
    },
    {
      when: 'a model entry overrides the repo with credentials',
      text: yaml(
        'defaults:',
        '  approval: { approvers: [a] }',
        'models:',
        '  churn:',
        '    deployment:',
        '      mode: gitops',
        '      gitops: { provider: git, repo: "https://u:tok3n@git.local/s.git", manifestPath: i.yaml, namespace: ml, inferenceService: churn }',
      ),
      secret: 'tok3n',
      message: `policy.yaml:7:38: models.churn.deployment.gitops.repo: ${GIT_HINT}`,
    },
    {
      when: 'an x- anchor block holds credentials, even unused, and another error comes earlier in the file',
      text: yaml('defaults:', '  approval: { approvers: [a], quorum: 0 }', 'x-remote: &remote "https://u:tok3n@git.local/s.git"'),
      secret: 'tok3n',
      message: `policy.yaml:3:19: x-remote: ${GENERIC_HINT}`,
    },
  ];
  for (const c of cases) {
    test(`when ${c.when}, then the error names file:line:col and where credentials go, without the secret`, () => {
      let err: unknown;
      try {
        parsePolicy(c.text, 'policy.yaml');
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof PolicyError, `expected PolicyError, got ${String(err)}`);
      assert.equal(err.message, c.message);
      assert.equal(err.message.includes(c.secret), false, 'the secret is never quoted');
      const [, line, col] = /^policy\.yaml:(\d+):(\d+):/.exec(c.message)!;
      assert.deepEqual([err.line, err.col], [Number(line), Number(col)]);
    });
  }

  describe('from disk', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'modelgate-policy-secrets-'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('when the policy file has a repo URL with user:token, then loading it fails with that path:line:col', () => {
      const file = join(dir, 'policy.yaml');
      writeFileSync(file, gitopsPolicy('git', 'https://alice:ghp_s3cret@github.com/acme/serving.git'));
      assert.throws(() => loadPolicyFile(file), { name: 'PolicyError', message: `${file}:7:13: defaults.deployment.gitops.repo: ${GIT_HINT}` });
    });
  });
});

describe('policies without credentials', () => {
  test('when URLs carry a user only (ssh, scp-like) or none, then the policy loads and the workflow payload holds them verbatim', () => {
    const text = yaml(
      'defaults:',
      '  approval: { approvers: [alice@example.com, bob] }',
      'models:',
      '  ssh-model:',
      '    deployment:',
      '      mode: gitops',
      '      gitops: { provider: git, repo: "ssh://git@github.com/acme/serving.git", manifestPath: i.yaml, namespace: ml, inferenceService: a }',
      '  scp-model:',
      '    deployment:',
      '      mode: gitops',
      '      gitops:',
      '        provider: git',
      '        repo: git@github.com:acme/serving.git',
      '        manifestPath: i.yaml',
      '        namespace: ml',
      '        inferenceService: b',
      '        storageUriPrefixMap: [{ from: "s3://mlflow/", to: "https://minio.local/models/" }]',
      '      kserve: { smokeUrl: "http://b.ml.svc" }',
    );
    const set = parsePolicy(text, 'policy.yaml');
    const repos = set.models().map((m) => set.policyFor(m).deployment.gitops?.repo);
    assert.deepEqual(repos, ['ssh://git@github.com/acme/serving.git', 'git@github.com:acme/serving.git']);
    // What the workflow records in history (and the state query returns) is this payload.
    for (const model of set.models()) {
      const policy = set.policyFor(model);
      const payload = defaultPayloadConverter.toPayload(policy);
      assert.deepEqual(defaultPayloadConverter.fromPayload<ModelPolicy>(payload), policy);
      assert.equal(hasUrlCredentials(Buffer.from(payload.data!).toString('utf8')), false);
    }
    assert.deepEqual(set.policyFor('scp-model').approval.approvers, ['alice@example.com', 'bob']);
    assert.equal(set.policyFor('scp-model').deployment.kserve?.smokeUrl, 'http://b.ml.svc');
  });
});

describe('hasUrlCredentials', () => {
  test('when a URL has a password part, or any userinfo on http(s), then it carries credentials', () => {
    for (const s of [
      'https://user:token@github.com/org/repo.git',
      'ssh://user:pass@host/repo',
      'https://ghp_token@github.com/org/repo',
      'git+https://x-access-token@github.com/org/repo',
      'redis://:pw@cache:6379',
      'deploy:pw@host:repo.git',
      'see HTTPS://U:P@H/x',
    ]) {
      assert.equal(hasUrlCredentials(s), true, s);
    }
  });

  test('when a URL has no userinfo or only an ssh user, then it carries none', () => {
    for (const s of [
      'git@github.com:org/repo',
      'ssh://git@github.com/org/repo.git',
      'https://github.com/org/repo',
      'https://h/x?mail=a@b.c',
      'alice@example.com',
      '/srv/git/serving',
      'accuracy >= 0.9',
    ]) {
      assert.equal(hasUrlCredentials(s), false, s);
    }
  });
});
