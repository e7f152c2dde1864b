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

export interface ActiveRoutesOptions {
  /** Bearer token of the invalidation route; undefined: the route answers 403 to everyone. */
  invalidateToken?: string;
}

const JSON_TYPE = 'application/json; charset=utf-8';

function fail(reply: FastifyReply, status: number, code: ActiveError['code'], message: string): FastifyReply {
  return reply.code(status).type(JSON_TYPE).send({ code, message } satisfies ActiveError);
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
    const answer = (ifNoneMatch: string | string[] | undefined, reply: FastifyReply, model: string, r: ActiveLookup): FastifyReply => {
      if (r.kind === 'found') {
        reply.headers({ etag: r.etag, 'cache-control': 'no-cache' });
        if (matchesIfNoneMatch(ifNoneMatch, r.etag)) return reply.code(304).send();
        return reply.type(JSON_TYPE).send(r.bytes);
      }
      reply.header('cache-control', 'no-cache');
      if (r.kind === 'none') return fail(reply, 404, 'no_production_version', `model ${model} has no Production version in MLflow`);
      reply.header('retry-after', '5');
      return fail(reply, 503, 'unavailable', r.message);
    };

    app.get<{ Params: { model: string } }>('/v1/models/:model/active', { logLevel: 'warn' }, (req, reply) => {
      const { model } = req.params;
      // Hot path: a fresh cache hit is answered synchronously (no promise, no allocation in the cache).
      const hit = cache.getFresh(model);
      if (hit) {
        answer(req.headers['if-none-match'], reply, model, hit);
        return;
      }
      const bad = badModel(model);
      if (bad) return fail(reply, 400, 'invalid_input', bad);
      return cache.get(model).then((r) => answer(req.headers['if-none-match'], reply, model, r));
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
