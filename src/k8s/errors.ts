/**
 * One error type for every failed Kubernetes call, carrying what the caller needs to decide (status code,
 * reason) and what a human needs to fix it (verb, resource, namespace, name). Kept free of Temporal so the
 * client stays usable outside activities; the activity maps 403 to a non-retryable failure.
 */
export type Verb = 'get' | 'list' | 'watch' | 'update';

export interface K8sCallSite {
  verb: Verb;
  /** `inferenceservices.serving.kserve.io` */
  resource: string;
  namespace: string;
  name?: string;
}

export class K8sApiError extends Error {
  override name = 'K8sApiError';
  constructor(
    readonly status: number,
    /** The Status `reason` (Forbidden, Conflict, Expired, NotFound …) when the server sent one. */
    readonly reason: string | undefined,
    readonly site: K8sCallSite,
    serverMessage?: string,
  ) {
    super(`${describeCall(site)}: ${status}${reason ? ` ${reason}` : ''}${serverMessage ? `: ${serverMessage}` : ''}`);
  }
}

/** `get inferenceservices.serving.kserve.io "iris" in namespace "models"` */
export function describeCall(site: K8sCallSite): string {
  return `${site.verb} ${site.resource}${site.name ? ` "${site.name}"` : ''} in namespace "${site.namespace}"`;
}

export function isK8sStatus(err: unknown, status: number): err is K8sApiError {
  return err instanceof K8sApiError && err.status === status;
}

/** A Kubernetes `Status` body (from an HTTP error or a watch ERROR event), if that is what `body` is. */
export function parseStatus(body: unknown): { code?: number; reason?: string; message?: string } | undefined {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  if (!value || typeof value !== 'object') return undefined;
  const s = value as { kind?: unknown; code?: unknown; reason?: unknown; message?: unknown };
  if (s.kind !== 'Status') return undefined;
  return {
    code: typeof s.code === 'number' ? s.code : undefined,
    reason: typeof s.reason === 'string' ? s.reason : undefined,
    message: typeof s.message === 'string' ? s.message : undefined,
  };
}
