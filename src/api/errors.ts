/**
 * Every error the API answers is JSON `{ code, message }` with a stable code; this module maps domain errors
 * (ModelgateError), fastify's own errors and Temporal outages to the code and HTTP status.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ModelgateError, type ModelgateErrorCode } from '../client.js';
import type { Logger } from '../observability/log.js';

export type ApiErrorCode =
  | ModelgateErrorCode
  | 'unauthorized'
  | 'invalid_token'
  | 'unknown_identity'
  | 'insufficient_scope'
  | 'forbidden'
  | 'invalid_body'
  | 'invalid_params'
  | 'bad_signature'
  | 'stale_request'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'not_configured'
  | 'invalid_policy'
  | 'no_policy'
  | 'csrf_rejected'
  | 'internal';

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const statusByDomainCode: Record<ModelgateErrorCode, number> = {
  not_found: 404,
  not_awaiting_approval: 409,
  unauthorized_approver: 403,
  self_approval: 403,
  duplicate_approval: 409,
  invalid_input: 400,
  unverified_decision: 403,
  stale_decision: 409,
  unknown_registrant: 403,
  unavailable: 503,
  no_rollback_target: 409,
  already_serving: 409,
  never_in_production: 409,
  reason_required: 400,
  not_a_rollback_target: 409,
  older_than_serving: 409,
  canary_not_paused: 409,
};

/** gRPC status codes that mean "Temporal is not answering right now". */
const UNAVAILABLE_GRPC = new Set([4 /* DEADLINE_EXCEEDED */, 8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */]);

function isTemporalOutage(err: unknown): boolean {
  let e: unknown = err;
  for (let i = 0; i < 4 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number' && UNAVAILABLE_GRPC.has(code)) return true;
    if ((e as Error).name === 'ServiceError' || (e as Error).name === 'TransportError') return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

export interface ErrorBody {
  code: string;
  message: string;
}

/** Status and body for any thrown value; unexpected errors get a generic message (details go to the log). */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ModelgateError) return new HttpError(statusByDomainCode[err.code], err.code, err.message);
  const fe = err as FastifyError;
  if (fe && typeof fe === 'object' && typeof fe.code === 'string' && fe.code.startsWith('FST_')) {
    if (fe.validation) {
      const where = fe.validationContext === 'params' || fe.validationContext === 'querystring' ? 'invalid_params' : 'invalid_body';
      return new HttpError(400, where, fe.message);
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return new HttpError(413, 'payload_too_large', 'request body is larger than this endpoint accepts');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return new HttpError(415, 'unsupported_media_type', fe.message);
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return new HttpError(400, 'invalid_body', fe.message);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return new HttpError(fe.statusCode, 'invalid_body', fe.message);
    }
  }
  if (err instanceof SyntaxError) return new HttpError(400, 'invalid_body', `body is not valid JSON: ${err.message}`);
  if (isTemporalOutage(err)) return new HttpError(503, 'unavailable', 'Temporal is not reachable right now; retry shortly');
  return new HttpError(500, 'internal', 'internal error (see the server log)');
}

export function errorHandler(logger: Logger) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    const h = toHttpError(err);
    if (h.status >= 500) logger.error({ err, route: request.routeOptions.url, reqId: request.id }, 'request failed');
    else logger.debug({ route: request.routeOptions.url, code: h.code, reqId: request.id }, h.message);
    void reply.status(h.status).type('application/json').send({ code: h.code, message: h.message } satisfies ErrorBody);
  };
}
