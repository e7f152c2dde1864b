/**
 * POST /webhooks/github — pull_request events of the GitOps repository. Verified (X-Hub-Signature-256) and
 * deduplicated by X-GitHub-Delivery; a closed PR whose head branch is `modelgate/<model>/v<version>` becomes the
 * lifecycle's pullRequest signal (merged or closed). Answers as soon as the signal is sent (GitHub allows 10 s).
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/client';
import { lifecycleHandle } from '../../client.js';
import { pullRequestSignal, type PullRequestEvent } from '../../workflows/definitions.js';
import { DeliveryDedupe } from '../../webhooks/dedupe.js';
import { verifyGithub } from '../../webhooks/signatures.js';
import { HttpError } from '../errors.js';
import { webhookDeliveries, webhookEvents } from '../metrics.js';
import { headerOf, keepRawBodies, parseJson, rawBody } from '../raw-body.js';

export const GITHUB_WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface GithubWebhookDeps {
  client: Client;
  secret?: string;
  dedupe: DeliveryDedupe;
}

/** `modelgate/<model>/v<version>` → key; model names may contain `/`. */
export function parseBranch(ref: string | undefined): { model: string; version: number } | undefined {
  const m = /^modelgate\/(.+)\/v([1-9]\d{0,9})$/.exec(ref ?? '');
  return m ? { model: m[1], version: Number(m[2]) } : undefined;
}

interface PullRequestPayload {
  action?: string;
  sender?: { login?: string };
  pull_request?: {
    merged?: boolean;
    merge_commit_sha?: string | null;
    merged_by?: { login?: string } | null;
    head?: { ref?: string; sha?: string };
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
  return async function githubWebhook(app: FastifyInstance): Promise<void> {
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
        const key = parseBranch(pr?.head?.ref);
        if (!key) return ignore(`branch ${pr?.head?.ref ?? '(none)'} is not a modelgate branch (modelgate/<model>/v<version>)`);
        const merged = pr?.merged === true;
        // The sender is who merged or closed it (the event's actor).
        const by = payload.sender?.login ?? pr?.merged_by?.login ?? 'github';
        const signal: PullRequestEvent = merged
          ? { action: 'merged', by, mergeSha: pr?.merge_commit_sha ?? undefined, headSha: pr?.head?.sha }
          : { action: 'closed', by, headSha: pr?.head?.sha };
        try {
          await lifecycleHandle(deps.client, key.model, key.version).signal(pullRequestSignal, signal);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return ignore(`no running lifecycle for ${key.model} version ${key.version}`);
          throw err;
        }
        req.log.info({ ...key, action: signal.action, by, deliveryId }, 'github webhook: pull request signal sent');
        webhookDeliveries.inc({ source: 'github', outcome: 'accepted' });
        return reply.status(202).send({ status: 'signalled', action: signal.action, model: key.model, version: key.version });
      } catch (err) {
        if (!(err instanceof HttpError && err.status < 500)) deps.dedupe.release(deliveryId);
        webhookDeliveries.inc({ source: 'github', outcome: 'failed' });
        throw err;
      }
    });
  };
}
