/**
 * Settings of the active-version endpoint (API side) and of its invalidation (worker side). Parsed with
 * parseEnv so a bad key stops the process with its name; the internal token's value never appears in messages.
 */
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';

const ms = z.coerce.number().int().min(0);

const shape = {
  /** How long a value read from MLflow is served without asking MLflow again. */
  MODELGATE_ACTIVE_TTL_MS: ms.default(5_000),
  /** After the TTL, how long the old value is still served while one background read refreshes it. */
  MODELGATE_ACTIVE_STALE_WHILE_REVALIDATE_MS: ms.default(60_000),
  /** After a failed MLflow read, how long requests get the last-known-good value without a new attempt. */
  MODELGATE_ACTIVE_RETRY_AFTER_ERROR_MS: ms.default(2_000),
  /** A request for a seen model whose value expired waits this long for MLflow, then gets last-known-good. */
  MODELGATE_ACTIVE_MAX_WAIT_MS: ms.default(2_000),
  /** Comma-separated run metrics to publish (default: every metric of the run). */
  MODELGATE_ACTIVE_KEY_METRICS: z.string().min(1).optional(),
  /** Bearer token of POST /internal/models/:model/invalidate (API) and of the worker's call to it. */
  MODELGATE_INTERNAL_TOKEN: z.string().min(1).optional(),
  /** Base URL of the modelgate API the worker tells about Production changes, e.g. http://127.0.0.1:8080. */
  MODELGATE_INVALIDATE_URL: z.string().url().optional(),
};

export interface ActiveConfig {
  cache: { ttlMs: number; staleWhileRevalidateMs: number; retryAfterErrorMs: number; maxWaitMs: number; keyMetrics?: string[] };
  /** Undefined: the invalidation route refuses every call (403). */
  internalToken?: string;
  /** Undefined: the worker invalidates only an in-process cache (if any). */
  invalidateUrl?: string;
}

export function loadActiveConfig(env: NodeJS.ProcessEnv = process.env): ActiveConfig {
  const c = parseEnv(shape, env);
  if (c.MODELGATE_INTERNAL_TOKEN !== undefined && c.MODELGATE_INTERNAL_TOKEN.length < 16) {
    // Short tokens are guessable; refuse them rather than run with one.
    throw new ConfigError('MODELGATE_INTERNAL_TOKEN: must have at least 16 characters');
  }
  if (c.MODELGATE_INVALIDATE_URL && !/^https?:$/.test(new URL(c.MODELGATE_INVALIDATE_URL).protocol)) {
    throw new ConfigError(`MODELGATE_INVALIDATE_URL: must be http(s) (got ${JSON.stringify(c.MODELGATE_INVALIDATE_URL)})`);
  }
  const keyMetrics = c.MODELGATE_ACTIVE_KEY_METRICS?.split(',').map((s) => s.trim()).filter(Boolean);
  return {
    cache: {
      ttlMs: c.MODELGATE_ACTIVE_TTL_MS,
      staleWhileRevalidateMs: c.MODELGATE_ACTIVE_STALE_WHILE_REVALIDATE_MS,
      retryAfterErrorMs: c.MODELGATE_ACTIVE_RETRY_AFTER_ERROR_MS,
      maxWaitMs: c.MODELGATE_ACTIVE_MAX_WAIT_MS,
      ...(keyMetrics?.length ? { keyMetrics } : {}),
    },
    internalToken: c.MODELGATE_INTERNAL_TOKEN,
    invalidateUrl: c.MODELGATE_INVALIDATE_URL?.replace(/\/+$/, ''),
  };
}
