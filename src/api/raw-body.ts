/**
 * Signed webhooks are verified over the exact bytes received, so their routes live in plugins whose only
 * content-type parser keeps the body as a Buffer; parsing happens after the signature check.
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors.js';

export function keepRawBodies(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
}

export function rawBody(body: unknown): Buffer {
  return Buffer.isBuffer(body) ? body : Buffer.alloc(0);
}

/** Parse JSON after verification; a signed but malformed body is the sender's bug (400). */
export function parseJson(raw: Buffer, what: string): unknown {
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    throw new HttpError(400, 'invalid_body', `${what} body is not valid JSON`);
  }
}

export function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
