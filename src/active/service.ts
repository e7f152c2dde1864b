/**
 * The active-version service: an in-process cache in front of MLflow for `GET /v1/models/:model/active`.
 *
 * - single-flight: any number of concurrent requests for a model that needs reading share ONE MLflow read sequence;
 * - TTL + stale-while-revalidate: within `ttlMs` a value is served as is; for `staleWhileRevalidateMs` more it is
 *   still served at once while one background read refreshes it;
 * - last-known-good: when MLflow cannot be read, a model that was seen keeps being served with `stale: true`
 *   (never an error); only a never-seen model gets `unavailable`;
 * - invalidate(model): the lifecycle calls it after every Production change, so freshness does not wait for the
 *   TTL. A read that was already under way when the invalidation arrived is not cached (it may predate the change).
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/log.js';
import { activeRequestTally, activeUpstreamReads } from '../observability/metrics.js';
import { readActiveVersion, type ActiveVersionSource } from './read.js';
import type { ActiveVersion } from './types.js';

export interface ActiveCacheOptions {
  ttlMs?: number;
  staleWhileRevalidateMs?: number;
  /** After a failed read, serve last-known-good for this long without a new attempt (protects a sick MLflow). */
  retryAfterErrorMs?: number;
  /**
   * A request for a seen model whose value has expired waits at most this long for MLflow before getting the
   * last-known-good value (the read goes on in the background).
   */
  maxWaitMs?: number;
  keyMetrics?: string[];
  /** Models kept; the oldest-read is dropped beyond it (requests for random names must not grow memory). */
  maxEntries?: number;
  logger?: Logger;
  /** Clock (tests). */
  now?: () => number;
}

export type ActiveLookup =
  | { kind: 'found'; value: ActiveVersion; body: string; etag: string; stale: boolean; /** body as UTF-8, encoded once */ bytes: Buffer }
  | { kind: 'none'; stale: boolean }
  | { kind: 'unavailable'; message: string };

interface Found {
  kind: 'found';
  value: ActiveVersion;
  body: string;
  etag: string;
  /** What a fresh hit answers: built once per MLflow read, so a hit allocates nothing. */
  fresh: ActiveLookup;
  staleLookup?: ActiveLookup;
}
type Result = Found | { kind: 'none' };

interface Entry {
  result: Result;
  /** When the read that produced it started (TTL counts from there: conservative). */
  readAt: number;
  /** Set by invalidate(): the next request must read MLflow. */
  invalid: boolean;
  /** Time of the last failed read since the last successful one. */
  failedAt?: number;
}

interface Flight {
  gen: number;
  promise: Promise<Result>;
}

const counters = activeRequestTally;
const upstream = {
  found: activeUpstreamReads.labels('found'),
  none: activeUpstreamReads.labels('none'),
  error: activeUpstreamReads.labels('error'),
};

/** Strong ETag over the body without `stale`: a stale copy of the same value revalidates as unchanged. */
export function etagOf(body: string): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

/** If-None-Match per RFC 9110: a list of (possibly weak) tags, or `*`. */
export function matchesIfNoneMatch(header: string | string[] | undefined, etag: string): boolean {
  if (!header) return false;
  const text = Array.isArray(header) ? header.join(',') : header;
  if (text.trim() === '*') return true;
  for (const part of text.split(',')) {
    const t = part.trim();
    if (t === etag || (t.startsWith('W/') && t.slice(2) === etag)) return true;
  }
  return false;
}

export class ActiveVersionCache {
  readonly #source: ActiveVersionSource;
  readonly #ttlMs: number;
  readonly #swrMs: number;
  readonly #retryAfterErrorMs: number;
  readonly #maxWaitMs: number;
  readonly #keyMetrics?: string[];
  readonly #maxEntries: number;
  readonly #logger?: Logger;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #flights = new Map<string, Flight>();
  /** Bumped by invalidate(); a read started under an older generation is not cached. */
  readonly #gens = new Map<string, number>();

  constructor(source: ActiveVersionSource, opts: ActiveCacheOptions = {}) {
    this.#source = source;
    this.#ttlMs = opts.ttlMs ?? 5_000;
    this.#swrMs = opts.staleWhileRevalidateMs ?? 60_000;
    this.#retryAfterErrorMs = opts.retryAfterErrorMs ?? 2_000;
    this.#maxWaitMs = opts.maxWaitMs ?? 2_000;
    this.#keyMetrics = opts.keyMetrics;
    this.#maxEntries = opts.maxEntries ?? 10_000;
    this.#logger = opts.logger;
    this.#now = opts.now ?? Date.now;
  }

  /** The cached answer when it is within its TTL (the hot path: synchronous, no allocation); else undefined. */
  getFresh(model: string): ActiveLookup | undefined {
    const e = this.#entries.get(model);
    if (!e || e.invalid || this.#now() - e.readAt >= this.#ttlMs) return undefined;
    counters.hit++;
    return serve(e.result, e.failedAt !== undefined);
  }

  /** The active version of `model`, from the cache when possible. Never rejects. */
  async get(model: string): Promise<ActiveLookup> {
    const hit = this.getFresh(model);
    if (hit) return hit;
    const e = this.#entries.get(model);
    const now = this.#now();
    const failingRecently = e?.failedAt !== undefined && now - e.failedAt < this.#retryAfterErrorMs;
    if (e && !e.invalid) {
      const age = now - e.readAt;
      if (age < this.#ttlMs + this.#swrMs) {
        counters.revalidate++;
        if (!failingRecently) this.#background(model);
        return serve(e.result, e.failedAt !== undefined);
      }
    }
    if (e && failingRecently) {
      // MLflow just failed: answer with what we know rather than queue behind another doomed read.
      counters.stale++;
      return serve(e.result, true);
    }
    if (!e) {
      // Never seen: nothing to fall back on, so wait for MLflow (its client's timeout bounds the wait).
      try {
        const r = await this.#read(model);
        counters.miss++;
        return serve(r, false);
      } catch (err) {
        counters.unavailable++;
        return { kind: 'unavailable', message: `MLflow could not be read for ${model}: ${errorText(err)}` };
      }
    }
    // Seen but expired or invalidated: wait for MLflow a bounded time, then fall back to last-known-good.
    const read = this.#read(model);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.#maxWaitMs);
    });
    try {
      const r = await Promise.race([read, timeout]);
      if (r !== 'timeout') {
        counters.miss++;
        return serve(r, false);
      }
    } catch {
      // fall through to last-known-good
    } finally {
      clearTimeout(timer);
    }
    read.catch(() => undefined);
    counters.stale++;
    return serve(this.#entries.get(model)?.result ?? e.result, true);
  }

  /**
   * Forget that `model`'s value is fresh: the next request reads MLflow (last-known-good stays as the fallback).
   * For a model already served, the read starts now so that the next request finds it under way or done.
   */
  invalidate(model: string): void {
    this.#gens.set(model, (this.#gens.get(model) ?? 0) + 1);
    const e = this.#entries.get(model);
    if (e) {
      e.invalid = true;
      this.#background(model);
    }
    this.#logger?.debug({ model }, 'active version invalidated');
  }

  /** What is cached for `model` (tests, diagnostics). */
  peek(model: string): { value: ActiveVersion | null; readAt: number; invalid: boolean; failing: boolean } | undefined {
    const e = this.#entries.get(model);
    if (!e) return undefined;
    return { value: e.result.kind === 'found' ? e.result.value : null, readAt: e.readAt, invalid: e.invalid, failing: e.failedAt !== undefined };
  }

  #background(model: string): void {
    this.#read(model).catch(() => undefined);
  }

  /** The single-flight read: joins a read of the current generation, else starts one. */
  #read(model: string): Promise<Result> {
    const gen = this.#gens.get(model) ?? 0;
    const flight = this.#flights.get(model);
    if (flight && flight.gen === gen) return flight.promise;
    const startedAt = this.#now();
    const flightRef: { promise?: Promise<Result> } = {};
    const promise = (async (): Promise<Result> => {
      try {
        const value = await readActiveVersion(this.#source, model, { keyMetrics: this.#keyMetrics });
        const result: Result = value ? found(value) : { kind: 'none' };
        (value ? upstream.found : upstream.none).inc();
        if ((this.#gens.get(model) ?? 0) === gen) this.#store(model, { result, readAt: startedAt, invalid: false });
        return result;
      } catch (err) {
        upstream.error.inc();
        const e = this.#entries.get(model);
        if (e) e.failedAt = this.#now();
        this.#logger?.warn({ model, err: errorText(err) }, 'active version: MLflow read failed; serving last-known-good');
        throw err;
      } finally {
        if (this.#flights.get(model)?.promise === flightRef.promise) this.#flights.delete(model);
      }
    })();
    flightRef.promise = promise;
    this.#flights.set(model, { gen, promise });
    return promise;
  }

  #store(model: string, entry: Entry): void {
    // Re-insert so Map order is read order; drop the oldest beyond the bound.
    this.#entries.delete(model);
    this.#entries.set(model, entry);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
      this.#gens.delete(oldest);
    }
  }
}

function found(value: ActiveVersion): Found {
  const body = JSON.stringify(value);
  const etag = etagOf(body);
  return { kind: 'found', value, body, etag, fresh: { kind: 'found', value, body, etag, stale: false, bytes: Buffer.from(body) } };
}

const NONE: ActiveLookup = { kind: 'none', stale: false };
const NONE_STALE: ActiveLookup = { kind: 'none', stale: true };

function serve(r: Result, stale: boolean): ActiveLookup {
  if (r.kind === 'none') return stale ? NONE_STALE : NONE;
  if (!stale) return r.fresh;
  if (!r.staleLookup) {
    const value: ActiveVersion = { ...r.value, stale: true };
    const body = JSON.stringify(value);
    r.staleLookup = { kind: 'found', value, body, etag: r.etag, stale: true, bytes: Buffer.from(body) };
  }
  return r.staleLookup;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
