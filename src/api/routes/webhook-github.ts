/**
 * POST /webhooks/github — pull_request events of the GitOps repositories. Verified (X-Hub-Signature-256),
 * deduplicated by X-GitHub-Delivery, and accepted only for a configured (repository, base branch) pair — the
 * github gitops sections of the policy. A closed PR whose head branch is `modelgate/<model>/v<version>` becomes
 * a pullRequest signal to that lifecycle.
 *
 * The event is only a HINT that something happened: the signal carries nothing the workflow trusts (no merger,
 * no SHAs — a signed delivery proves it came from GitHub, not that its fields describe the PR modelgate opened).
 * The workflow re-reads the PR through the provider (getPullRequestStatus: GitHub API, merged_by mapped through
 * the directory, the merged head) before acting. Answers as soon as the signal is sent (GitHub allows 10 s).
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { lifecycleHandle } from '../../client.js';
import type { PolicySet } from '../../policy/load.js';
import { pullRequestSignal } from '../../workflows/definitions.js';
import { DeliveryDedupe } from '../../webhooks/dedupe.js';
import { verifyGithub } from '../../webhooks/signatures.js';
import { HttpError } from '../errors.js';
import { webhookDeliveries, webhookEvents } from '../metrics.js';
import { headerOf, keepRawBodies, parseJson, rawBody } from '../raw-body.js';

export const GITHUB_WEBHOOK_BODY_LIMIT = 1024 * 1024;

/** A GitOps repository (`owner/name`) and the base branch its promotion PRs merge into. */
export interface GithubWebhookTarget {
  repo: string;
  baseBranch: string;
}

export interface GithubWebhookDeps {
  client: Client;
  secret?: string;
  dedupe: DeliveryDedupe;
  /** The (repository, base branch) pairs events are accepted for; empty = every event is ignored. */
  targets: () => GithubWebhookTarget[] | Promise<GithubWebhookTarget[]>;
}

/**
 * The pullRequest signal the route sends: a hint only. The workflow must re-read the PR through the provider
 * (state, merged head, merged_by → directory identity) and act on that, never on the delivery's fields.
 */
export interface PullRequestHint {
  action: 'merged' | 'closed';
  hint: true;
  /** X-GitHub-Delivery, for the timeline and for correlating with GitHub's delivery log. */
  deliveryId: string;
}

/** The github gitops sections of a policy set, deduplicated: what `targets` is fed from. */
export function githubWebhookTargets(policies: Pick<PolicySet, 'models' | 'policyFor'>): GithubWebhookTarget[] {
  const seen = new Map<string, GithubWebhookTarget>();
  for (const model of policies.models()) {
    const g = policies.policyFor(model).deployment.gitops;
    if (g?.provider !== 'github') continue;
    seen.set(`${g.repo.toLowerCase()}\n${g.baseBranch}`, { repo: g.repo, baseBranch: g.baseBranch });
  }
  return [...seen.values()];
}

/** `modelgate/<model>/v<version>` (or `…-<run>` of a rollback/again run) → key; model names may contain `/`. */
export function parseBranch(ref: string | undefined): { model: string; version: number } | undefined {
  const m = /^modelgate\/(.+)\/v([1-9]\d{0,9})(?:-(?:again|rollback)-[0-9a-z]+)?$/.exec(ref ?? '');
  return m ? { model: m[1], version: Number(m[2]) } : undefined;
}

interface PullRequestPayload {
  action?: string;
  repository?: { full_name?: string };
  pull_request?: {
    merged?: boolean;
    head?: { ref?: string };
    base?: { ref?: string };
  };
}

function parsePayload(raw: Buffer, contentType: string | undefined): PullRequestPayload {
  // GitHub sends JSON, or form-encoded with the JSON in `payload` when the hook is configured that way.
  if ((contentType ?? '').includes('application/x-www-form-urlencoded')) {
    const p = new URLSearchParams(raw.toString('utf8')).get('payload');
    if (!p) throw new HttpError(400, 'invalid_body', 'form-encoded GitHub delivery without a payload field');
    return parseJson(Buffer.from(p), 'GitHub webhook') as PullRequestPayload;
  }
  return parseJson(raw, 'GitHub webhook') as PullRequestPayload;
}

export function githubWebhookRoute(deps: GithubWebhookDeps) {
  return function githubWebhook(app: FastifyInstance): Promise<void> {
    keepRawBodies(app);
    app.post('/webhooks/github', { bodyLimit: GITHUB_WEBHOOK_BODY_LIMIT }, async (req, reply) => {
      if (!deps.secret) throw new HttpError(503, 'not_configured', 'GitHub webhooks are disabled: MODELGATE_GITHUB_WEBHOOK_SECRET is not set');
      const raw = rawBody(req.body);
      const verdict = verifyGithub(deps.secret, req.headers, raw);
      if (!verdict.ok) {
        webhookDeliveries.inc({ source: 'github', outcome: 'rejected' });
        throw new HttpError(401, verdict.code, verdict.message);
      }
      const event = headerOf(req.headers, 'x-github-event') ?? '';
      const deliveryId = headerOf(req.headers, 'x-github-delivery');
      if (!deliveryId) throw new HttpError(400, 'invalid_body', 'missing X-GitHub-Delivery header');
      if (!deps.dedupe.claim(deliveryId)) {
        webhookDeliveries.inc({ source: 'github', outcome: 'duplicate' });
        return reply.status(200).send({ status: 'duplicate', deliveryId });
      }
      try {
        const ignore = (reason: string) => {
          webhookDeliveries.inc({ source: 'github', outcome: 'ignored' });
          return reply.status(202).send({ status: 'ignored', reason });
        };
        if (event === 'ping') return reply.status(200).send({ status: 'pong' });
        const payload = parsePayload(raw, req.headers['content-type']);
        webhookEvents.inc({ source: 'github', event: `${event}.${payload.action ?? ''}` });
        if (event !== 'pull_request') return ignore(`event ${event || '(none)'} is not used`);
        if (payload.action !== 'closed') return ignore(`pull_request action ${payload.action ?? '(none)'} is not used`);
        const pr = payload.pull_request;
        const repo = payload.repository?.full_name;
        const base = pr?.base?.ref;
        const targets = await deps.targets();
        if (targets.length === 0) return ignore('no GitHub GitOps repository is configured (no policy uses deployment.gitops.provider: github)');
        const forRepo = targets.filter((t) => repo !== undefined && t.repo.toLowerCase() === repo.toLowerCase());
        if (forRepo.length === 0) return ignore(`repository ${repo ?? '(none)'} is not a configured GitOps repository`);
        if (!forRepo.some((t) => t.baseBranch === base)) return ignore(`base branch ${base ?? '(none)'} of ${repo} is not a configured GitOps base branch`);
        const key = parseBranch(pr?.head?.ref);
        if (!key) return ignore(`branch ${pr?.head?.ref ?? '(none)'} is not a modelgate branch (modelgate/<model>/v<version>)`);
        const signal: PullRequestHint = { action: pr?.merged === true ? 'merged' : 'closed', hint: true, deliveryId };
        try {
          await lifecycleHandle(deps.client, key.model, key.version).signal<[PullRequestHint]>(pullRequestSignal.name, signal);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return ignore(`no running lifecycle for ${key.model} version ${key.version}`);
          throw err;
        }
        req.log.info({ ...key, action: signal.action, repo, deliveryId }, 'github webhook: pull request hint sent');
        webhookDeliveries.inc({ source: 'github', outcome: 'accepted' });
        return reply.status(202).send({ status: 'signalled', action: signal.action, model: key.model, version: key.version });
      } catch (err) {
        if (!(err instanceof HttpError && err.status < 500)) deps.dedupe.release(deliveryId);
        webhookDeliveries.inc({ source: 'github', outcome: 'failed' });
        throw err;
      }
    });
    return Promise.resolve();
  };
}
