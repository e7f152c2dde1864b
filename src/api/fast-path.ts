/**
 * Requests answered before fastify sees them. Inference gateways poll the active-version endpoint at a rate no
 * other route sees, and on a cache hit fastify's request/reply objects, routing and hooks cost ~20% of the
 * throughput of a bare node:http server (docs/PERFORMANCE.md, P4). A fast path answers only what it can answer
 * completely (e.g. a fresh cache hit) and returns false for everything else, which fastify then serves as usual.
 */
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { FastifyServerFactory } from 'fastify';

/** Answers and returns true, or touches nothing and returns false. */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** A fastify serverFactory whose server tries the fast paths first. */
export function fastPathServer(paths: FastPath[]): FastifyServerFactory {
  return (fastify: RequestListener) =>
    createServer((req, res) => {
      for (const p of paths) if (p(req, res)) return;
      fastify(req, res);
    });
}
