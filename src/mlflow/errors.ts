/**
 * Errors of the MLflow client and their translation for Temporal activities: retryable ones (429, 5xx, network,
 * timeouts) are thrown as they are so Temporal retries them; permanent ones become non-retryable
 * ApplicationFailures with a named type, so a workflow can tell "not found" from "bad input" without parsing text.
 */
import { ApplicationFailure } from '@temporalio/common';

/** error_code values of our own for failures that never reached an MLflow error body. */
export type ClientErrorCode =
  /** No HTTP response: refused/reset connection, DNS, socket closed. */
  | 'NETWORK_ERROR'
  /** Connect, headers or body timeout. */
  | 'TIMEOUT'
  /** An HTTP error whose body is not an MLflow error (a proxy, a load balancer). */
  | 'HTTP_ERROR'
  /** A 2xx answer that does not match the schema of the endpoint. */
  | 'INVALID_RESPONSE';

export class MlflowError extends Error {
  override name = 'MlflowError';
  /** HTTP status; 0 when no response arrived (network error, timeout). */
  readonly status: number;
  /** MLflow's error_code (RESOURCE_DOES_NOT_EXIST, …) or a ClientErrorCode. */
  readonly errorCode: string;
  /** Endpoint path under /api/2.0/mlflow, e.g. "model-versions/get". */
  readonly endpoint: string;
  readonly retryable: boolean;
  /** MLflow's own message (or our one-line description), without endpoint or status. */
  readonly detail: string;

  constructor(opts: { status: number; errorCode: string; endpoint: string; detail: string; retryable?: boolean; cause?: unknown }) {
    const detail = oneLine(opts.detail);
    super(`MLflow ${opts.endpoint}: ${opts.status ? `HTTP ${opts.status} ` : ''}${opts.errorCode}: ${detail}`, { cause: opts.cause });
    this.status = opts.status;
    this.errorCode = opts.errorCode;
    this.endpoint = opts.endpoint;
    this.detail = detail;
    this.retryable = opts.retryable ?? (isRetryable(opts.status, opts.errorCode) || isWriteConflict(detail));
  }
}

/**
 * MLflow's SQL store answers a lost race between two concurrent writes (e.g. two versions of one model setting the
 * `staging` alias at once: "UNIQUE constraint failed", "database is locked") with a 4xx; trying again succeeds.
 */
export function isWriteConflict(detail: string): boolean {
  return /UNIQUE constraint failed|IntegrityError|duplicate key value|database is locked/i.test(detail);
}

/** A 2xx answer that does not have the shape of the endpoint's response; names the first bad field. */
export class MlflowSchemaError extends MlflowError {
  override name = 'MlflowSchemaError';
  /** Dotted path of the first field that did not match, e.g. "model_version.version". */
  readonly field: string;

  constructor(opts: { status: number; endpoint: string; field: string; problem: string }) {
    super({
      status: opts.status,
      errorCode: 'INVALID_RESPONSE',
      endpoint: opts.endpoint,
      detail: `unexpected response: ${opts.field}: ${opts.problem}`,
      // A server or proxy that answers the wrong shape will answer it again.
      retryable: false,
    });
    this.field = opts.field;
  }
}

/**
 * 429, 408 (a proxy's request timeout), 5xx and transport failures. Every other status is permanent: other
 * 4xx, and 1xx/3xx which only a misconfigured proxy (a redirect to a login page) sends.
 */
export function isRetryable(status: number, errorCode: string): boolean {
  if (status === 0) return errorCode === 'NETWORK_ERROR' || errorCode === 'TIMEOUT';
  return status === 429 || status === 408 || status >= 500;
}

export type MlflowFailureType = 'MlflowNotFound' | 'MlflowInvalid' | 'MlflowUnauthorized' | 'MlflowPermanent';

export function failureType(err: MlflowError): MlflowFailureType {
  // Only MLflow's own answer means "not found": a proxy's bare 404 means a wrong URL (MlflowPermanent), and a
  // workflow must not conclude that a model version was deleted from it.
  if (err.errorCode === 'RESOURCE_DOES_NOT_EXIST') return 'MlflowNotFound';
  if (err.errorCode === 'UNAUTHENTICATED' || err.errorCode === 'PERMISSION_DENIED' || err.status === 401 || err.status === 403) {
    return 'MlflowUnauthorized';
  }
  if (err.errorCode === 'INVALID_PARAMETER_VALUE' || err.errorCode === 'RESOURCE_ALREADY_EXISTS' || err.errorCode === 'BAD_REQUEST') {
    return 'MlflowInvalid';
  }
  return 'MlflowPermanent';
}

/**
 * For activities: `catch (e) { throw toActivityError(e) }`. A non-retryable MlflowError becomes a non-retryable
 * ApplicationFailure typed by failureType(); anything else (retryable MlflowErrors included) is returned as is.
 */
export function toActivityError(err: unknown): unknown {
  if (!(err instanceof MlflowError) || err.retryable) return err;
  return ApplicationFailure.create({
    type: failureType(err),
    nonRetryable: true,
    message: `${err.endpoint}: ${err.detail}`,
    // Plain, secret-free facts a workflow may branch on.
    details: [{ endpoint: err.endpoint, status: err.status, errorCode: err.errorCode }],
  });
}

/** Collapse whitespace and cap the length: messages end up in workflow histories and one-line logs. */
export function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
