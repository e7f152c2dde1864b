/**
 * POST /webhooks/github in front of a recording stand-in for the Temporal client (no server needed): only
 * configured (repository, base branch) pairs are signalled, and what is signalled is a hint that carries
 * nothing the workflow could trust (no merger, no SHAs).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { buildServer, type ApiServer } from '../src/api/server.js';
import { webhookDeliveries } from '../src/api/metrics.js';
import { githubWebhookTargets, type GithubWebhookTarget } from '../src/api/routes/webhook-github.js';
import { loadApiConfig } from '../src/config/api.js';
import { createLogger } from '../src/observability/log.js';
import { parsePolicy } from '../src/policy/load.js';
import { githubSignature } from '../src/webhooks/signatures.js';
import { lifecycleWorkflowId } from '../src/workflows/definitions.js';

const SECRET = 'github-webhook-secret-for-unit-tests';

interface Sent {
  workflowId: string;
  signal: string;
  payload: unknown;
}

function recordingClient(sent: Sent[]): Client {
  const workflow = {
    getHandle: (workflowId: string) => ({
      signal: (def: string | { name: string }, payload: unknown) => {
        sent.push({ workflowId, signal: typeof def === 'string' ? def : def.name, payload });
        return Promise.resolve();
      },
    }),
  };
  return { workflow } as unknown as Client;
}

async function ignoredCount(): Promise<number> {
  const m = await webhookDeliveries.get();
  return m.values.find((v) => v.labels.source === 'github' && v.labels.outcome === 'ignored')?.value ?? 0;
}

describe('GitHub webhook: configured repositories only, hints only', () => {
  const sent: Sent[] = [];
  let targets: GithubWebhookTarget[] = [{ repo: 'Acme/GitOps', baseBranch: 'main' }];
  let app: ApiServer;
  let noPolicy: ApiServer;

  before(async () => {
    const config = loadApiConfig({ MODELGATE_GITHUB_WEBHOOK_SECRET: SECRET });
    app = buildServer({ client: recordingClient(sent), config, logger: createLogger('silent'), githubTargets: () => targets });
    // The API without any github gitops policy: nothing can be signalled.
    noPolicy = buildServer({ client: recordingClient(sent), config, logger: createLogger('silent') });
    await Promise.all([app.ready(), noPolicy.ready()]);
  });
  after(async () => {
    await Promise.all([app?.close(), noPolicy?.close()]);
  });

  const deliver = async (server: ApiServer, p: { repo?: string; base?: string; head?: string; merged?: boolean; id?: string }) => {
    const payload = JSON.stringify({
      action: 'closed',
      sender: { login: 'mallory' },
      repository: p.repo === undefined ? undefined : { full_name: p.repo },
      pull_request: {
        merged: p.merged ?? true,
        merge_commit_sha: 'f'.repeat(40),
        merged_by: { login: 'mallory' },
        head: { ref: p.head ?? 'modelgate/fraud/v3', sha: 'e'.repeat(40) },
        base: { ref: p.base ?? 'main' },
      },
    });
    const res = await server.inject({
      method: 'POST',
      url: '/webhooks/github',
      payload,
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'pull_request',
        'x-github-delivery': p.id ?? randomUUID(),
        'x-hub-signature-256': githubSignature(SECRET, payload),
      },
    });
    return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
  };

  it('when a signed delivery names a repository that no policy configures, then it is ignored and counted, and nothing is signalled', async () => {
    const before = await ignoredCount();
    const r = await deliver(app, { repo: 'acme/other-repo' });
    assert.equal(r.status, 202);
    assert.equal(r.json.status, 'ignored');
    assert.equal(r.json.reason, 'repository acme/other-repo is not a configured GitOps repository');
    assert.equal((await deliver(app, {})).json.reason, 'repository (none) is not a configured GitOps repository');
    assert.equal(await ignoredCount(), before + 2);
    assert.deepEqual(sent, []);
  });

  it('when the PR targets another base branch of the configured repository, then it is ignored', async () => {
    const r = await deliver(app, { repo: 'acme/gitops', base: 'staging' });
    assert.equal(r.status, 202);
    assert.equal(r.json.status, 'ignored');
    assert.equal(r.json.reason, 'base branch staging of acme/gitops is not a configured GitOps base branch');
    assert.deepEqual(sent, []);
  });

  it('when no policy uses the github provider, then every delivery is ignored with that reason', async () => {
    const r = await deliver(noPolicy, { repo: 'acme/gitops' });
    assert.equal(r.status, 202);
    assert.equal(r.json.status, 'ignored');
    assert.match(String(r.json.reason), /^no GitHub GitOps repository is configured/);
    const configured = targets;
    targets = [];
    try {
      assert.match(String((await deliver(app, { repo: 'acme/gitops' })).json.reason), /^no GitHub GitOps repository is configured/);
    } finally {
      targets = configured;
    }
    assert.deepEqual(sent, []);
  });

  it('when the configured repository (any case) and base branch match, then the lifecycle gets a hint carrying no merger and no SHAs', async () => {
    const id = randomUUID();
    const merged = await deliver(app, { repo: 'acme/gitops', id });
    assert.equal(merged.status, 202);
    assert.deepEqual(merged.json, { status: 'signalled', action: 'merged', model: 'fraud', version: 3 });
    const id2 = randomUUID();
    const closed = await deliver(app, { repo: 'ACME/gitops', merged: false, head: 'modelgate/team/fraud/v12', id: id2 });
    assert.equal(closed.json.status, 'signalled');
    assert.deepEqual(sent, [
      { workflowId: lifecycleWorkflowId('fraud', 3), signal: 'pullRequest', payload: { action: 'merged', hint: true, deliveryId: id } },
      { workflowId: lifecycleWorkflowId('team/fraud', 12), signal: 'pullRequest', payload: { action: 'closed', hint: true, deliveryId: id2 } },
    ]);
  });

  it("when the targets are derived from a policy, then only the github sections count, one per (repository, base)", () => {
    const gitops = (provider: string, repo: string, base = 'main') =>
      `    deployment:\n      mode: gitops\n      gitops: { provider: ${provider}, repo: ${repo}, baseBranch: ${base}, manifestPath: m.yaml, namespace: models, inferenceService: x }\n`;
    const set = parsePolicy(
      `defaults:\n  approval: { approvers: [alice] }\nmodels:\n  a:\n${gitops('github', 'acme/gitops')}  b:\n${gitops('github', 'Acme/GitOps')}  c:\n${gitops('github', 'acme/gitops', 'release')}  d:\n${gitops('git', '/srv/gitops.git')}  e:\n    deployment: { mode: registry }\n`,
      'targets.yaml',
    );
    assert.deepEqual(githubWebhookTargets(set), [
      { repo: 'Acme/GitOps', baseBranch: 'main' },
      { repo: 'acme/gitops', baseBranch: 'release' },
    ]);
  });
});
