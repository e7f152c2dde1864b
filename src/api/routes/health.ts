/**
 * /healthz (the process answers), /readyz (Temporal and MLflow answer within 2 s) and /metrics (Prometheus).
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { request } from 'undici';
import { metricsRegistry } from '../../observability/metrics.js';

export interface HealthDeps {
  client: Client;
  /** MLflow tracking server whose /health must answer for readiness; undefined = not checked. */
  mlflow?: { trackingUri: string };
  timeoutMs?: number;
}

async function check(what: () => Promise<void>): Promise<{ ok: boolean; error?: string }> {
  try {
    await what();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: (err as Error).message.split('\n')[0].slice(0, 200) };
  }
}

export function healthRoutes(deps: HealthDeps) {
  const timeoutMs = deps.timeoutMs ?? 2000;
  return function health(app: FastifyInstance): Promise<void> {
    app.get('/healthz', () => Promise.resolve({ status: 'ok' }));

    app.get('/readyz', async (_req, reply) => {
      const checks: Record<string, { ok: boolean; error?: string }> = {};
      const [temporal, mlflow] = await Promise.all([
        check(async () => {
          await deps.client.connection.withDeadline(Date.now() + timeoutMs, () => deps.client.workflowService.getSystemInfo({}));
        }),
        deps.mlflow
          ? check(async () => {
              const res = await request(`${deps.mlflow!.trackingUri}/health`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
              await res.body.dump();
              if (res.statusCode !== 200) throw new Error(`MLflow /health answered ${res.statusCode}`);
            })
          : Promise.resolve(undefined),
      ]);
      checks.temporal = temporal;
      if (mlflow) checks.mlflow = mlflow;
      const failed = Object.entries(checks).filter(([, c]) => !c.ok);
      if (failed.length === 0) return { status: 'ready', checks };
      return reply.status(503).send({
        code: 'unavailable',
        message: `not ready: ${failed.map(([name, c]) => `${name}: ${c.error}`).join('; ')}`,
        checks,
      });
    });

    app.get('/metrics', async (_req, reply) => {
      const body = await metricsRegistry.metrics();
      return reply.type(metricsRegistry.contentType).send(body);
    });
    return Promise.resolve();
  };
}
