/**
 * The authenticated API: start a promotion, approve, reject, retire, read a version's state. The caller comes
 * from the bearer credential through the identity directory, each route needs its scope, and every decision is
 * signed here (attested) before it reaches the workflow; whether that identity may decide is then the
 * workflow's call (policy approvers and groups, four-eyes, quorum).
 */
import type { FastifyInstance } from 'fastify';
import type { Client } from '@temporalio/client';
import { getState, requestPromotion, requireReason, rollback, startLifecycle, type RollbackRegistry } from '../../client.js';
import type { IdentityDirectory } from '../../identity/directory.js';
import type { DecisionSigner } from '../../identity/signer.js';
import { requireScope, type Authenticator } from '../auth.js';
import type { Decision, Decisions } from '../decisions.js';
import type { Scope } from '../../identity/types.js';
import { HttpError } from '../errors.js';
import type { DryRun } from '../../dryrun/types.js';
import { dryRunRoute } from './dry-run.js';
import { keyParams } from './schemas.js';

export const V1_BODY_LIMIT = 16 * 1024;


const promotionBody = {
  type: 'object',
  required: ['model', 'version'],
  additionalProperties: false,
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 256, pattern: '\\S' },
    version: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    /** Who is calling, for the audit trail: a KubeFlow step says `kubeflow`, the CLI `cli`. */
    source: { type: 'string', enum: ['api', 'kubeflow', 'cli'] },
    /** A pipeline's service identity may name the person the run was for (checked against the directory). */
    onBehalfOf: { type: 'string', minLength: 1, maxLength: 128 },
    /** Promote a version whose lifecycle ended (expired, rejected, archived) anew: a new run; needs `reason`. */
    again: { type: 'boolean' },
    reason: { type: 'string', maxLength: 1000 },
  },
} as const;

const modelParams = {
  type: 'object',
  required: ['model'],
  properties: { model: { type: 'string', minLength: 1, maxLength: 256 } },
} as const;

const rollbackBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** The version to return to Production; default: the one the serving version replaced. */
    to: { type: 'integer', minimum: 1, maximum: 2_147_483_647 },
    reason: { type: 'string', maxLength: 1000 },
    via: { type: 'string', enum: ['api', 'cli'] },
  },
} as const;

const approveBody = {
  type: 'object',
  additionalProperties: false,
  properties: { comment: { type: 'string', maxLength: 1000 }, via: { type: 'string', enum: ['api', 'cli'] } },
} as const;

const rejectBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 3, maxLength: 1000, pattern: '\\S' }, via: { type: 'string', enum: ['api', 'cli'] } },
} as const;

const retireBody = {
  type: 'object',
  additionalProperties: false,
  properties: { reason: { type: 'string', maxLength: 1000 }, via: { type: 'string', enum: ['api', 'cli'] } },
} as const;

const canaryContinueBody = approveBody;

const canaryAbortBody = rejectBody;

interface KeyParams {
  model: string;
  version: number;
}

interface DecisionBody {
  comment?: string;
  reason?: string;
  via?: string;
}

export interface V1Deps {
  client: Client;
  auth: Authenticator;
  directory: IdentityDirectory;
  decisions: Decisions;
  signer?: DecisionSigner;
  taskQueue?: string;
  /** MLflow reads of the rollback route; without it POST …/rollback answers 503 not_configured. */
  registry?: RollbackRegistry;
  /** POST …/dry-run; without it the route answers 503 not_configured. */
  dryRun?: DryRun;
}

interface PromotionBody {
  model: string;
  version: number;
  source?: 'api' | 'kubeflow' | 'cli';
  onBehalfOf?: string;
  again?: boolean;
  reason?: string;
}

/** A body is optional on approve/retire (`curl -X POST …/approve`); validate an empty one as {}. */
const optionalBody = (req: { body: unknown }, _reply: unknown, done: () => void) => {
  if (req.body === undefined || req.body === null) req.body = {};
  done();
};

export function v1Routes(deps: V1Deps) {
  return function v1(app: FastifyInstance): Promise<void> {
    app.decorateRequest('caller', null as never);
    app.addHook('onRequest', async (req) => {
      try {
        req.caller = await deps.auth.identify(req.headers.authorization);
      } catch (err) {
        // Audited without the credential: who tried what, from where.
        req.log.warn({ route: req.routeOptions.url, ip: req.ip, code: (err as HttpError).code }, 'api: caller refused');
        throw err;
      }
    });

    app.post<{ Body: PromotionBody }>(
      '/v1/promotions',
      { bodyLimit: V1_BODY_LIMIT, schema: { body: promotionBody } },
      async (req, reply) => {
        const caller = req.caller;
        requireScope(caller, 'promote');
        const { model, version, source, onBehalfOf, again } = req.body;
        if (req.body.reason !== undefined && !again) throw new HttpError(400, 'invalid_input', 'reason goes with again: true (a re-promotion); a first promotion takes none');
        const reason = again ? requireReason(req.body.reason, `promoting ${model} version ${version} again`) : undefined;
        if (onBehalfOf !== undefined) {
          if (!caller.mayActOnBehalf) throw new HttpError(403, 'forbidden', `${caller.identity} may not promote on behalf of someone else (only service identities with actOnBehalf)`);
          if (!deps.directory.get(onBehalfOf)) throw new HttpError(400, 'invalid_input', `onBehalfOf: ${onBehalfOf} is not an identity in the modelgate directory`);
        }
        const channel = source ?? 'api';
        const attestation = deps.signer?.sign({
          kind: 'promote', model, version, identity: caller.identity, groups: caller.groups, channel,
          ...(onBehalfOf ? { onBehalfOf } : {}),
          ...(reason ? { reason } : {}),
        });
        const r = await startLifecycle(
          deps.client, model, version,
          { source: channel, by: onBehalfOf ? `${caller.identity} for ${onBehalfOf}` : caller.identity, ...(attestation ? { attestation } : {}) },
          deps.taskQueue,
          reason ? { kind: 'again', reason } : undefined,
        );
        // Already running (a webhook or the reconciler started it): the attested request still names its requester.
        if (!r.started && attestation) await requestPromotion(deps.client, model, version, attestation).catch((err: unknown) => {
          req.log.warn({ model, version, code: (err as { code?: string }).code }, 'promotion request not recorded on the running lifecycle');
        });
        req.log.info({ model, version, by: caller.identity, onBehalfOf, started: r.started, again: !!again }, 'promotion requested');
        return reply.status(r.started ? 201 : 200).send({ ...r, model, version, ...(reason ? { request: { kind: 'again', reason } } : {}) });
      },
    );

    /** Return an earlier Production version: a new run of its lifecycle, approved under the policy's rollback rules. */
    app.post<{ Params: { model: string }; Body: { to?: number; reason?: string; via?: 'api' | 'cli' } }>(
      '/v1/models/:model/rollback',
      { bodyLimit: V1_BODY_LIMIT, schema: { params: modelParams, body: rollbackBody }, preValidation: optionalBody },
      async (req, reply) => {
        const caller = req.caller;
        requireScope(caller, 'approve');
        if (!deps.registry) throw new HttpError(503, 'not_configured', 'rollbacks need MLflow: set MLFLOW_TRACKING_URI on the API');
        const { model } = req.params;
        const reason = requireReason(req.body.reason, `rolling back ${model}`);
        const r = await rollback(
          deps.client, deps.registry, model,
          { to: req.body.to, reason, by: caller.identity, groups: caller.groups, via: req.body.via ?? 'api' },
          deps.signer ? (claims) => deps.signer!.sign(claims) : undefined,
          deps.taskQueue,
        );
        req.log.info({ model, version: r.version, from: r.from, by: caller.identity, started: r.started }, 'rollback requested');
        return reply.status(r.started ? 201 : 200).send({ ...r, request: { kind: 'rollback', reason } });
      },
    );

    /** One route per decision; each needs its scope (`approve` covers reject: whoever may say yes may say no). */
    const decisionRoute = (kind: Decision, scope: Scope, body: object, done: string, bodyOptional: boolean, path: string = kind) =>
      app.post<{ Params: KeyParams; Body: DecisionBody | undefined }>(
        `/v1/models/:model/versions/:version/${path}`,
        { bodyLimit: V1_BODY_LIMIT, schema: { params: keyParams, body }, ...(bodyOptional ? { preValidation: optionalBody } : {}) },
        async (req) => {
          const caller = req.caller;
          requireScope(caller, scope);
          const { model, version } = req.params;
          const r = await deps.decisions.decide(kind, model, version, {
            by: caller.identity, groups: caller.groups, via: req.body?.via ?? 'api', comment: req.body?.comment, reason: req.body?.reason,
          });
          return {
            already: r.already,
            message: r.already ? `${model} version ${version} is already ${done} by ${caller.identity}` : `${done} by ${caller.identity}`,
            state: r.state,
          };
        },
      );
    decisionRoute('approve', 'approve', approveBody, 'approved', true);
    decisionRoute('reject', 'approve', rejectBody, 'rejected', false);
    decisionRoute('retire', 'retire', retireBody, 'retire requested', true);
    // A paused canary: whoever may approve the version may send it more traffic or take it back.
    decisionRoute('canary-continue', 'approve', canaryContinueBody, 'canary continued', true, 'canary/continue');
    decisionRoute('canary-abort', 'approve', canaryAbortBody, 'canary aborted', false, 'canary/abort');

    app.get<{ Params: KeyParams }>('/v1/models/:model/versions/:version', { schema: { params: keyParams } }, async (req) => {
      requireScope(req.caller, 'read');
      return getState(deps.client, req.params.model, req.params.version);
    });

    dryRunRoute(app, deps.dryRun);

    app.get('/v1/whoami', (req, reply) => {
      const c = req.caller;
      return reply.send({ identity: c.identity, groups: c.groups, kind: c.kind, scopes: c.scopes, credential: c.credential });
    });
    return Promise.resolve();
  };
}
