/**
 * HTTP face of the active-version service:
 *   GET  /v1/models/:model/active              → 200 ActiveVersion (ETag; If-None-Match → 304), 404, 503
 *   POST /internal/models/:model/invalidate    → 200 (bearer token), called by the worker on Production changes
 * Gateways poll the GET route, so it logs only warnings: a line per 304 would drown everything else.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { matchesIfNoneMatch, type ActiveLookup, type ActiveVersionCache } from '../../active/service.js';
import type { ActiveError } from '../../active/types.js';
import type { FastPath } from '../fast-path.js';
import { ACTIVE_ROUTE, activeFastPathTally } from '../metrics.js';

export interface ActiveRoutesOptions {
  /** Bearer token of the invalidation route; undefined: the route answers 403 to everyone. */
  invalidateToken?: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const ACTIVE_PREFIX = '/v1/models/';
const ACTIVE_SUFFIX = '/active';

/** The whole HTTP answer to a lookup, shared by the fastify route and the fast path so they cannot differ. */
interface ActiveAnswer {
  status: 200 | 304 | 404 | 503;
  headers: Record<string, string>;
  body?: Buffer | string;
}

function errorBody(code: ActiveError['code'], message: string): string {
  return JSON.stringify({ code, message } satisfies ActiveError);
}

/** An error answer with every header set (content-length too), so the fast path writes it as is. */
function errorAnswer(status: 404 | 503, code: ActiveError['code'], message: string, headers: Record<string, string> = {}): ActiveAnswer {
  const body = errorBody(code, message);
  return { status, headers: { 'cache-control': 'no-cache', ...headers, 'content-type': JSON_TYPE, 'content-length': String(Buffer.byteLength(body)) }, body };
}

/** The 200 and 304 answers of a found lookup, built once per lookup object (the cache reuses it for every hit). */
const foundAnswers = new WeakMap<ActiveLookup, { ok: ActiveAnswer; notModified: ActiveAnswer }>();

function foundAnswer(r: Extract<ActiveLookup, { kind: 'found' }>, ifNoneMatch: string | string[] | undefined): ActiveAnswer {
  let answers = foundAnswers.get(r);
  if (!answers) {
    answers = {
      ok: {
        status: 200,
        headers: { etag: r.etag, 'cache-control': 'no-cache', 'content-type': JSON_TYPE, 'content-length': String(r.bytes.length) },
        body: r.bytes,
      },
      notModified: { status: 304, headers: { etag: r.etag, 'cache-control': 'no-cache' } },
    };
    foundAnswers.set(r, answers);
  }
  return ifNoneMatch !== undefined && matchesIfNoneMatch(ifNoneMatch, r.etag) ? answers.notModified : answers.ok;
}

function activeAnswer(model: string, r: ActiveLookup, ifNoneMatch: string | string[] | undefined): ActiveAnswer {
  if (r.kind === 'found') return foundAnswer(r, ifNoneMatch);
  if (r.kind === 'none') return errorAnswer(404, 'no_production_version', `model ${model} has no Production version in MLflow`);
  return errorAnswer(503, 'unavailable', r.message, { 'retry-after': '5' });
}

function send(reply: FastifyReply, a: ActiveAnswer): FastifyReply {
  return reply.code(a.status).headers(a.headers).send(a.body);
}

/**
 * GET /v1/models/:model/active answered from a fresh cache entry without fastify (see fast-path.ts). Anything
 * else — another route or method, a name fastify would reject, a miss or an entry past its TTL — falls through
 * to the route below, which answers the same bytes through activeAnswer.
 */
export function activeFastPath(cache: ActiveVersionCache): FastPath {
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(ACTIVE_PREFIX)) return false;
    const q = url.indexOf('?');
    const end = (q < 0 ? url.length : q) - ACTIVE_SUFFIX.length;
    if (end <= ACTIVE_PREFIX.length || !url.startsWith(ACTIVE_SUFFIX, end)) return false;
    const raw = url.slice(ACTIVE_PREFIX.length, end);
    if (raw.includes('/')) return false;
    let model = raw;
    if (raw.includes('%')) {
      try {
        model = decodeURIComponent(raw);
      } catch {
        return false; // malformed escape: fastify answers it
      }
    }
    // No name check here: only the route creates cache entries, after checking the name, so a name it would
    // refuse is never a hit.
    const hit = cache.getFresh(model);
    if (!hit) return false;
    const a = activeAnswer(model, hit, req.headers['if-none-match']);
    res.writeHead(a.status, a.headers);
    res.end(a.body);
    activeFastPathTally[a.status]++;
    return true;
  };
}

function fail(reply: FastifyReply, status: number, code: ActiveError['code'], message: string): FastifyReply {
  return reply.code(status).type(JSON_TYPE).send(errorBody(code, message));
}

function badModel(model: string): string | undefined {
  if (!model.trim() || model.length > 256) return 'model name must be a non-empty string of at most 256 characters';
  return undefined;
}

/** Constant-time on digests, so neither content nor length of the token leaks through timing. */
function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const a = createHash('sha256').update(m[1]).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

export function activeRoutes(cache: ActiveVersionCache, opts: ActiveRoutesOptions = {}): FastifyPluginAsync {
  return (app) => {
    app.get<{ Params: { model: string } }>(ACTIVE_ROUTE, { logLevel: 'warn' }, (req, reply) => {
      const { model } = req.params;
      const bad = badModel(model);
      if (bad) return fail(reply, 400, 'invalid_input', bad);
      // A fresh cache hit is answered synchronously (no promise, no allocation in the cache).
      const hit = cache.getFresh(model);
      if (hit) {
        send(reply, activeAnswer(model, hit, req.headers['if-none-match']));
        return;
      }
      return cache.get(model).then((r) => send(reply, activeAnswer(model, r, req.headers['if-none-match'])));
    });

    app.post<{ Params: { model: string } }>('/internal/models/:model/invalidate', async (req, reply) => {
      if (!opts.invalidateToken) {
        return fail(reply, 403, 'invalidation_disabled', 'cache invalidation is disabled: set MODELGATE_INTERNAL_TOKEN on the API and the worker');
      }
      if (!tokenMatches(req.headers.authorization, opts.invalidateToken)) {
        return fail(reply, 401, 'unauthorized', 'missing or wrong bearer token');
      }
      const { model } = req.params;
      const bad = badModel(model);
      if (bad) return fail(reply, 400, 'invalid_input', bad);
      cache.invalidate(model);
      return reply.code(200).type(JSON_TYPE).send({ model, invalidated: true });
    });
    return Promise.resolve();
  };
}
