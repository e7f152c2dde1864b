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
  /**
   * Base URL(s) of the modelgate API replicas the worker tells about Production changes, comma-separated, e.g.
   * http://modelgate-api-headless:8080 or http://10.0.0.5:8080,http://10.0.0.6:8080.
   */
  MODELGATE_INVALIDATE_URL: z.string().min(1).optional(),
  /** true: resolve each URL's host on every change to all its A/AAAA records (a headless Service) and call each. */
  MODELGATE_INVALIDATE_DNS: z.enum(['true', 'false']).default('false'),
};

export interface ActiveConfig {
  cache: { ttlMs: number; staleWhileRevalidateMs: number; retryAfterErrorMs: number; maxWaitMs: number; keyMetrics?: string[] };
  /** Undefined: the invalidation route refuses every call (403). */
  internalToken?: string;
  /** Empty: the worker invalidates only an in-process cache (if any). */
  invalidateUrls: string[];
  /** Resolve each invalidation URL's host to all its addresses on every call (headless Service fan-out). */
  invalidateDns: boolean;
}

export function loadActiveConfig(env: NodeJS.ProcessEnv = process.env): ActiveConfig {
  const c = parseEnv(shape, env);
  if (c.MODELGATE_INTERNAL_TOKEN !== undefined && c.MODELGATE_INTERNAL_TOKEN.length < 16) {
    // Short tokens are guessable; refuse them rather than run with one.
    throw new ConfigError('MODELGATE_INTERNAL_TOKEN: must have at least 16 characters');
  }
  const invalidateUrls = (c.MODELGATE_INVALIDATE_URL ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(invalidateUrl);
  const invalidateDns = c.MODELGATE_INVALIDATE_DNS === 'true';
  if (invalidateDns && invalidateUrls.some((u) => u.startsWith('https:'))) {
    // Calling an address instead of the name would fail the certificate check; the fan-out is for the in-cluster port.
    throw new ConfigError('MODELGATE_INVALIDATE_DNS: needs http URLs in MODELGATE_INVALIDATE_URL (an address cannot match a TLS certificate)');
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
    invalidateUrls,
    invalidateDns,
  };
}

/** One entry of MODELGATE_INVALIDATE_URL: an http(s) URL without credentials (the token goes in a header). */
function invalidateUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ConfigError(`MODELGATE_INVALIDATE_URL: not a URL (got ${JSON.stringify(raw.replace(/\/\/[^/@]*@/, '//***@'))})`);
  }
  if (u.username || u.password) throw new ConfigError('MODELGATE_INVALIDATE_URL: must not carry credentials (the worker sends MODELGATE_INTERNAL_TOKEN as a bearer token)');
  if (!/^https?:$/.test(u.protocol)) throw new ConfigError(`MODELGATE_INVALIDATE_URL: must be http(s) (got ${JSON.stringify(raw)})`);
  return raw.replace(/\/+$/, '');
}
