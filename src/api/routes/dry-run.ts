/**
 * POST /v1/models/:model/versions/:version/dry-run — what promoting the version now would do (src/dryrun), for
 * the caller of the bearer credential (scope `read`). Nothing is started, signed or written: the route signs no
 * decision and calls only the dry run, whose clients read. `policyYaml` tries a policy file that is not deployed
 * (400 invalid_policy with its file:line:col message); it is used for this answer only and never logged.
 */
import type { FastifyInstance } from 'fastify';
import type { Caller } from '../../identity/types.js';
import { DryRunError, DRY_RUN_STATUS } from '../../dryrun/errors.js';
import { MAX_POLICY_BYTES } from '../../dryrun/compute.js';
import type { DryRun } from '../../dryrun/types.js';
import { requireScope } from '../auth.js';
import { HttpError } from '../errors.js';
import { keyParams } from './schemas.js';

/** The policy text plus its JSON escaping and the object around it. */
export const DRY_RUN_BODY_LIMIT = 2 * MAX_POLICY_BYTES + 1024;


const body = {
  type: 'object',
  additionalProperties: false,
  properties: { policyYaml: { type: 'string', minLength: 1, maxLength: MAX_POLICY_BYTES } },
} as const;

export function dryRunRoute(app: FastifyInstance, dryRun: DryRun | undefined): void {
  app.post<{ Params: { model: string; version: number }; Body: { policyYaml?: string } }>(
    '/v1/models/:model/versions/:version/dry-run',
    {
      bodyLimit: DRY_RUN_BODY_LIMIT,
      schema: { params: keyParams, body },
      // `curl -X POST …/dry-run` with no body asks about the deployed policy.
      preValidation: (req, _reply, done) => {
        if (req.body === undefined || req.body === null) req.body = {};
        done();
      },
    },
    async (req) => {
      const caller: Caller = req.caller;
      requireScope(caller, 'read');
      if (!dryRun) throw new HttpError(503, 'not_configured', 'dry runs need MLflow and the policy file: set MLFLOW_TRACKING_URI on the API');
      const { model, version } = req.params;
      try {
        return await dryRun({
          model, version, caller: { identity: caller.identity, groups: caller.groups },
          ...(req.body.policyYaml !== undefined ? { policyYaml: req.body.policyYaml } : {}),
        });
      } catch (err) {
        if (err instanceof DryRunError) throw new HttpError(DRY_RUN_STATUS[err.code], err.code, err.message);
        throw err;
      }
    },
  );
}
