/**
 * POST /slack/interactions — Slack's interactivity request URL. Verified (v0 signature, 5-minute window) on the
 * raw form body, acknowledged at once, and the decision runs in the background: Slack requires an answer
 * within 3 s, and Temporal may be slower than that.
 */
import type { FastifyInstance } from 'fastify';
import { verifySlack } from '../../webhooks/signatures.js';
import { planInteraction, type SlackInteractionDeps, type SlackPayload } from '../../slack/interactions.js';
import type { BackgroundTasks } from '../background.js';
import { HttpError } from '../errors.js';
import { slackActions, webhookDeliveries } from '../metrics.js';
import { keepRawBodies, rawBody } from '../raw-body.js';

export const SLACK_BODY_LIMIT = 256 * 1024;

export interface SlackRouteDeps extends SlackInteractionDeps {
  signingSecret?: string;
  background: BackgroundTasks;
}

export function slackRoute(deps: SlackRouteDeps) {
  return function slack(app: FastifyInstance): Promise<void> {
    keepRawBodies(app);
    app.post('/slack/interactions', { bodyLimit: SLACK_BODY_LIMIT }, async (req, reply) => {
      if (!deps.signingSecret) throw new HttpError(503, 'not_configured', 'Slack is disabled: MODELGATE_SLACK_SIGNING_SECRET is not set');
      const raw = rawBody(req.body);
      const verdict = verifySlack(deps.signingSecret, req.headers, raw);
      if (!verdict.ok) {
        webhookDeliveries.inc({ source: 'slack', outcome: 'rejected' });
        throw new HttpError(401, verdict.code, verdict.message);
      }
      const field = new URLSearchParams(raw.toString('utf8')).get('payload');
      let payload: SlackPayload;
      try {
        payload = JSON.parse(field ?? '') as SlackPayload;
      } catch {
        throw new HttpError(400, 'invalid_body', 'Slack interaction without a JSON payload field');
      }
      if (!payload || typeof payload.type !== 'string') throw new HttpError(400, 'invalid_body', 'Slack payload has no type');
      webhookDeliveries.inc({ source: 'slack', outcome: 'accepted' });
      const plan = planInteraction(deps, payload);
      if (plan.background) deps.background.run(`slack ${payload.type}`, plan.background);
      else if (!plan.body) slackActions.inc({ action: payload.type, outcome: 'ignored' });
      // Slack closes a modal on an empty 200 and shows `response_action` errors otherwise.
      if (plan.body) return reply.status(200).send(plan.body);
      return reply.status(200).send();
    });
    return Promise.resolve();
  };
}
