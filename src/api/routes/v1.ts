/**
 * The token-authenticated API: start a promotion, approve, reject, read a version's state. The identity comes
 * from the bearer token; whether that identity may approve is the workflow's decision (policy approvers,
 * four-eyes), exactly as for the CLI.
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { getState, startLifecycle } from '../../client.js';
import type { TokenAuth } from '../auth.js';
import type { Decisions } from '../decisions.js';

export const V1_BODY_LIMIT = 16 * 1024;

const keyParams = {
  type: 'object',
  required: ['model', 'version'],
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256 },
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
  },
} as const;

const promotionBody = {
  type: 'object',
  required: ['model', 'version'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256, pattern: '\\S' },
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    /** Who is calling, for the audit trail: a KubeFlow step says `kubeflow`. */
    source: { type: 'string', enum: ['api', 'kubeflow'] },
  },
} as const;

const approveBody = {
  type: 'object',
  additionalProperties: false,
  properties: { comment: { type: 'string', maxLength: 1000 } },
} as const;

const rejectBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 3, maxLength: 1000, pattern: '\\S' } },
} as const;

interface KeyParams {
  model: string;
  version: number;
}

export interface V1Deps {
  client: Client;
  auth: TokenAuth;
  decisions: Decisions;
  taskQueue?: string;
}

export function v1Routes(deps: V1Deps) {
  return async function v1(app: FastifyInstance): Promise<void> {
    app.decorateRequest('identity', '');
    app.addHook('onRequest', async (req) => {
      req.identity = deps.auth.identify(req.headers.authorization);
    });

    app.post<{ Body: { model: string; version: number; source?: 'api' | 'kubeflow' } }>(
      '/v1/promotions',
      { bodyLimit: V1_BODY_LIMIT, schema: { body: promotionBody } },
      async (req, reply) => {
        const { model, version, source } = req.body;
        const r = await startLifecycle(deps.client, model, version, { source: source ?? 'api', by: req.identity }, deps.taskQueue);
        req.log.info({ model, version, by: req.identity, started: r.started }, 'promotion requested');
        return reply.status(r.started ? 201 : 200).send({ ...r, model, version });
      },
    );

    app.post<{ Params: KeyParams; Body: { comment?: string } | undefined }>(
      '/v1/models/:model/versions/:version/approve',
      {
        bodyLimit: V1_BODY_LIMIT,
        schema: { params: keyParams, body: approveBody },
        // A body is optional here (`curl -X POST …/approve`); validate an empty one as {}.
        preValidation: async (req) => {
          if (req.body === undefined || req.body === null) req.body = {};
        },
      },
      async (req) => {
        const { model, version } = req.params;
        const r = await deps.decisions.decide('approve', model, version, { by: req.identity, via: 'api', comment: req.body?.comment });
        return {
          already: r.already,
          message: r.already ? `${model} version ${version} is already approved by ${req.identity}` : `approved by ${req.identity}`,
          state: r.state,
        };
      },
    );

    app.post<{ Params: KeyParams; Body: { reason: string } }>(
      '/v1/models/:model/versions/:version/reject',
      { bodyLimit: V1_BODY_LIMIT, schema: { params: keyParams, body: rejectBody } },
      async (req) => {
        const { model, version } = req.params;
        const r = await deps.decisions.decide('reject', model, version, { by: req.identity, via: 'api', reason: req.body.reason });
        return {
          already: r.already,
          message: r.already ? `${model} version ${version} is already rejected by ${req.identity}` : `rejected by ${req.identity}`,
          state: r.state,
        };
      },
    );

    app.get<{ Params: KeyParams }>('/v1/models/:model/versions/:version', { schema: { params: keyParams } }, async (req) => {
      return getState(deps.client, req.params.model, req.params.version);
    });
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's identity, set by the bearer-token hook of the /v1 routes. */
    identity: string;
  }
}
