/**
 * The lifecycle's cache activity: after every Production change it tells every active-version endpoint (each
 * API replica) to drop its cached value, so gateways see the change at once instead of after the TTL.
 *
 * When it fails (so Temporal retries it, within the bounded retry policy of src/workflows/activities.ts, after
 * which the lifecycle goes on — the TTL bounds staleness anyway): only when some replica may still serve the old
 * value and repeating can help — it timed out, answered 5xx, broke the connection, or the host did not resolve.
 * A refused connection (nothing listening: no cache to be stale, it reads MLflow when it starts) and a 4xx (wrong
 * token, route disabled: repeating cannot fix it) are logged and counted, never retried. A retry calls every
 * replica again; invalidating twice costs one extra MLflow read, nothing else.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Dispatcher } from 'undici';
import { createInvalidationClient, RETRYABLE, type InvalidationClient, type Resolver, type TargetFailure } from '../active/invalidation-client.js';
import type { Logger } from '../observability/log.js';
import { countExternalError } from '../observability/metrics.js';

export interface CacheActivityDeps {
  /** The fan-out client built once by the worker process (worker-main.ts); wins over invalidateUrl. */
  invalidator?: InvalidationClient;
  /** One base URL of the modelgate API, e.g. http://127.0.0.1:8080 (tests, benches): a client is built on it. */
  invalidateUrl?: string;
  /** Bearer token of the invalidation route (MODELGATE_INTERNAL_TOKEN), for invalidateUrl. */
  token?: string;
  /** An active-version cache in this process (API and worker in one process). */
  local?: { invalidate(model: string): void };
  logger?: Logger;
  /** For invalidateUrl: per HTTP attempt (default 3 s), attempts (default 2), dispatcher, DNS fan-out. */
  timeoutMs?: number;
  attempts?: number;
  dispatcher?: Dispatcher;
  dns?: boolean;
  resolver?: Resolver;
}

export interface InvalidateResult {
  local: boolean;
  /** ok: every replica acknowledged; partial: some did; failed: none did. */
  remote: 'ok' | 'skipped' | 'partial' | 'failed';
  /** Replicas called and how many acknowledged (absent when skipped). */
  targets?: number;
  acknowledged?: number;
  /** Why the failed ones failed (status or error code per host:port); never contains the token. */
  detail?: string;
}

/** Type of the retryable failure thrown when a replica that may serve the old value did not acknowledge. */
export const INVALIDATION_INCOMPLETE = 'InvalidationIncomplete';

function describe(failures: TargetFailure[]): string {
  return failures.map((f) => `${f.target} ${f.kind} (${f.detail})`).join('; ');
}

export function createCacheActivities(deps: CacheActivityDeps) {
  const invalidator =
    deps.invalidator ??
    (deps.invalidateUrl
      ? createInvalidationClient({
          urls: [deps.invalidateUrl],
          token: deps.token,
          timeoutMs: deps.timeoutMs,
          attempts: deps.attempts,
          dispatcher: deps.dispatcher,
          dns: deps.dns,
          resolver: deps.resolver,
        })
      : undefined);

  return {
    async invalidateActiveVersion({ model }: { model: string }): Promise<InvalidateResult> {
      let local = false;
      if (deps.local) {
        deps.local.invalidate(model);
        local = true;
      }
      if (!invalidator) {
        if (!local) deps.logger?.info({ model }, 'active-version cache: no API configured to invalidate (MODELGATE_INVALIDATE_URL unset)');
        return { local, remote: 'skipped' };
      }
      const r = await invalidator.invalidate(model);
      if (!r.failures.length) return { local, remote: 'ok', targets: r.targets, acknowledged: r.acknowledged };
      const detail = describe(r.failures);
      for (let i = 0; i < r.failures.length; i++) countExternalError('modelgate-api');
      deps.logger?.warn(
        { model, targets: r.targets, acknowledged: r.acknowledged, detail },
        'active-version cache invalidation incomplete; those replicas serve the change after the TTL',
      );
      if (r.failures.some((f) => RETRYABLE.has(f.kind))) {
        throw ApplicationFailure.retryable(`invalidation of ${model} incomplete: ${r.acknowledged}/${r.targets} replicas acknowledged; ${detail}`, INVALIDATION_INCOMPLETE);
      }
      return { local, remote: r.acknowledged ? 'partial' : 'failed', targets: r.targets, acknowledged: r.acknowledged, detail };
    },
  };
}

export type CacheActivities = ReturnType<typeof createCacheActivities>;
