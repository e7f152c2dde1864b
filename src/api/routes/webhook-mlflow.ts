/**
 * POST /webhooks/mlflow — MLflow 3.3+ registry webhooks. Verified (v1 signature, 5-minute window) before any
 * parsing, deduplicated by X-MLflow-Delivery-Id; `model_version.created` starts the version's lifecycle
 * (idempotent by workflow id), alias and tag events are recorded. A failure to start answers 5xx so MLflow's
 * retry (on 5xx) gets another chance; the reconciliation loop covers deliveries MLflow drops.
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { startLifecycle } from '../../client.js';
import { DeliveryDedupe } from '../../webhooks/dedupe.js';
import { verifyMlflow } from '../../webhooks/signatures.js';
import { HttpError } from '../errors.js';
import { webhookDeliveries, webhookEvents } from '../metrics.js';
import { headerOf, keepRawBodies, parseJson, rawBody } from '../raw-body.js';

export const MLFLOW_WEBHOOK_BODY_LIMIT = 256 * 1024;

export interface MlflowWebhookDeps {
  client: Client;
  secret?: string;
  dedupe: DeliveryDedupe;
  /** Models with a policy; others are acknowledged and ignored. Undefined: every model. */
  managedModels?: () => string[] | Promise<string[]>;
  taskQueue?: string;
}

interface MlflowEvent {
  entity?: string;
  action?: string;
  data?: Record<string, unknown>;
}

export function mlflowWebhookRoute(deps: MlflowWebhookDeps) {
  return function mlflowWebhook(app: FastifyInstance): Promise<void> {
    keepRawBodies(app);
    app.post('/webhooks/mlflow', { bodyLimit: MLFLOW_WEBHOOK_BODY_LIMIT }, async (req, reply) => {
      if (!deps.secret) throw new HttpError(503, 'not_configured', 'MLflow webhooks are disabled: MODELGATE_MLFLOW_WEBHOOK_SECRET is not set');
      const raw = rawBody(req.body);
      const verdict = verifyMlflow(deps.secret, req.headers, raw);
      if (!verdict.ok) {
        webhookDeliveries.inc({ source: 'mlflow', outcome: 'rejected' });
        throw new HttpError(401, verdict.code, verdict.message);
      }
      const deliveryId = headerOf(req.headers, 'x-mlflow-delivery-id')!;
      if (!deps.dedupe.claim(deliveryId)) {
        webhookDeliveries.inc({ source: 'mlflow', outcome: 'duplicate' });
        return reply.status(200).send({ status: 'duplicate', deliveryId });
      }
      try {
        const ev = parseJson(raw, 'MLflow webhook') as MlflowEvent;
        const event = `${ev.entity ?? '?'}.${ev.action ?? '?'}`;
        webhookEvents.inc({ source: 'mlflow', event });
        const data = ev.data ?? {};
        const model = typeof data.name === 'string' ? data.name : undefined;
        const version = Number(data.version);
        if (event === 'model_version.created') {
          if (!model || !Number.isInteger(version) || version < 1) throw new HttpError(400, 'invalid_body', 'model_version.created without data.name and a numeric data.version');
          const managed = deps.managedModels ? await deps.managedModels() : undefined;
          if (managed && !managed.includes(model)) {
            webhookDeliveries.inc({ source: 'mlflow', outcome: 'ignored' });
            return reply.status(202).send({ status: 'ignored', reason: `no policy for model ${model}` });
          }
          const r = await startLifecycle(deps.client, model, version, { source: 'mlflow-webhook' }, deps.taskQueue);
          req.log.info({ model, version, deliveryId, started: r.started }, 'mlflow webhook: lifecycle started');
          webhookDeliveries.inc({ source: 'mlflow', outcome: 'accepted' });
          return reply.status(202).send({ status: r.started ? 'started' : 'existing', workflowId: r.workflowId });
        }
        if (event.startsWith('model_version_alias.') || event.startsWith('model_version_tag.')) {
          // Recorded only: modelgate owns the production alias, so a change made elsewhere is worth a log line.
          req.log.info({ event, model, version: Number.isInteger(version) ? version : undefined, alias: data.alias, key: data.key, deliveryId }, 'mlflow webhook: registry event');
          webhookDeliveries.inc({ source: 'mlflow', outcome: 'recorded' });
          return reply.status(202).send({ status: 'recorded', event });
        }
        webhookDeliveries.inc({ source: 'mlflow', outcome: 'ignored' });
        return reply.status(202).send({ status: 'ignored', reason: `event ${event} is not used` });
      } catch (err) {
        // Let MLflow's retry through when the failure was ours (Temporal down), not for a malformed body.
        if (!(err instanceof HttpError && err.status < 500)) deps.dedupe.release(deliveryId);
        webhookDeliveries.inc({ source: 'mlflow', outcome: 'failed' });
        throw err;
      }
    });
    return Promise.resolve();
  };
}
