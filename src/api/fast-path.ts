/**
 * Requests answered before fastify sees them. Inference gateways poll the active-version endpoint at a rate no
 * other route sees, and on a cache hit fastify's request/reply objects, routing and hooks cost ~20% of the
 * throughput of a bare node:http server (docs/PERFORMANCE.md, P4). A fast path answers only what it can answer
 * completely (e.g. a fresh cache hit) and returns false for everything else, which fastify then serves as usual.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { FastifyServerFactory } from 'fastify';

/** Answers and returns true, or touches nothing and returns false. */
export type FastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** Set when the app starts closing: from then on fastify answers everything (503 with return503OnClosing). */
export interface FastPathSwitch {
  closing: boolean;
}

interface ServerTimeouts {
  keepAliveTimeout?: number;
  requestTimeout?: number;
  connectionTimeout?: number;
  maxRequestsPerSocket?: number;
}

/**
 * A fastify serverFactory whose server tries the fast paths first. It applies the timeouts fastify applies to
 * servers it builds itself (a serverFactory's server gets none from fastify), so keep-alive and slow-client
 * limits stay as configured.
 */
export function fastPathServer(paths: FastPath[], state: FastPathSwitch = { closing: false }): FastifyServerFactory {
  return (fastify: RequestListener, opts: ServerTimeouts): Server => {
    const server = createServer((req, res) => {
      if (!state.closing) for (const p of paths) if (p(req, res)) return;
      fastify(req, res);
    });
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout;
    if (opts.connectionTimeout !== undefined) server.setTimeout(opts.connectionTimeout);
    if (opts.maxRequestsPerSocket && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}
