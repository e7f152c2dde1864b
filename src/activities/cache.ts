/**
 * The lifecycle's cache activity: after every Production change it tells the active-version endpoint to drop
 * its cached value, so gateways see the change at once instead of after the TTL. Best effort by design — the
 * TTL bounds staleness anyway — so it never fails the lifecycle: problems are logged, counted and returned.
 */
import { request, type Dispatcher } from 'undici';
import type { Logger } from '../observability/log.js';
import { countExternalError } from '../observability/metrics.js';

export interface CacheActivityDeps {
  /** Base URL of the modelgate API (MODELGATE_INVALIDATE_URL), e.g. http://127.0.0.1:8080. */
  invalidateUrl?: string;
  /** Bearer token of the invalidation route (MODELGATE_INTERNAL_TOKEN). */
  token?: string;
  /** An active-version cache in this process (API and worker in one process). */
  local?: { invalidate(model: string): void };
  logger?: Logger;
  /** Per HTTP attempt; default 3 s. */
  timeoutMs?: number;
  /** HTTP attempts inside one activity attempt; default 2. */
  attempts?: number;
  dispatcher?: Dispatcher;
}

export interface InvalidateResult {
  local: boolean;
  remote: 'ok' | 'skipped' | 'failed';
  /** Why the remote call failed (status or transport error); never contains the token. */
  detail?: string;
}

export function createCacheActivities(deps: CacheActivityDeps) {
  const timeoutMs = deps.timeoutMs ?? 3_000;
  const attempts = Math.max(1, deps.attempts ?? 2);

  async function callApi(model: string): Promise<{ ok: true } | { ok: false; detail: string; retry: boolean }> {
    const url = `${deps.invalidateUrl}/internal/models/${encodeURIComponent(model)}/invalidate`;
    try {
      const res = await request(url, {
        method: 'POST',
        headers: deps.token ? { authorization: `Bearer ${deps.token}` } : {},
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
      });
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
      // 4xx will not get better by repeating (wrong token, route disabled); 5xx might.
      return { ok: false, detail: `HTTP ${res.statusCode}`, retry: res.statusCode >= 500 };
    } catch (err) {
      const code = (err as { code?: string }).code ?? (err as Error).name;
      return { ok: false, detail: `${code}: ${(err as Error).message}`, retry: true };
    }
  }

  return {
    async invalidateActiveVersion({ model }: { model: string }): Promise<InvalidateResult> {
      let local = false;
      if (deps.local) {
        deps.local.invalidate(model);
        local = true;
      }
      if (!deps.invalidateUrl) {
        if (!local) deps.logger?.info({ model }, 'active-version cache: no API configured to invalidate (MODELGATE_INVALIDATE_URL unset)');
        return { local, remote: 'skipped' };
      }
      let last: { ok: false; detail: string; retry: boolean } | undefined;
      for (let i = 0; i < attempts; i++) {
        const r = await callApi(model);
        if (r.ok) return { local, remote: 'ok' };
        last = r;
        if (!r.retry) break;
      }
      countExternalError('modelgate-api');
      deps.logger?.warn({ model, detail: last!.detail }, 'active-version cache invalidation failed; gateways see the change after the TTL');
      return { local, remote: 'failed', detail: last!.detail };
    },
  };
}

export type CacheActivities = ReturnType<typeof createCacheActivities>;
